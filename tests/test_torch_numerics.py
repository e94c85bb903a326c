"""PyTorch implementations against the float64 reference, in every floating type, at ordinary and extreme inputs.

DESIGN.md's policy: where PyTorch has the op, actlab is that op (bit for bit); actlab's own paths are within a few
ulps of |f(x)| plus a few ulps of |x|, half types computed in float32 and rounded once, and never NaN or inf for a
finite input whose answer is finite; at +-inf the limit or NaN, as the natives give."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import ELEMENTWISE, FLOAT_DTYPES, GATED, HALF_DTYPES, sample_points, ulps
from test_reference import cases

import actlab
from actlab import functional as AF


def _policy_excess(got: torch.Tensor, want: np.ndarray, x: np.ndarray, dtype: torch.dtype, k: float) -> np.ndarray:
    """DESIGN.md's numerics policy: |error| <= k ulps of |f(x)| plus k ulps of |x| (the input's own rounding, which
    the next layer sums with). Returns |error| / budget (<= 1 passes); float64 references, ``dtype``'s epsilon."""
    eps = float(torch.finfo(dtype).eps)
    tiny = float(torch.finfo(dtype).smallest_normal)
    err = np.abs(got.double().numpy() - want)
    budget = k * eps * (np.abs(want) + np.abs(x)) + tiny
    same = got.double().numpy() == want
    return np.where(same, 0.0, err / budget)


NON_NATIVE = [(n, p) for n, p in cases(ELEMENTWISE)
              if not (actlab.spec(n).native is not None
                      and actlab.spec(n).native_covers(**actlab.spec(n).resolve_params(p)))]
NATIVE = [(n, p) for n, p in cases(ELEMENTWISE) + [(g, {}) for g in GATED] if (n, p) not in NON_NATIVE
          and actlab.spec(n).native is not None and actlab.spec(n).native_covers(**actlab.spec(n).resolve_params(p))]


def _extremes(dtype):
    big = torch.finfo(dtype).max
    vals = [-big, -1e30, -1e10, -1e4, -200.0, -100.0, -89.0, -40.0, -20.0, -5.0, -3.0, -1e-30, 0.0, 1e-30, 3.0, 5.0,
            20.0, 40.0, 89.0, 100.0, 200.0, 1e4, 1e10, 1e30, big, math.inf, -math.inf, math.nan]
    return torch.tensor(vals, dtype=torch.float64).clamp(-big, big).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name,params", NATIVE)
def test_native_paths_are_exactly_the_native_op(name, params, dtype):
    """Where PyTorch has the op, actlab is that op: the same bits forward and backward, extremes and NaN included
    (so never less accurate, and never slower)."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = torch.cat([torch.from_numpy(sample_points(seed=3)).to(dtype), _extremes(dtype)])
    if spec.kind == "gated":
        x = x[: x.numel() // 2 * 2].reshape(-1, 2)
    xa, xn = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yn = actlab.functional.apply(spec, xa, **params), spec.native(xn, **p)
    torch.testing.assert_close(ya, yn, rtol=0, atol=0, equal_nan=True)
    g = torch.randn_like(ya)
    ya.backward(g)
    yn.backward(g)
    torch.testing.assert_close(xa.grad, xn.grad, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("name,params", NON_NATIVE)
def test_actlab_paths_within_ulps_of_output_and_input(name, params, dtype):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = torch.from_numpy(sample_points(seed=5)).to(dtype)
    xd = x.double().numpy()
    got = actlab.functional.apply(spec, x, **params)
    assert got.dtype == dtype
    excess = _policy_excess(got, spec.reference(xd, **p), xd, dtype, k=4.0)
    worst = int(np.argmax(excess))
    assert excess.max() <= 1.0, f"{name}{params}: {excess.max():.2f} x budget at x={xd[worst]!r}"


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=str)
@pytest.mark.parametrize("name,params", NON_NATIVE)
def test_half_types_computed_in_float32_and_rounded_once(name, params, dtype):
    """At most one ulp of the half type from the exact value, beyond float32's own policy budget."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    xh = torch.from_numpy(sample_points(seed=6)).to(dtype)
    got = actlab.functional.apply(spec, xh, **params)
    assert got.dtype == dtype
    xd = xh.double().numpy()
    want = spec.reference(xd, **p)
    eps32 = float(torch.finfo(torch.float32).eps)
    slack = 4 * eps32 * (np.abs(want) + np.abs(xd)) + 2 * float(torch.finfo(torch.float32).smallest_normal)
    within = np.abs(got.double().numpy() - want) <= slack
    excess = np.where(within, 0.0, ulps(got, want, dtype))
    worst = int(np.argmax(excess))
    assert excess.max() <= 1.0, f"{name}{params} {dtype}: {excess.max():.2f} ulp at x={xd[worst]!r}"


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name", [g for g in GATED if actlab.spec(g).native is None])
def test_gated_within_ulps_of_output_and_input(name, dtype):
    spec = actlab.spec(name)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    xd = x.to(dtype)
    got = actlab.functional.apply(spec, xd)
    assert got.shape == (64, 8) and got.dtype == dtype
    xs = xd.double().numpy()
    want = spec.reference(xs)
    # the input's scale here is |a| |b|: the gate's own input rounding, carried by the value half
    scale = np.abs(xs[..., :8] * xs[..., 8:])
    eps = float(torch.finfo(dtype).eps)
    k = 1.0 if dtype in HALF_DTYPES else 8.0
    assert (np.abs(got.double().numpy() - want) <= k * eps * (np.abs(want) + scale) + 1e-30).all()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_examples_from_the_issue(dtype):
    t = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    assert AF.softplus(t(1e4)).item() == t(1e4).item()
    for fn in (AF.swish, AF.silu, AF.mish, lambda v: AF.swish(v, beta=1.5)):
        y = fn(t(-1e4))
        assert y.item() == 0.0 and math.copysign(1.0, y.item()) == -1.0, fn
    x = t(-40.0).requires_grad_()
    y = AF.gelu(x)
    y.backward()
    assert y.item() == 0.0
    assert torch.isfinite(x.grad).all()
    for name in ("elu", "selu", "celu"):
        assert torch.isfinite(getattr(AF, name)(t(-1e4))).all(), name
    assert AF.sigmoid(t(-1e4)).item() == 0.0 and AF.sigmoid(t(1e4)).item() == 1.0
    assert AF.tanh(t(-1e4)).item() == -1.0 and AF.tanh(t(1e4)).item() == 1.0


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name,params", NON_NATIVE)
def test_infinities_give_the_limit_or_nan_and_nan_propagates(name, params, dtype):
    """At +-inf: the limit, or NaN as PyTorch's natives give (no extra pass to get the limit)."""
    spec = actlab.spec(name)
    x = torch.tensor([-math.inf, math.inf, math.nan], dtype=dtype)
    got = actlab.functional.apply(spec, x, **params).double().numpy()
    want = torch.from_numpy(spec.reference(np.array([-np.inf, np.inf]), **spec.resolve_params(params)))
    want = want.to(dtype).double().numpy()
    assert ((got[:2] == want) | np.isnan(got[:2])).all(), (got, want)
    assert math.isnan(got[2])


