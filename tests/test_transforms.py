"""Every activation through every transform, parametrized over the registry: forward-mode AD (torch.func.jvp,
jacfwd, hessian, autograd.forward_ad), vmap and batched gradients, double backward, torch.fx, torch.export (and a
.pt2 loaded without actlab), torch.compile (fullgraph, dynamic, trainable parameters), ONNX, modules' inplace=."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from conftest import ELEMENTWISE, GATED
from test_reference import PARAM_CASES
from torch import nn

import actlab

CASES = [(n, p) for n in ELEMENTWISE + GATED for p in [{}] + PARAM_CASES.get(n, [])]
IDS = [f"{n}{p}" if p else n for n, p in CASES]
TRAINABLE = [("swish", {"beta": 1.3}), ("prelu", {})]


def _input(name, dtype=torch.float64, requires_grad=False):
    shape = (3, 10) if actlab.spec(name).kind == "gated" else (3, 5)
    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(3)) * 2 + 0.0123
    return x.requires_grad_(requires_grad)


def _fn(name, params):
    return lambda t: actlab.functional.apply(name, t, **params)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_func_jvp_and_jacfwd_match_backward(name, params):
    fn = _fn(name, params)
    x = _input(name)
    t = torch.randn_like(x)
    y, jvp_out = torch.func.jvp(fn, (x,), (t,))
    torch.testing.assert_close(y, fn(x))
    _, vjp = torch.func.vjp(fn, x)
    # <J t, u> = <t, J^T u> for a random u
    u = torch.randn_like(y)
    torch.testing.assert_close((jvp_out * u).sum(), (t * vjp(u)[0]).sum())
    torch.testing.assert_close(torch.func.jacfwd(fn)(x[0]), torch.func.jacrev(fn)(x[0]))


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_forward_ad_dual_tensors(name, params):
    x = _input(name)
    t = torch.randn_like(x)
    with fwAD.dual_level():
        y = _fn(name, params)(fwAD.make_dual(x, t))
        tangent = fwAD.unpack_dual(y).tangent
    _, expected = torch.func.jvp(_fn(name, params), (x,), (t,))
    torch.testing.assert_close(tangent, expected)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_hessian_and_batched_gradients(name, params):
    fn = _fn(name, params)
    x = _input(name)[0]
    scalar = lambda t: fn(t).square().sum()  # noqa: E731
    torch.testing.assert_close(torch.func.hessian(scalar)(x), torch.autograd.functional.hessian(scalar, x))
    j_vec = torch.autograd.functional.jacobian(fn, x, vectorize=True)
    j_loop = torch.autograd.functional.jacobian(fn, x)
    torch.testing.assert_close(j_vec, j_loop)
    xg = x.clone().requires_grad_()
    y = fn(xg)
    eye = torch.eye(y.numel(), dtype=y.dtype).reshape(-1, *y.shape)
    (batched,) = torch.autograd.grad(y, xg, eye, is_grads_batched=True)
    torch.testing.assert_close(batched.reshape(j_loop.shape), j_loop)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_vmap_matches_a_loop(name, params):
    fn = _fn(name, params)
    x = _input(name)
    torch.testing.assert_close(torch.func.vmap(fn)(x), torch.stack([fn(r) for r in x]))
    grad = torch.func.vmap(torch.func.grad(lambda r: fn(r).sum()))(x)
    loop = []
    for row in x:
        row = row.clone().requires_grad_()
        loop.append(torch.autograd.grad(fn(row).sum(), row)[0])
    loop = torch.stack(loop)
    torch.testing.assert_close(grad, loop)


@pytest.mark.parametrize("name,params", TRAINABLE)
def test_trainable_parameters_under_jvp_and_vmap(name, params):
    module = actlab.get(name, trainable=True, **params).double()
    x = _input(name)
    state = dict(module.named_parameters())
    tangents = {k: torch.ones_like(v) for k, v in state.items()}
    f = lambda p: torch.func.functional_call(module, p, (x,))  # noqa: E731
    _, jvp = torch.func.jvp(f, (state,), (tangents,))
    eps = 1e-6
    bumped = {k: v.detach() + eps for k, v in state.items()}
    fd = (f(bumped) - f({k: v.detach() - eps for k, v in state.items()})) / (2 * eps)
    torch.testing.assert_close(jvp, fd, rtol=1e-6, atol=1e-8)
    stacked = {k: torch.stack([v.detach(), v.detach() * 1.1]) for k, v in state.items()}
    out = torch.func.vmap(lambda p: torch.func.functional_call(module, p, (x,)))(stacked)
    assert out.shape == (2, *x.shape)


# ----- fx, export, compile ------------------------------------------------------------------------------------------


class _Net(nn.Module):
    def __init__(self, name, params, trainable=False):
        super().__init__()
        gated = actlab.spec(name).kind == "gated"
        self.lin = nn.Linear(5, 10 if gated else 5)
        self.act = actlab.get(name, trainable=trainable, **params)

    def forward(self, x):
        return self.act(self.lin(x))


def _net(name, params, trainable=False):
    torch.manual_seed(0)
    return _Net(name, params, trainable).eval()  # eval: rrelu's mean slope (its training draw is random)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles the same forward code for another activation: start from dynamo's empty cache so its
    recompile limit counts one test's compilations only."""
    torch._dynamo.reset()
    yield


