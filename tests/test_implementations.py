"""The implementation registry: every built-in is covered or says why not; the aten fast paths are taken and equal
the spec's expression; natives run where they cover the call; nothing reads a tensor's value (no host sync)."""

from __future__ import annotations

import pytest
import torch
from conftest import ELEMENTWISE, GATED
from test_reference import PARAM_CASES
from torch._subclasses.fake_tensor import FakeTensorMode

import actlab
from actlab.catalog import registry
from actlab.kernels import compiled, dispatch, function, implementations
from actlab.kernels.implementations import IMPLEMENTATIONS, NOT_IMPLEMENTED

BUILTINS = [actlab.spec(n) for n in actlab.names()]
FAST = [(s.name, p) for s, impl in IMPLEMENTATIONS.items() if impl.forward is not None
        for p in [{}] + PARAM_CASES.get(s.name, []) if not s.native_covers(**s.resolve_params(p)) or s.native is None]
ALL_CASES = [(n, p) for n in ELEMENTWISE + GATED for p in [{}] + PARAM_CASES.get(n, [])]


# The activations DESIGN.md names: each has a Triton kernel and, where PyTorch lacks the op, an eager fast path. The
# rest of the catalogue (the survey, framework names, learnable ones) runs the generic path from its spec alone,
# which the parametrized tests hold to the same numerics; an entry is an optional addition.
CORE = {"sigmoid", "tanh", "relu", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "swish", "mish",
        "softplus", "threshold_relu", "relu6", "hardsigmoid", "hardswish", "softsign", "log_sigmoid", "squared_relu",
        "identity", "glu", "reglu", "geglu", "swiglu", "softmax"}


@pytest.mark.parametrize("spec", [s for s in BUILTINS if s.name in CORE or s in IMPLEMENTATIONS], ids=lambda s: s.name)
def test_every_builtin_has_its_implementations_or_says_why_not(spec):
    if spec.name in NOT_IMPLEMENTED:
        assert spec not in IMPLEMENTATIONS and NOT_IMPLEMENTED[spec.name]
        return
    impl = IMPLEMENTATIONS[spec]
    assert impl.triton is not None, f"{spec.name}: no Triton kernel"
    assert callable(spec.torch_forward)
    if spec.kind == "elementwise":
        assert callable(spec.torch_derivative)
    # no native op for its parameters -> an eager fast path, or a note why the expression is enough
    if spec.native is None:
        assert impl.forward is not None and impl.backward is not None, f"{spec.name}: no eager fast path"


def test_the_generic_machinery_names_no_activation():
    import inspect

    for module in (dispatch, function):
        source = inspect.getsource(module)
        for spec in BUILTINS:
            assert f'"{spec.name}"' not in source and f"'{spec.name}'" not in source, (module.__name__, spec.name)


def _expression(spec, x, p):
    return spec.torch_forward(x.to(function.compute_dtype(x.dtype)), **p)


