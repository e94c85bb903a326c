"""actlab's compiled lean paths (``actlab build-ext``): the same numbers as the Python lean paths, bit for bit, in
every dtype; the backwards they leave to Python (double backward, batched gradients, float64 hardsigmoid) right;
autograd's bookkeeping (saved-tensor checks, retain_graph, which inputs need gradients) as PyTorch's own nodes.

The README's test command builds the extension first, so these run in CI; elsewhere they skip until it is built."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

import actlab
from actlab.kernels import compiled, function
from actlab.kernels.implementations import IMPLEMENTATIONS

built = pytest.mark.skipif(compiled.load() is None, reason="the compiled lean paths are not built (actlab build-ext)")

COMPILED = [spec for spec, impl in IMPLEMENTATIONS.items() if impl.compiled is not None]
CASES = [("swish", {"beta": 1.5}), ("swish", {"beta": 0.5}), ("swish", {"beta": 20.0}), ("squared_relu", {}),
         ("hardsigmoid", {}), ("swiglu", {}), ("swiglu", {"beta": 1.7}), ("geglu", {}),
         ("geglu", {"approximate": "tanh"})]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def test_the_cases_cover_every_compiled_entry():
    assert {actlab.spec(name) for name, _ in CASES} == set(COMPILED)


def _same(a, b) -> bool:
    """Bit for bit, NaN included (an input at the type's maximum may give NaN on both paths)."""
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    return True


def _python_paths(spec):
    """The Python lean paths of the same entry, as they run without the build."""
    return function._build_eager(spec, dataclasses.replace(IMPLEMENTATIONS[spec], compiled=None))


def _input(spec, dtype, contiguous=True):
    x = torch.cat([torch.randn(400, generator=torch.Generator().manual_seed(3)) * 6,
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, 300.0, -300.0, 3e4, -3e4, 1e30, -1e30])])
    x = x.reshape(-1, 4).to(dtype)
    return x if contiguous else x.t().contiguous().t()  # same values, column-major


@built
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_the_compiled_node_equals_the_python_lean_function_bit_for_bit(name, params, dtype, contiguous):
    spec = actlab.spec(name)
    values = tuple(spec.resolve_params(params).values())
    ops = {"compiled": function.eager_paths(spec), "python": _python_paths(spec)}
    assert ops["compiled"].autograd is compiled.lean_op(IMPLEMENTATIONS[spec].compiled, function._compiled_fallback)
    out, grads = {}, {}
    for label, paths in ops.items():
        x = _input(spec, dtype, contiguous).requires_grad_()
        y = paths.autograd(x, *values)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(4)).to(dtype)
        y.backward(g)
        out[label], grads[label] = y, x.grad
    resolved = dict(spec.resolve_params(params))
    forward = {label: paths.forward(_input(spec, dtype, contiguous), resolved) for label, paths in ops.items()}
    assert forward["compiled"].grad_fn is None and _same(forward["compiled"], forward["python"])
    assert _same(forward["compiled"], out["compiled"].detach())
    assert out["compiled"].grad_fn.name() == f"{IMPLEMENTATIONS[spec].compiled}_lean_backward"
    assert out["compiled"].dtype == dtype and out["compiled"].shape == out["python"].shape
    assert _same(out["compiled"], out["python"]) and _same(grads["compiled"], grads["python"])


@built
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("needs", ["both", "x", "beta"])
def test_a_trained_beta_takes_the_compiled_node_and_equals_the_python_lean_function(dtype, needs):
    spec = actlab.spec("swish")
    results = []
    for paths in (function.eager_paths(spec), _python_paths(spec)):
        x = _input(spec, dtype).requires_grad_(needs != "beta")
        beta = torch.tensor(1.3, requires_grad=needs != "x")
        y = paths.function(x, beta)
        y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(5)).to(dtype))
        results.append((y, x.grad, beta.grad))
    (y, gx, gb), (y_py, gx_py, gb_py) = results
    assert y.grad_fn.name() == "swish_lean_backward" and _same(y, y_py)
    assert (gx is None) == (needs == "beta") and (gx is None or _same(gx, gx_py))
    assert (gb is None) == (needs == "x") and (gb is None or _same(gb, gb_py))