def _plain_ops_only(graph_module):
    targets = [str(n.target) for n in graph_module.graph.nodes if n.op == "call_function"]
    assert not any("actlab" in t for t in targets), targets


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_fx_symbolic_trace(name, params):
    net = _net(name, params)
    traced = torch.fx.symbolic_trace(net)
    _plain_ops_only(traced)
    x = torch.randn(4, 5)
    torch.testing.assert_close(traced(x), net(x))


@pytest.mark.parametrize("name,params", CASES + [(n, {**p, "trainable": True}) for n, p in TRAINABLE],
                         ids=IDS + [f"{n}-trainable" for n, _ in TRAINABLE])
def test_torch_export_emits_plain_ops_and_loads_without_actlab(name, params, tmp_path):
    params = dict(params)
    trainable = params.pop("trainable", False)
    net = _net(name, params, trainable)
    x = torch.randn(4, 5)
    exported = torch.export.export(net, (x,))
    _plain_ops_only(exported.graph_module)
    torch.testing.assert_close(exported.module()(x), net(x))
    path = tmp_path / "net.pt2"
    torch.export.save(exported, path)
    torch.save(x, tmp_path / "x.pt")
    torch.save(net(x).detach(), tmp_path / "y.pt")
    # a fresh interpreter in which importing actlab fails
    code = (
        "import sys; sys.modules['actlab'] = None\n"
        "import torch\n"
        f"m = torch.export.load({str(path)!r}).module()\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r}); y = torch.load({str(tmp_path / 'y.pt')!r})\n"
        "torch.testing.assert_close(m(x), y)\n"
    )
    if name == ELEMENTWISE[0] or trainable:  # one subprocess per kind of check keeps the suite fast
        subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": ""})


def _compile_cases():
    return CASES + [(n, {**p, "trainable": True}) for n, p in TRAINABLE]


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("name,params", _compile_cases(), ids=IDS + [f"{n}-trainable" for n, _ in TRAINABLE])
def test_compile_fullgraph_matches_eager(name, params, dynamic):
    params = dict(params)
    trainable = params.pop("trainable", False)
    net = _net(name, params, trainable).double()
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True, dynamic=dynamic)
    for rows in (4, 7):
        x = torch.randn(rows, 5, dtype=torch.float64)
        out = compiled(x)
        torch.testing.assert_close(out, net(x))
        grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
        eager = torch.autograd.grad(net(x).square().sum(), list(net.parameters()))
        for g, e in zip(grads, eager):
            torch.testing.assert_close(g, e)


