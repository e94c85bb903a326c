"""The compiled CPU loops (actlab.kernels.fused_cpu): taken for large tensors, equal to the spec's math forward and
backward (trainable parameters included), one compiled kernel for every parameter value, and a clean fallback."""

from __future__ import annotations

import pytest
import torch
from test_reference import PARAM_CASES

import actlab
from actlab.kernels import compiled, function, fused_cpu
from actlab.kernels.implementations import IMPLEMENTATIONS

FUSED = [s for s, impl in IMPLEMENTATIONS.items() if impl.fused is not None]
CASES = [(s.name, p) for s in FUSED for p in [{}] + PARAM_CASES.get(s.name, [])
         if not (s.native is not None and s.native_covers(**s.resolve_params(p)))]


@pytest.fixture
def small_threshold(monkeypatch):
    """The compiled path for tensors of any size, so the tests stay small (what is compiled does not depend on it),
    and actlab as without ``actlab build-ext``, whose compiled ops take these tensors where they are built."""
    monkeypatch.setattr(fused_cpu, "MIN_NUMEL", 1)
    monkeypatch.delenv("ACTLAB_FUSED_CPU", raising=False)
    monkeypatch.setattr(compiled, "load", lambda: None)
    monkeypatch.setattr(function, "_EAGER", {})  # lean paths rebuilt without the compiled ops, restored after


def _grid(spec, rows=7, dtype=torch.float32):
    width = 2 * 96 if spec.kind == "gated" else 96
    x = torch.linspace(-12, 12, rows * width, dtype=torch.float64).reshape(rows, width)
    return x[torch.randperm(rows, generator=torch.Generator().manual_seed(0))].to(dtype)


def _reference_grads(spec, x, g, params):
    """float64 autograd through the spec's own torch expression."""
    x64 = x.double().requires_grad_()
    p64 = {k: (v.detach().double().requires_grad_() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    y = spec.torch_forward(x64, **p64)
    y.backward(g.double())
    return y.detach(), x64.grad, {k: v.grad for k, v in p64.items() if isinstance(v, torch.Tensor)}


def _within_policy(actual, expected, scale, ulps=8):
    """DESIGN.md's numerics: a few ulps of the result plus a few ulps of the input's scale (F.gelu's 1 + erf in the
    negative tail is that accurate, and the fused GELU uses it as the native op does)."""
    eps = torch.finfo(actual.dtype).eps
    actual, expected = actual.double(), expected.double()
    bad = (actual - expected).abs() > ulps * eps * (expected.abs() + scale)
    assert not bad.any(), (actual[bad][:5], expected[bad][:5])


@pytest.mark.parametrize("spec", FUSED, ids=lambda s: s.name)
def test_fused_expressions_equal_the_spec_in_float64(spec):
    """The fused expressions are a second writing of the math: held to the spec's expressions on finite inputs
    (forward, derivative, every parameter derivative), so they cannot drift."""
    fused = IMPLEMENTATIONS[spec].fused
    target = spec.gate if spec.kind == "gated" else spec
    x = torch.linspace(-30, 30, 4001, dtype=torch.float64)
    for params in [{}] + PARAM_CASES.get(spec.name, []) + PARAM_CASES.get(target.name, []):
        p = target.resolve_params(params)
        _within_policy(fused.forward(x, **p), target.torch_forward(x, **p), x.abs())
        _within_policy(fused.derivative(x, **p), target.torch_derivative(x, **p), x.abs())
        for name, derivative in fused.param_derivatives.items():
            _within_policy(derivative(x, **p), target.torch_param_derivatives[name](x, **p), x.abs())


def _taken(calls, what, result):
    if result is not None:
        calls.append(what)
    return result


@pytest.mark.parametrize("name,params", CASES)
def test_the_compiled_path_is_taken_and_matches_float64(name, params, small_threshold, monkeypatch):
    spec = actlab.spec(name)
    calls = []
    for what in ("forward", "backward"):
        real = getattr(fused_cpu, what)
        monkeypatch.setattr(fused_cpu, what, lambda *a, _real=real, _what=what: _taken(calls, _what, _real(*a)))
    x = _grid(spec)
    xr = x.clone().requires_grad_()
    p = spec.resolve_params(params)
    y = actlab.functional.apply(spec, xr, **p)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    y.backward(g)
    assert calls == (["forward"] if IMPLEMENTATIONS[spec].fuse_forward else []) + ["backward"]
    y64, dx64, _ = _reference_grads(spec, x, g, p)
    scale = x.abs().max()
    _within_policy(y, y64, scale ** (2 if spec.kind == "gated" else 1))
    _within_policy(xr.grad, dx64, g.abs().max() * scale)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", ["squared_relu", "swiglu", "swish"])
def test_half_types_are_computed_in_float32_and_rounded_once(name, dtype, small_threshold):
    spec = actlab.spec(name)
    # swish: a trainable beta (its fused call); fixed betas keep aten's paths
    p = spec.resolve_params({"beta": torch.tensor(1.7, requires_grad=True)} if name == "swish" else {}, tensor_ok=True)
    x = _grid(spec, dtype=dtype)
    xr = x.clone().requires_grad_()
    y = actlab.functional.apply(spec, xr, **p)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    y.backward(g)
    assert y.dtype == dtype and xr.grad.dtype == dtype
    y64, dx64, _ = _reference_grads(spec, x, g, p)
    # one rounding of the float32 result: half an ulp of the type, plus float32's own error before it
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny
    assert ((y.double() - y64).abs() <= eps * y64.abs() + tiny).all()
    assert ((xr.grad.double() - dx64).abs() <= eps * dx64.abs() + tiny).all()


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.5, 4.0])
def test_a_trainable_beta_gets_its_gradient_from_the_same_loop(beta, small_threshold, monkeypatch):
    spec = actlab.spec("swish")
    calls = []
    real = fused_cpu.backward
    monkeypatch.setattr(fused_cpu, "backward", lambda *a: _taken(calls, "backward", real(*a)))
    x = _grid(spec, rows=40)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    b = torch.tensor([beta], requires_grad=True)
    xr = x.clone().requires_grad_()
    actlab.functional.swish(xr, beta=b).backward(g)
    _, dx64, dp64 = _reference_grads(spec, x, g, {"beta": torch.tensor([beta])})
    torch.testing.assert_close(xr.grad.double(), dx64, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(b.grad.double(), dp64["beta"], rtol=1e-5, atol=1e-4)
    assert b.grad.shape == b.shape and b.grad.dtype == b.dtype and calls == ["backward"]


def test_one_kernel_serves_every_parameter_value(small_threshold, monkeypatch):
    """Parameters go in as tensors: a new beta (or a trained one that moves every step) never recompiles."""
    monkeypatch.setattr(fused_cpu, "_KERNELS", {})  # kernels (and code objects) of this test's own
    module = actlab.get("swish", trainable=True)
    x = torch.randn(64, 64)
    for beta in (0.5, 1.5, 2.5, 3.5):
        with torch.no_grad():
            module.beta.fill_(beta)
        xr = x.clone().requires_grad_()
        module(xr).sum().backward()
    for beta in (0.7, 1.9):
        xr = x.clone().requires_grad_()
        actlab.functional.swish(xr, beta=beta).sum().backward()
    kernels = [fn for key, fn in fused_cpu._KERNELS.items() if key[0].name == "swish" and key[2] == torch.float32]
    assert kernels
    for fn in kernels:
        # dynamo's cache entries on the kernel's own code object: one compiled graph each
        assert len(torch._dynamo.eval_frame._debug_get_cache_entry_list(fn._torchdynamo_orig_callable.__code__)) == 1


def test_large_inputs_near_the_float32_limit_stay_finite(small_threshold):
    x = torch.tensor([-3e38, -1e38, -100.0, 0.0, 100.0, 1e38, 3e38]).repeat(8).requires_grad_()
    actlab.functional.swish(x, beta=10.0).sum().backward()
    assert x.grad[:7].tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]