def _expression_grad(spec, x, g, p):
    x = x.detach().requires_grad_()
    with torch.enable_grad():
        y = spec.torch_forward(x, **p)
    (dx,) = torch.autograd.grad(y, x, g)
    return dx


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name,params", FAST)
def test_fast_path_is_taken_and_equals_the_expression(name, params, dtype, monkeypatch):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    impl = IMPLEMENTATIONS[spec]
    calls = []
    monkeypatch.setitem(IMPLEMENTATIONS, spec, implementations.Implementation(
        lambda *a: calls.append("f") or impl.forward(*a), lambda *a: calls.append("b") or impl.backward(*a),
        impl.triton))
    x = (torch.randn(33, 2 * 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4).to(dtype)
    g = torch.randn(x.shape if spec.kind == "elementwise" else (33, 40), dtype=torch.float64).to(dtype)
    xr = x.clone().requires_grad_()
    y = actlab.functional.apply(spec, xr, **params)
    y.backward(g)
    assert calls == ["f", "b"], f"{name}: fast paths not taken ({calls})"
    # natives inside the fast paths (F.gelu's 1 + erf) are accurate to ulps of the input, not of a tiny output
    tol = dict(rtol=1.3e-6, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(y.detach(), _expression(spec, x, p), **tol)
    torch.testing.assert_close(xr.grad, _expression_grad(spec, x, g, p), **tol)


HALF_AS_IS = [(n, p) for n, p in FAST if IMPLEMENTATIONS[actlab.spec(n)].half_as_is]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name,params", HALF_AS_IS)
def test_entries_that_take_half_types_as_they_are_round_once(name, params, dtype):
    """``half_as_is`` promises that the aten paths on a half tensor give the float32 result rounded once (no
    intermediate rounding to the half type, such as beta x): forward and backward equal the same entry run on the
    float32 copies, rounded, bit for bit."""
    spec = actlab.spec(name)
    impl, p = IMPLEMENTATIONS[spec], spec.resolve_params(params)
    x = torch.cat([torch.randn(2000, generator=torch.Generator().manual_seed(2)) * 5,
                   torch.tensor([0.0, -0.0, 1e-3, -1e-3, 3.0, -3.0, 300.0, -300.0])]).to(dtype).reshape(-1, 2)
    g = torch.randn(x.shape if spec.kind == "elementwise" else (x.shape[0], 1)).to(dtype)
    assert torch.equal(impl.forward(x, p), impl.forward(x.float(), p).to(dtype))
    half, single = impl.backward(x, g, p, True, {}), impl.backward(x.float(), g.float(), p, True, {})
    assert half[0].dtype == dtype and torch.equal(half[0], single[0].to(dtype))


def _general(y):
    """Whether ``y`` came from the general Function (its backward node)."""
    return type(y.grad_fn).__name__ == "ActivationFunctionBackward"


def _lean_node(spec, y) -> bool:
    """Whether ``y``'s backward node is the lean path the entry takes: its compiled node where that is built, else
    its composed ops' or the lean Function."""
    impl = IMPLEMENTATIONS[spec]
    if impl.compiled is not None and compiled.load() is not None:
        return y.grad_fn.name() == f"{impl.compiled}_lean_backward"
    return (type(y.grad_fn).__name__ == "EagerActivationFunctionBackward") != (impl.composed is not None)


def _agree(spec, lean, general) -> bool:
    """The lean paths' values against the general Function's: the same bits where both make the same aten calls;
    where the compiled fused loops run (an entry's compiled op, built, on float32 or half types) within 4 ulps of the
    type at the values' scale: their formulas are aten's, evaluated in one pass."""
    if IMPLEMENTATIONS[spec].compiled is None or compiled.load() is None or lean.dtype == torch.float64:
        return torch.equal(lean, general)
    eps = torch.finfo(lean.dtype).eps
    torch.testing.assert_close(lean, general, rtol=4 * eps, atol=4 * eps * general.abs().max().item())
    return True


def _saved_bytes(fn, x):
    seen = {}
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) and t,
            lambda t: t):
        y = fn(x)
    return y, sum(seen.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("name,params", FAST)
def test_the_lean_paths_serve_plain_cpu_calls_and_equal_the_general_function(name, params, dtype):
    """Modules and functional calls on a CPU tensor that requires grad take the lean paths (a lean Function, or the
    entry's composed ops), which keep one tensor of the input's size; values and gradients are the general
    Function's (:func:`_agree`)."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = (torch.randn(6, 2 * 10, generator=torch.Generator().manual_seed(1)) * 4).to(dtype)
    g = torch.randn(6, 10 if spec.kind == "gated" else 20).to(dtype)
    lean_x, general_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    for call in (actlab.get(name, **params), lambda t: actlab.functional.apply(spec, t, **params)):
        y, saved = _saved_bytes(call, lean_x)
        assert not _general(y) and saved == x.numel() * x.element_size()
        assert _lean_node(spec, y)
        y.backward(g)
    y_general = function.activation_function(spec).apply(general_x, *p.values())
    assert _general(y_general)
    y_general.backward(g)
    assert _agree(spec, y.detach(), y_general.detach())
    assert _agree(spec, lean_x.grad, 2 * general_x.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("x_grad,beta_grad", [(True, True), (False, True), (True, False)])
def test_a_trained_beta_takes_the_lean_function_with_the_general_ones_gradients(dtype, x_grad, beta_grad):
    """A one-element parameter tensor (swish's trained beta) rides in the lean Function; whichever of the input and
    the parameter needs a gradient gets the general Function's (:func:`_agree`; beta's, a sum, within a few ulps of
    its terms' sizes)."""
    spec = actlab.spec("swish")
    x = (torch.randn(6, 20, generator=torch.Generator().manual_seed(3)) * 4).to(dtype)
    g = torch.randn(6, 20).to(dtype)
    grads = []
    for lean in (True, False):
        xi = x.clone().requires_grad_(x_grad)
        beta = torch.tensor(1.3, dtype=dtype, requires_grad=beta_grad)
        fn = actlab.functional.swish if lean else function.activation_function(spec).apply
        y = fn(xi, beta=beta) if lean else fn(xi, beta)
        assert _general(y) != lean
        y.backward(g)
        grads.append((y.detach(), xi.grad, beta.grad))
    for i, (lean_value, general_value) in enumerate(zip(*grads)):
        assert (lean_value is None) == (general_value is None)
        if i == 2 and lean_value is not None and dtype != torch.float64:  # a sum: a few ulps of its terms' sizes
            terms = (g.float().abs() * x.float() ** 2 / 4).sum().item()  # sigmoid' <= 1/4
            torch.testing.assert_close(lean_value, general_value, rtol=0, atol=4 * torch.finfo(dtype).eps * terms)
        else:
            assert lean_value is None or _agree(spec, lean_value, general_value)
    module = actlab.get("swish", trainable=True)
    assert not _general(module(x.requires_grad_(False)))  # the input needs no gradient, beta does
    with torch.no_grad():
        assert module(x).grad_fn is None


@pytest.mark.parametrize("name", ["softsign", "squared_relu"])  # a lean Function; composed ops
def test_the_lean_paths_are_not_taken_where_the_general_function_is_needed(name, monkeypatch):
    module = actlab.get(name)
    x = torch.randn(4, 6, requires_grad=True)
    assert not _general(module(x))
    stacked = torch.full((4, 1), 1.5, requires_grad=True)  # one beta per row: more than one element
    assert _general(actlab.functional.swish(x, beta=stacked))
    with torch.no_grad():
        assert module(x).grad_fn is None
    with torch.autograd.forward_ad.dual_level():  # forward mode: the general Function's jvp rule
        dual = torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))
        assert _general(module(dual))
    # torch.func: the general Function (with its vmap rule) runs; the lean one would not batch
    torch.testing.assert_close(torch.func.vmap(module)(x), module(x))
    expected = torch.autograd.grad(module(x).sum(), x)[0]
    torch.testing.assert_close(torch.func.grad(lambda t: module(t).sum())(x.detach()), expected)
    traced = torch.jit.trace(module, x.detach())
    assert "EagerFunction" not in str(traced.graph)
    if IMPLEMENTATIONS[module.spec].fused is not None and not function.eager_paths(module.spec).every_size:
        # the sizes fused_cpu compiles go there (unless the built compiled op serves every size)
        monkeypatch.setattr(actlab.kernels.fused_cpu, "covers", lambda *a: IMPLEMENTATIONS[module.spec])
        monkeypatch.setattr(actlab.kernels.fused_cpu, "forward", lambda *a: None)
        monkeypatch.setattr(actlab.kernels.fused_cpu, "backward", lambda *a: None)
        assert _general(module(x)) and _general(actlab.functional.apply(name, x))