@pytest.mark.slow
@pytest.mark.parametrize("name,params", [("swish", {"beta": 1.5}), ("swish", {"trainable": True}), ("gelu", {}),
                                         ("mish", {}), ("swiglu", {}), ("softsign", {}), ("prelu", {})])
def test_inductor_compiles_and_fuses(name, params):
    params = dict(params)
    trainable = params.pop("trainable", False)
    net = _net(name, params, trainable)
    compiled = torch.compile(net, fullgraph=True)
    x = torch.randn(16, 5)
    out = compiled(x)
    torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-5)
    out.sum().backward()


# ----- ONNX -----------------------------------------------------------------------------------------------------

_HAS_ORT = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))


if not _HAS_ORT and os.environ.get("CI"):  # pragma: no cover - CI installs the dev extras
    raise RuntimeError("onnx, onnxscript and onnxruntime are not installed; CI must run the ONNX export tests")


@pytest.mark.skipif(not _HAS_ORT, reason="onnx, onnxscript and onnxruntime are test extras (pip install -e '.[dev]')")
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_onnx_export_runs_in_onnxruntime(name, params, dynamo, tmp_path):
    import warnings

    import onnxruntime

    net = _net(name, params).eval()
    x = torch.randn(6, 5) * 2
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=dynamo, input_names=["x"], output_names=["y"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), net(x).detach(), rtol=1e-5, atol=1e-5)


# ----- modules as drop-ins --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE + GATED)
def test_modules_accept_inplace_and_honour_it_where_native_can(name):
    spec = actlab.spec(name)
    module = actlab.get(name, inplace=True).eval()
    x = _input(name, dtype=torch.float32)
    reference = actlab.get(name).eval()
    reference.load_state_dict(module.state_dict())  # learned parameters drawn at random (ACON) made equal
    expected = reference(x.clone())
    buf = x.clone()
    out = module(buf)
    torch.testing.assert_close(out, expected)
    if spec.native_inplace is not None and spec.native_covers(**spec.defaults):
        assert out.data_ptr() == buf.data_ptr()  # written in place
    else:
        torch.testing.assert_close(buf, x)  # left alone
    assert "inplace=True" in repr(module)


def test_unknown_module_keywords_are_a_type_error_naming_them():
    with pytest.raises(TypeError, match=r"Swish\(\).*'alpha'.*beta, trainable, inplace"):
        actlab.nn.Swish(alpha=1.0)


def test_a_number_parameter_traced_as_a_symbol_compiles_in_one_graph():
    """torch.compile(dynamic=True) traces a float parameter as a symbol, which the validation's math.isfinite could
    not read (it failed with fullgraph=True); eager calls still validate."""
    fn = torch.compile(lambda x, b: actlab.functional.swish(x, beta=b), dynamic=True, fullgraph=True)
    x = torch.randn(5)
    for beta in (1.5, 2.5):
        torch.testing.assert_close(fn(x, beta), x * torch.sigmoid(beta * x))
    with pytest.raises(actlab.InvalidParameterError):
        actlab.functional.swish(x, beta=float("nan"))


def test_the_string_form_compiles_in_one_graph_and_is_still_checked():
    """functional.apply("swish(beta=1.5)", x) failed under torch.compile(fullgraph=True): the parser's ast.parse
    cannot be traced. The string resolves once, as a constant; a bad value is still refused."""
    x = torch.randn(6)
    fn = torch.compile(lambda t: actlab.functional.apply("swish(beta=1.5)", t), fullgraph=True)
    torch.testing.assert_close(fn(x), x * torch.sigmoid(1.5 * x))
    fn = torch.compile(lambda t: actlab.functional.apply("leaky_relu", t, negative_slope=0.2), fullgraph=True)
    torch.testing.assert_close(fn(x), torch.nn.functional.leaky_relu(x, 0.2))
    bad = torch.compile(lambda t: actlab.functional.apply("swish(beta=-1)", t), fullgraph=True)
    with pytest.raises(Exception, match="beta must be a finite number with 0 <= beta"):
        bad(x)