@pytest.mark.parametrize("dtype", [torch.float64, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize("name,params", NON_NATIVE)
def test_no_nan_or_inf_where_the_answer_is_finite(name, params, dtype):
    """Forward and backward: a finite input whose true output (or derivative) is finite in this dtype gives a
    finite result."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = _extremes(dtype)[:-3].unique().requires_grad_()
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
@pytest.mark.parametrize("name,params", NON_NATIVE)
def test_backward_in_half_and_single_matches_the_derivative(name, params, dtype):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = torch.from_numpy(sample_points(seed=7, n=200)).to(dtype).requires_grad_()
    y = actlab.functional.apply(spec, x, **params)
    y.backward(torch.ones_like(y))
    assert x.grad.dtype == dtype
    xd = x.detach().double().numpy()
    want = spec.derivative(xd, **p)
    # The derivative's policy: a few ulps of |f'(x)| plus a few ulps of its natural scale (1 for these gates:
    # backward formulas subtract terms of that size, e.g. silu_backward's 1 - sigmoid(u)).
    eps = float(torch.finfo(dtype).eps)
    k = 12.0 if dtype == torch.float32 else 2.0
    scale = np.abs(want) + 1.0 + np.abs(xd) * (dtype != torch.float32)
    got = x.grad.double().numpy()
    ok = np.abs(got - want) <= k * eps * scale
    ok |= np.isinf(got) & (np.abs(want) > float(torch.finfo(dtype).max)) & (np.sign(got) == np.sign(want))  # 3 x^2
    assert ok.all(), f"{name} {dtype}: bad at x={xd[~ok].tolist()[:5]}"


def test_gated_odd_last_dimension_is_a_clear_error():
    for name in GATED:
        with pytest.raises(actlab.ShapeError, match=rf"{name}.*even.*\(3, 5\).*5"):
            actlab.functional.apply(name, torch.randn(3, 5))


def test_a_tensor_parameter_that_does_not_fit_the_input_is_a_clear_error():
    """Per-channel or per-seed parameters broadcast to the input without enlarging it; anything else names the
    parameter and both shapes (it was torch's "size of tensor a (2) must match ..." from inside the math)."""
    with pytest.raises(actlab.ShapeError, match=r"swish: parameter 'beta' has shape \(2,\).*\(3,\)"):
        AF.swish(torch.randn(3), beta=torch.tensor([1.0, 2.0]))
    with pytest.raises(actlab.ShapeError, match=r"shape \(2, 3\)"):  # would enlarge the output
        AF.swish(torch.randn(3), beta=torch.ones(2, 3))
    assert AF.swish(torch.randn(2, 4, 3), beta=torch.ones(2, 1, 1)).shape == (2, 4, 3)  # per seed
    assert AF.swish(torch.randn(4, 3), beta=torch.ones(3)).shape == (4, 3)


def test_integer_input_is_a_clear_error_or_follows_the_native_op():
    with pytest.raises(TypeError, match="swish.*int64.*floating"):
        AF.swish(torch.arange(4), beta=1.5)
    torch.testing.assert_close(AF.relu(torch.arange(-2, 3)), torch.relu(torch.arange(-2, 3)))  # as torch.relu