@pytest.mark.parametrize("name,params", FAST)
def test_calls_without_autograd_take_the_lean_forward(name, params, monkeypatch):
    spec = actlab.spec(name)
    x = torch.randn(6, 20, generator=torch.Generator().manual_seed(2)) * 4
    expected = function.forward_math(spec, x, spec.resolve_params(params))
    for module in (function, dispatch):
        monkeypatch.setattr(module, "forward_math", lambda *a: pytest.fail("the general routing ran"))
    module = actlab.get(name, **params)
    with torch.no_grad():
        assert _agree(spec, module(x.requires_grad_()), expected)
    assert _agree(spec, actlab.functional.apply(spec, x.detach(), **params), expected)


@pytest.mark.parametrize("name", ["softsign", "squared_relu"])
def test_the_lean_paths_support_double_backward(name):
    x = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    y = actlab.get(name)(x)
    assert not _general(y)
    (dx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (ddx,) = torch.autograd.grad(dx.sum(), x)
    expected = -2 * torch.sign(x) / (1 + x.abs()) ** 3 if name == "softsign" else 2.0 * (x > 0).double()
    torch.testing.assert_close(ddx, expected.detach())


@pytest.mark.parametrize("beta", [0.0, -0.4, 1.0, 1.3, 3.0])
def test_trainable_swish_beta_fast_path_matches_autograd(beta):
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1000, dtype=torch.float64)
    b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    actlab.functional.swish(x, beta=b).backward(g)
    x2, b2 = x.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    (x2 * torch.sigmoid(b2 * x2)).backward(g)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(b.grad, b2.grad)


