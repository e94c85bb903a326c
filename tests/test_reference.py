"""The float64 NumPy references and derivatives against high-precision mpmath values."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from conftest import ELEMENTWISE, GATED, away_from_breakpoints, sample_points

import actlab
from actlab.catalog.definitions.exponential import SELU_ALPHA, SELU_SCALE

mpmath.mp.dps = 40

# Parameter settings beyond the defaults, so parametrised paths are tested too.
PARAM_CASES = {
    "leaky_relu": [{"negative_slope": 0.2}],
    "elu": [{"alpha": 0.5}],
    "celu": [{"alpha": 2.0}],
    "gelu": [{"approximate": "tanh"}],
    "swish": [{"beta": 0.0}, {"beta": 1.5}, {"beta": 10.0}],
    "softplus": [{"beta": 2.0, "threshold": 10.0}],
    "threshold_relu": [{"threshold": -0.5}],
    "rrelu": [{"lower": 0.1, "upper": 0.3}],
    "prelu": [{"init": 0.1}],
}


def cases(names):
    return [(n, p) for n in names for p in [{}] + PARAM_CASES.get(n, [])]


def _exact(spec, x: float, params) -> float:
    return float(spec.exact(mpmath.mpf(x), **params))


def _needs_exact(spec) -> None:
    if spec.exact is None:  # a spec given as a torch expression alone: finite differences are its only check
        pytest.skip(f"{spec.name} has no mpmath function (no expression, no exact)")


def conditioned_rtol(spec, x, p, base=2e-14):
    """Relative tolerance base + eps * |x f'(x) / f(x)|: the error that rounding x itself already causes
    (GELU's tail at x = -30 is conditioned like x^2, so no float64 method is better than ~1e-13 there)."""
    with np.errstate(all="ignore"):
        cond = np.abs(x * spec.derivative(x, **p) / spec.reference(x, **p))
    return base + np.finfo(np.float64).eps * np.nan_to_num(cond, nan=0.0, posinf=0.0)


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_reference_matches_mpmath(name, params):
    spec = actlab.spec(name)
    _needs_exact(spec)
    p = spec.resolve_params(params)
    x = sample_points(seed=1, n=200)
    got = spec.reference(x, **p)
    want = np.array([_exact(spec, v, p) for v in x])
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    bad = rel > conditioned_rtol(spec, x, p)
    assert not bad.any(), list(zip(x[bad], got[bad], want[bad]))


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_derivative_matches_mpmath_derivative(name, params):
    spec = actlab.spec(name)
    _needs_exact(spec)
    p = spec.resolve_params(params)
    x = away_from_breakpoints(spec, sample_points(seed=2, n=120), p)
    x = x[np.abs(x) < 50]  # mpmath.diff needs the function to be representable around x
    got = spec.derivative(x, **p)
    expr = spec.parsed_expression
    with mpmath.workdps(120):  # tanh(-49) = -1 + 1e-43: differencing it needs far more than 40 digits
        if expr is not None:  # a spec written as an expression: SymPy's closed-form derivative, in mpmath
            want = np.array([float(expr.mpmath_derivative(mpmath.mpf(v), **p)) for v in x])
        else:
            want = np.array([float(mpmath.diff(lambda t: spec.exact(t, **p), mpmath.mpf(v))) for v in x])
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-250)


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_derivative_matches_finite_differences_of_reference(name, params):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = away_from_breakpoints(spec, np.linspace(-8, 8, 401), p, margin=1e-2)
    h = 1e-6
    fd = (spec.reference(x + h, **p) - spec.reference(x - h, **p)) / (2 * h)
    np.testing.assert_allclose(spec.derivative(x, **p), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", GATED)
def test_gated_reference_matches_mpmath(name):
    spec = actlab.spec(name)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 8)) * 3
    got = spec.reference(x)
    h = x.shape[-1] // 2
    want = np.array([[float(spec.exact(mpmath.mpf(a), mpmath.mpf(b))) for a, b in zip(row[:h], row[h:])] for row in x])
    np.testing.assert_allclose(got, want, rtol=2e-14, atol=1e-300)


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_reference_limits_at_infinity(name, params):
    """At +-inf the reference gives the mathematical limit (approached at +-1e300), never NaN."""
    spec = actlab.spec(name)
    at_inf = spec.reference(np.array([-np.inf, np.inf]), **params)
    no_limit = np.zeros(2, dtype=bool)
    if spec.parsed_expression is not None:  # an oscillation (sin, x cos x) has no limit: NaN, as its expression says
        no_limit = np.isnan(spec.parsed_expression.limits(**spec.resolve_params(params)))
        assert (np.isnan(at_inf) == no_limit).all()
    assert not np.isnan(at_inf[~no_limit]).any()
    with np.errstate(all="ignore"):
        far = spec.reference(np.array([-1e300, 1e300]), **params)
    for lim, approach, skip in zip(at_inf, far, no_limit):
        if skip:
            continue
        if abs(approach) > 1e200 or (math.isinf(lim) and abs(approach) > 100):  # log grows to inf slowly
            assert lim == math.copysign(math.inf, approach)
        else:
            assert lim == pytest.approx(approach, abs=1e-12)


def test_nan_in_nan_out_reference():
    for name in ELEMENTWISE:
        assert np.isnan(actlab.spec(name).reference(np.array([np.nan])))[0], name


def test_selu_constants_full_double_precision():
    """alpha_01 and lambda_01 from the closed forms of Klambauer et al. (2017), eq. 14."""
    mpmath.mp.dps = 50
    e = mpmath.e
    erfc = mpmath.erfc
    s2 = mpmath.sqrt(2)
    alpha = -mpmath.sqrt(2 / mpmath.pi) / (erfc(1 / s2) * mpmath.exp(mpmath.mpf(1) / 2) - 1)
    lam = (
        (1 - erfc(1 / s2) * mpmath.sqrt(e)) * mpmath.sqrt(2 * mpmath.pi)
        / mpmath.sqrt(2 * erfc(s2) * e**2 + mpmath.pi * erfc(1 / s2) ** 2 * e
                      - 2 * (2 + mpmath.pi) * erfc(1 / s2) * mpmath.sqrt(e) + mpmath.pi + 2)
    )
    assert SELU_ALPHA == float(alpha)
    assert SELU_SCALE == float(lam)
