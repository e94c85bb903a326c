"""The CPU fast paths (actlab.kernels.cpu): taken where they apply, equal to the spec's stable composition, and
left for that composition where the input holds an infinity or NaN."""

from __future__ import annotations

import pytest
import torch

import actlab
from actlab.kernels import cpu
from actlab.kernels.autograd import compute_dtype

CASES = [("swish", {}), ("swish", {"beta": 1.5}), ("gelu", {}), ("mish", {}), ("hardswish", {}), ("hardsigmoid", {}),
         ("softsign", {}),
         ("squared_relu", {}), ("reglu", {}), ("swiglu", {}), ("swiglu", {"beta": 0.7}), ("geglu", {})]


def _generic(spec, x, params):
    return spec.torch_forward(x.to(compute_dtype(x.dtype)), **params)


def _generic_grad(spec, x, g, params):
    x = x.detach().requires_grad_()
    with torch.enable_grad():
        y = spec.torch_forward(x, **params)
    (dx,) = torch.autograd.grad(y, x, g)
    return dx


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name,params", CASES)
def test_fast_path_is_taken_and_matches_the_stable_composition(name, params, dtype):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = (torch.randn(33, 2 * 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4).to(dtype)
    g = torch.randn(x.shape if spec.kind == "elementwise" else (33, 40), dtype=torch.float64).to(dtype)
    fast = cpu.cpu_forward(spec, x, p)
    assert fast is not None, f"{name}: forward fast path not taken"
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fast, _generic(spec, x, p), **tol)
    has_bwd = cpu.covers(name)[1]
    with torch.no_grad():  # as inside autograd's backward without create_graph
        back = cpu.cpu_backward(spec, x, g, p, True, {})
    assert (back is not None) == (has_bwd and not (name == "hardsigmoid" and dtype == torch.float64))
    if back is not None:
        torch.testing.assert_close(back[0], _generic_grad(spec, x, g, p), **tol)


@pytest.mark.parametrize("name,params", CASES)
def test_non_finite_inputs_take_the_stable_path(name, params):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = torch.randn(4, 8)
    x[0, 5] = float("-inf")
    x[1, 6] = float("nan")
    fast = cpu.cpu_forward(spec, x, p)
    if fast is not None:  # paths whose natives are exact at -inf too (squared_relu, reglu)
        torch.testing.assert_close(fast, _generic(spec, x, p), equal_nan=True)
    y = actlab.functional.apply(spec, x, **params)
    torch.testing.assert_close(y, _generic(spec, x, p), equal_nan=True)


def test_trainable_swish_beta_gradient_from_the_fast_path():
    spec = actlab.spec("swish")
    x = torch.randn(1000, dtype=torch.float64)
    g = torch.randn(1000, dtype=torch.float64)
    beta = torch.tensor(1.3, dtype=torch.float64)
    with torch.no_grad():
        dx, grads = cpu.cpu_backward(spec, x, g, {"beta": beta}, True, {"beta": True})
    b = beta.clone().requires_grad_()
    xx = x.clone().requires_grad_()
    (xx * torch.sigmoid(b * xx)).backward(g)
    torch.testing.assert_close(dx, xx.grad)
    torch.testing.assert_close(grads["beta"], b.grad)


def test_fast_paths_stay_out_of_other_types_transforms_and_double_backward():
    spec = actlab.spec("swish")
    p = spec.resolve_params({})
    assert cpu.cpu_forward(spec, torch.randn(8, dtype=torch.bfloat16), p).dtype == torch.bfloat16  # via float32
    assert cpu.cpu_forward(spec, torch.randn(8, dtype=torch.complex64), p) is None
    x = torch.randn(8)
    with torch.enable_grad():
        assert cpu.cpu_backward(spec, x, torch.ones(8), p, True, {}) is None
    seen = []
    torch.func.vmap(lambda t: seen.append(cpu.cpu_forward(spec, t, p)) or t)(torch.randn(3, 8))
    assert seen == [None]