def test_swish_backward_for_a_large_beta_has_no_overflow_nan():
    x = torch.tensor([-3e38, -1e38, 0.0, 1e38, 3e38], requires_grad=True)
    actlab.functional.swish(x, beta=10.0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("name,params", ALL_CASES)
def test_no_host_synchronisation_in_forward_or_backward(name, params):
    """Fake tensors refuse every read of a value (item, bool, data-dependent shapes), so the whole call, forward
    and backward, runs under them only if it never synchronises."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    with FakeTensorMode():
        x = torch.randn(8, 16, requires_grad=True)
        y = actlab.functional.apply(spec, x, **p)
        y.backward(torch.ones_like(y))
        assert x.grad.shape == x.shape


def test_natives_run_where_they_cover_the_call(monkeypatch):
    seen = []
    spec = actlab.spec("gelu")
    monkeypatch.setattr(function, "forward_math", lambda *a: seen.append("actlab"))
    x = torch.randn(10, requires_grad=True)
    torch.testing.assert_close(actlab.functional.gelu(x), torch.nn.functional.gelu(x))
    torch.testing.assert_close(actlab.get("swish")(x), torch.nn.functional.silu(x))
    assert seen == [] and spec.native_covers(approximate="tanh")
    assert not actlab.spec("swish").native_covers(beta=1.5)
    assert not actlab.spec("swish").native_covers(beta=torch.tensor(1.0))


def test_a_user_registered_activation_gets_a_memory_lean_fusable_path():
    """Only a torch expression: the derivative is derived once (forward-mode AD), backward keeps only the input,
    double backward and jvp work, and it compiles with fullgraph."""
    spec = actlab.ActivationSpec(
        name="test_softclip", formula=r"x \tanh(e^x)", references=(),
        torch_forward=lambda x, scale: x * torch.tanh(torch.exp(scale * x)),
        params={"scale": actlab.Param(1.0, low=0.0, trainable_allowed=True)})
    actlab.register(spec)
    try:
        x = torch.linspace(-4, 4, 33, dtype=torch.float64, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            y = actlab.functional.apply("test_softclip", x)
        assert len(saved) == 1 and saved[0].data_ptr() == x.data_ptr()
        fn = lambda t: actlab.functional.apply("test_softclip", t)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,)) and torch.autograd.gradgradcheck(fn, (x,))
        xd = x.detach().numpy()
        torch.testing.assert_close(torch.from_numpy(spec.reference(xd)), y.detach())
        (t,) = torch.autograd.grad(y.sum(), x)
        torch.testing.assert_close(torch.from_numpy(spec.derivative(xd)), t)
        _, jvp = torch.func.jvp(fn, (x.detach(),), (torch.ones_like(x),))
        torch.testing.assert_close(jvp, t)
        module = actlab.get("test_softclip", trainable=True)
        compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
        out = compiled(x.detach().float())
        out.sum().backward()
        assert module.scale.grad is not None and torch.isfinite(module.scale.grad)
    finally:
        registry.unregister("test_softclip")


# ----- shapes, strides, dtypes: every activation, every path -----------------------------------------------------

SHAPE_CASES = [(n, p) for n in ELEMENTWISE + GATED for p in [{}] + PARAM_CASES.get(n, [])[:1]]


@pytest.mark.parametrize("name,params", SHAPE_CASES)
def test_non_contiguous_inputs_match_contiguous(name, params):
    spec = actlab.spec(name)
    base = torch.randn(12, 6, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3
    views = [lambda t: t.transpose(0, 2), lambda t: t[:, ::2, :], lambda t: t.permute(1, 0, 2)[..., 2:]]
    for view in views:
        if spec.kind == "gated" and view(base).shape[-1] % 2:
            continue
        a = view(base).contiguous().requires_grad_()
        b = view(base.clone()).requires_grad_()  # a strided view of its own storage (a leaf: nothing needs grad)
        assert not b.is_contiguous()
        ya, yb = actlab.functional.apply(spec, a, **params), actlab.functional.apply(spec, b, **params)
        torch.testing.assert_close(yb, ya, rtol=1e-12, atol=1e-14)
        g = torch.randn_like(ya)
        ya.backward(g)
        yb.backward(g)
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name,params", SHAPE_CASES)
def test_empty_and_scalar_shapes_and_dtypes(name, params, dtype):
    spec = actlab.spec(name)
    shapes = [(0, 4), (2, 0, 4)] + ([()] if spec.kind == "elementwise" else [])
    for shape in shapes:
        x = torch.randn(shape, dtype=dtype).requires_grad_()
        y = actlab.functional.apply(spec, x, **params)
        expected = (*shape[:-1], shape[-1] // 2) if spec.kind == "gated" else shape
        assert y.shape == expected and y.dtype == dtype
        y.sum().backward()
        assert x.grad.shape == x.shape and x.grad.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
def test_a_module_with_a_trained_beta_binds_the_lean_path_and_equals_the_general_function(dtype):
    """A trained beta's module decides its lean path once (``learned_call``); values and both gradients are the
    general Function's (:func:`_agree`), and a pickled module binds again."""
    import pickle

    module = actlab.get("swish", trainable=True).to(dtype)
    with torch.no_grad():
        module.beta.fill_(1.7)
    assert module._bound_learned is not None
    x = (torch.randn(6, 20, generator=torch.Generator().manual_seed(9)) * 4).to(dtype)
    g = torch.randn(6, 20).to(dtype)
    lean_x, general_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, saved = _saved_bytes(module, lean_x)
    assert not _general(y) and saved == x.numel() * x.element_size() + module.beta.numel() * module.beta.element_size()
    y.backward(g)
    beta = module.beta.detach().clone().requires_grad_()
    y_general = function.activation_function(module.spec).apply(general_x, beta)
    assert _general(y_general)
    y_general.backward(g)
    assert _agree(module.spec, y.detach(), y_general.detach()) and _agree(module.spec, lean_x.grad, general_x.grad)
    terms = (g.float().abs() * x.float() ** 2 / 4).sum().item()  # a sum: a few ulps of its terms' sizes
    torch.testing.assert_close(module.beta.grad, beta.grad, rtol=0, atol=4 * torch.finfo(dtype).eps * terms)
    with torch.no_grad():
        assert torch.equal(module(x), y.detach())
    assert torch.equal(module(x), y.detach())  # x without grad, beta with: still recorded for beta
    restored = pickle.loads(pickle.dumps(module))
    assert restored._bound_learned is not None and torch.equal(restored(x), y.detach())