def test_not_taken_for_small_non_contiguous_float64_or_stacked_parameters(monkeypatch):
    monkeypatch.setattr(fused_cpu, "_kernel", lambda *a, **k: pytest.fail("compiled path taken"))
    spec = actlab.spec("squared_relu")
    big = torch.randn(fused_cpu.MIN_NUMEL // 64, 128)
    for x in (torch.randn(10, 10), big.t(), big.double()):
        actlab.functional.squared_relu(x.requires_grad_()).sum().backward()
    stacked = torch.full((3, 1, 1), 1.5, requires_grad=True)
    actlab.functional.swish(torch.randn(3, fused_cpu.MIN_NUMEL // 3 + 1, 1, requires_grad=True), beta=stacked
                            ).sum().backward()
    assert fused_cpu.covers(spec, big, {}) is not None


def test_environment_variable_turns_it_off(small_threshold, monkeypatch):
    monkeypatch.setenv("ACTLAB_FUSED_CPU", "0")
    monkeypatch.setattr(fused_cpu, "_kernel", lambda *a, **k: pytest.fail("compiled path taken"))
    x = torch.randn(32, 32, requires_grad=True)
    actlab.functional.squared_relu(x).sum().backward()
    torch.testing.assert_close(x.grad, 2 * torch.relu(x.detach()))


def test_a_failing_compiler_warns_once_and_the_eager_paths_answer(small_threshold, monkeypatch):
    monkeypatch.setattr(fused_cpu, "_state", {"failed": False})
    monkeypatch.setattr(fused_cpu, "_KERNELS", {})

    def broken(*args, **kwargs):
        def kernel(*a):
            raise RuntimeError("no C++ compiler")
        return kernel

    monkeypatch.setattr(torch, "compile", broken)
    x = torch.randn(32, 32, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        y = actlab.functional.squared_relu(x)
    y.sum().backward()  # no second warning: the path is off now
    torch.testing.assert_close(y, torch.relu(x.detach()) ** 2)
    torch.testing.assert_close(x.grad, 2 * torch.relu(x.detach()))
    assert not fused_cpu.enabled()


def test_values_at_the_kink_and_zero(small_threshold):
    x = torch.tensor([-1.0, -0.0, 0.0, 1e-20, 1.0, 3.0]).repeat(8).requires_grad_()
    y = actlab.functional.squared_relu(x)
    y.backward(torch.ones_like(y))
    assert y[:6].tolist() == [0.0, 0.0, 0.0, pytest.approx(1e-40, rel=1e-3), 1.0, 9.0]  # a subnormal, kept
    assert x.grad[:6].tolist() == [0.0, 0.0, 0.0, pytest.approx(2e-20, rel=1e-6), 2.0, 6.0]


def test_warnings_as_errors_do_not_break_compiling(small_threshold, monkeypatch):
    """torch's lazy imports inside inductor warn (DeprecationWarning); a user's -W error must not turn that into a
    failed compile, nor the fallback's warning into an exception from their forward."""
    import warnings

    monkeypatch.setattr(fused_cpu, "_KERNELS", {})
    monkeypatch.setattr(fused_cpu, "_state", {"failed": False})
    x = torch.randn(24, 40, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = actlab.functional.squared_relu(x)
        y.sum().backward()
    assert fused_cpu.enabled()
    torch.testing.assert_close(x.grad, 2 * torch.relu(x.detach()))
