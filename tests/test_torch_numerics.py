"""PyTorch implementations against the float64 reference, in every floating type, at ordinary and extreme inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actlab
from actlab import functional as AF
from conftest import ELEMENTWISE, FLOAT_DTYPES, GATED, HALF_DTYPES, condition, sample_points, ulps
from test_reference import cases

# float32 error budget in ulps of the result, on top of the condition number (see conftest.condition): native ops
# (SLEEF exp/tanh) and actlab's compositions of two or three rounded steps stay within these.
F32_ULPS = {"default": 4.0}
# swish's CPU fast path runs aten's silu_backward (as F.silu's backward does): its 1 - sigmoid(u) from a rounded
# sigmoid costs up to ~|u|/2 ulps for u in (3, 17). Everything else keeps the default of 8.
BACKWARD_F32_ULPS = {"swish": 12.0}


def _forward(name, x, **params):
    return getattr(AF, name)(x, **params) if name != "prelu" else AF.prelu(x, params.get("init", 0.25))


def _torch_params(spec, params):
    return spec.resolve_params(params)


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_float64_matches_reference(name, params):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = sample_points(seed=4)
    got = actlab.functional.apply(spec, torch.from_numpy(x), **params).numpy()
    want = spec.reference(x, **p)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_float32_within_a_few_ulp(name, params):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x32 = torch.from_numpy(sample_points(seed=5)).float()
    got = actlab.functional.apply(spec, x32, **params)
    assert got.dtype == torch.float32
    xd = x32.double().numpy()
    want = spec.reference(xd, **p)
    excess = ulps(got, want, torch.float32) - condition(spec, xd, p)
    budget = F32_ULPS.get(name, F32_ULPS["default"])
    worst = int(np.argmax(excess))
    assert excess.max() <= budget, f"{name}{params}: {excess.max():.1f} ulp beyond conditioning at x={xd[worst]!r}"


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=str)
@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_half_types_within_their_rounding(name, params, dtype):
    """Computed in float32 and rounded once: at most one ulp of the half type from the exact value."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    xh = torch.from_numpy(sample_points(seed=6)).to(dtype)
    got = actlab.functional.apply(spec, xh, **params)
    assert got.dtype == dtype
    xd = xh.double().numpy()
    want = spec.reference(xd, **p)
    excess = ulps(got, want, dtype) - condition(spec, xd, p) * float(torch.finfo(torch.float32).eps / torch.finfo(dtype).eps)
    # Computed in float32, so float32's underflow threshold applies: an absolute error below its smallest normal
    # number is within the computation's range (swish(beta=10) at x = -8.94: the gate is 1e-39 in float32).
    excess[np.abs(got.double().numpy() - want) <= 2 * torch.finfo(torch.float32).smallest_normal] = 0.0
    worst = int(np.argmax(excess))
    assert excess.max() <= 1.0, f"{name}{params} {dtype}: {excess.max():.2f} ulp at x={xd[worst]!r}"


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name", GATED)
def test_gated_matches_reference(name, dtype):
    spec = actlab.spec(name)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    xd = x.to(dtype)
    got = actlab.functional.apply(spec, xd)
    assert got.shape == (64, 8) and got.dtype == dtype
    want = spec.reference(xd.double().numpy())
    if dtype == torch.float64:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-300)
    else:
        # a * g(b) rounds twice in float32 (g, then the product) before the final rounding; g's tail is as
        # ill-conditioned as the gate itself
        b = xd.double().numpy()[..., 8:]
        cond = condition(spec.gate, b) * float(torch.finfo(torch.float32).eps / torch.finfo(dtype).eps)
        excess = ulps(got, want, dtype) - cond
        assert excess.max() <= (6.0 if dtype == torch.float32 else 1.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_examples_from_the_issue(dtype):
    t = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    assert AF.softplus(t(1e4)).item() == t(1e4).item()
    for fn in (AF.swish, AF.silu, AF.mish):
        y = fn(t(-1e4))
        assert y.item() == 0.0 and math.copysign(1.0, y.item()) == -1.0, fn
    x = t(-40.0).requires_grad_()
    y = AF.gelu(x)
    y.backward()
    assert y.item() == 0.0 and math.copysign(1.0, y.item()) == -1.0
    assert torch.isfinite(x.grad).all()
    for name in ("elu", "selu", "celu"):
        assert torch.isfinite(getattr(AF, name)(t(-1e4))).all(), name
    assert AF.sigmoid(t(-1e4)).item() == 0.0 and AF.sigmoid(t(1e4)).item() == 1.0
    assert AF.tanh(t(-1e4)).item() == -1.0 and AF.tanh(t(1e4)).item() == 1.0
    assert AF.swish(t(-math.inf)).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_infinities_give_the_limit_and_nan_propagates(name, params, dtype):
    spec = actlab.spec(name)
    x = torch.tensor([-math.inf, math.inf, math.nan], dtype=dtype)
    got = actlab.functional.apply(spec, x, **params).double().numpy()
    want = torch.from_numpy(spec.reference(np.array([-np.inf, np.inf]), **spec.resolve_params(params)))
    want = want.to(dtype).double().numpy()
    np.testing.assert_array_equal(got[:2], want)
    assert math.isnan(got[2])


def _extremes(dtype):
    big = torch.finfo(dtype).max
    vals = [-big, -1e30, -1e10, -1e4, -200.0, -100.0, -89.0, -40.0, -20.0, -5.0, -1e-30, 0.0, 1e-30, 5.0, 20.0,
            40.0, 89.0, 100.0, 200.0, 1e4, 1e10, 1e30, big]
    return torch.tensor(vals, dtype=torch.float64).clamp(-big, big).to(dtype).unique()


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_no_nan_or_inf_where_the_answer_is_finite(name, params, dtype):
    """Forward and backward: a finite input whose true output (or derivative) is finite in this dtype gives a
    finite result."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = _extremes(dtype).requires_grad_()
    y = actlab.functional.apply(spec, x, **params)
    y.backward(torch.ones_like(y))
    xd = x.detach().double().numpy()
    f_true = torch.from_numpy(spec.reference(xd, **p)).to(dtype)
    d_true = torch.from_numpy(spec.derivative(xd, **p)).to(dtype)
    ok_f = torch.isfinite(y.detach()) | ~torch.isfinite(f_true)
    ok_d = torch.isfinite(x.grad) | ~torch.isfinite(d_true)
    assert ok_f.all(), f"forward not finite at {x.detach()[~ok_f].tolist()}"
    assert ok_d.all(), f"backward not finite at {x.detach()[~ok_d].tolist()}"
    assert not torch.isnan(y).any() and not torch.isnan(x.grad).any()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_in_half_and_single_matches_the_derivative(name, dtype):
    spec = actlab.spec(name)
    x = torch.from_numpy(sample_points(seed=7, n=200)).to(dtype).requires_grad_()
    y = actlab.functional.apply(spec, x)
    y.backward(torch.ones_like(y))
    assert x.grad.dtype == dtype
    xd = x.detach().double().numpy()
    want = spec.derivative(xd)
    # Relative: a few ulps beyond the derivative's own conditioning. Absolute: eps * (max|f'| + min(1, max|f|)),
    # because native backward formulas written from the output (sigmoid's s(1 - s), tanh's 1 - t^2) carry the
    # output's rounding, ulp(f), into the saturated tails where the derivative itself is that small.
    eps = torch.finfo(dtype).eps
    grid = np.linspace(-10, 10, 20001)
    scale = np.abs(spec.derivative(grid)).max() + min(1.0, np.abs(spec.reference(grid)).max())
    abs_err = np.abs(x.grad.double().numpy() - want)
    with np.errstate(all="ignore"):
        dcond = np.nan_to_num(np.abs(xd * (spec.derivative(xd * (1 + 1e-7)) - want) / (xd * 1e-7) / want),
                              nan=0.0, posinf=0.0)
    budget = BACKWARD_F32_ULPS.get(name, 8.0) if dtype == torch.float32 else 1.0
    rel_ok = ulps(x.grad, want, dtype) <= budget + dcond
    ok = rel_ok | (abs_err <= 2 * eps * scale)
    assert ok.all(), f"{name} {dtype}: bad at x={xd[~ok].tolist()[:5]}"


def test_gated_odd_last_dimension_is_a_clear_error():
    for name in GATED:
        with pytest.raises(actlab.ShapeError, match=rf"{name}.*even.*\(3, 5\).*5"):
            actlab.functional.apply(name, torch.randn(3, 5))


def test_integer_input_is_a_clear_error():
    with pytest.raises(TypeError, match="swish.*int64.*floating"):
        AF.swish(torch.arange(4))