@built
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_double_backward_and_gradchecks_through_the_fallback(name, params):
    """A backward recorded for double backward is the fallback's (the spec's differentiable expressions)."""
    module = actlab.get(name, **params)
    x = (torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) * 2).requires_grad_()
    assert module(x).grad_fn.name().endswith("_lean_backward")
    assert torch.autograd.gradcheck(module, (x,)) and torch.autograd.gradgradcheck(module, (x,))


@built
def test_a_trained_beta_passes_gradcheck_and_gradgradcheck():
    x = (torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) * 2).requires_grad_()
    beta = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    f = lambda x, b: actlab.functional.swish(x, beta=b)  # noqa: E731
    assert f(x, beta).grad_fn.name() == "swish_lean_backward"
    assert torch.autograd.gradcheck(f, (x, beta)) and torch.autograd.gradgradcheck(f, (x, beta))


@built
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_batched_gradients_go_through_the_fallback(name, params):
    module = actlab.get(name, **params)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(8)).requires_grad_()
    y = module(x)
    eye = torch.eye(y.numel()).reshape(-1, *y.shape)
    (batched,) = torch.autograd.grad(y, x, eye, retain_graph=True, is_grads_batched=True)
    rows = [torch.autograd.grad(y, x, e, retain_graph=True)[0] for e in eye]
    torch.testing.assert_close(batched, torch.stack(rows), rtol=1e-6, atol=1e-7)


@built
def test_float64_hardsigmoid_backward_is_the_expressions_not_aten_float32_sixth():
    x = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    actlab.functional.hardsigmoid(x).backward(torch.ones(3, dtype=torch.float64))
    assert torch.equal(x.grad, torch.full((3,), 1 / 6, dtype=torch.float64))


@built
def test_autograd_bookkeeping_matches_pytorch_nodes():
    module = actlab.get("swish(beta=1.5)")
    x = torch.randn(4, 8, requires_grad=True)
    h = x * 1.0
    y = module(h)
    h.add_(1.0)  # the saved input changed before backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y = module(x)
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, 2 * torch.ops.aten.silu_backward(torch.ones(4, 8), 1.5 * x.detach()))
    with pytest.raises(RuntimeError, match="second time|already been freed"):
        y.sum().backward()
    with torch.no_grad():
        assert module(x).grad_fn is None
    assert module(x.detach()).grad_fn is None


def test_a_build_is_keyed_by_the_source_torch_and_python(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTLAB_COMPILED_DIR", str(tmp_path))
    name = compiled.module_name()
    assert compiled.build_directory() == tmp_path / name
    monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    assert compiled.module_name() != name
    compiled.load.cache_clear()
    try:
        assert compiled.load() is None  # nothing built here for this key: the Python paths run
    finally:
        compiled.load.cache_clear()


def test_actlab_compiled_0_turns_the_build_off():
    code = ("import torch, actlab; from actlab.kernels import compiled; assert compiled.load() is None; "
            "print(type(actlab.get('swish(beta=1.5)')(torch.ones(2, requires_grad=True)).grad_fn).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "ACTLAB_COMPILED": "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "EagerActivationFunctionBackward"


def test_a_failed_build_is_one_error_line_and_exit_1(tmp_path):
    env = {**os.environ, "ACTLAB_COMPILED_DIR": str(tmp_path), "CXX": "/bin/false"}
    proc = subprocess.run([sys.executable, "-m", "actlab", "build-ext"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "error: build-ext: the build failed" in proc.stderr


@built
def test_threads_run_the_nodes_and_the_fallback_at_once():
    """Forward releases the GIL while aten runs and the fallback takes it back from autograd's threads: two Python
    threads training through both give what one thread gives."""
    from concurrent.futures import ThreadPoolExecutor

    module = actlab.get("swish(beta=1.5)")
    x = torch.randn(64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(10))

    def work(_):
        grads = []
        for _ in range(20):
            t = x.clone().requires_grad_()
            (g,) = torch.autograd.grad(module(t).sum(), t, create_graph=True)  # second order: the fallback
            (h,) = torch.autograd.grad(g.sum(), t)
            grads.append((g.detach(), h))
        return grads

    expected = work(0)
    with ThreadPoolExecutor(2) as pool:
        for result in pool.map(work, range(4)):
            assert all(torch.equal(g, ge) and torch.equal(h, he) for (g, h), (ge, he) in zip(result, expected))
