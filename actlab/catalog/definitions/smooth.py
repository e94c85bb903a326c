"""Smooth self-gated units: GELU (exact and tanh), Swish/SiLU and Mish.

Each is x times a gate that tends to 0 for x -> -inf. The product is formed with ``gate_mul`` so that an
underflowed gate gives 0 (swish(-1e4) = -0.0, swish(-inf) = 0) instead of inf * 0 = NaN, and GELU's negative
tail is computed through erfc, which does not cancel the way 1 + erf(x / sqrt 2) does.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from actlab.catalog.definitions import papers
from actlab.catalog.numerics import (
    SQRT_2_OVER_PI,
    gate_mul,
    is_tensor,
    mp_normal_cdf,
    mp_sigmoid,
    mp_softplus,
    mpmath,
    normal_cdf,
    normal_pdf,
    np_gate_mul,
    np_normal_cdf,
    np_normal_pdf,
    np_sigmoid,
    np_softplus,
)
from actlab.catalog.spec import ActivationSpec, Param

GELU_TANH_COEFF = 0.044715


def _f64(x):
    return np.asarray(x, dtype=np.float64)


# ----- GELU ------------------------------------------------------------------------------------------
# tanh form: 0.5 x (1 + tanh(u)) = x * sigmoid(2u) with u = sqrt(2/pi) (x + 0.044715 x^3); the sigmoid form
# has no 1 + tanh(u) cancellation in the negative tail.


def _np_gelu(x, approximate):
    x = _f64(x)
    if approximate == "tanh":
        with np.errstate(over="ignore", invalid="ignore"):
            u = SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x**3)
            u = np.where(np.isnan(u) & ~np.isnan(x), np.sign(x) * np.inf, u)
        return np_gate_mul(x, np_sigmoid(2.0 * u))
    return np_gate_mul(x, np_normal_cdf(x))


def _np_gelu_derivative(x, approximate):
    x = _f64(x)
    if approximate == "tanh":
        with np.errstate(over="ignore", invalid="ignore"):
            u = SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x**3)
            du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEFF * x**2)
            s = np_sigmoid(2.0 * u)
            return s + np_gate_mul(x * du, 2.0 * s * np_sigmoid(-2.0 * u))
    return np_normal_cdf(x) + np_gate_mul(x, np_normal_pdf(x))


def _gelu(x, approximate):
    if approximate == "tanh":
        u = SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x)
        return gate_mul(x, torch.sigmoid(2.0 * u))
    return gate_mul(x, normal_cdf(x))


def _gelu_derivative(x, approximate):
    if approximate == "tanh":
        u = SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x)
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEFF * x * x)
        s = torch.sigmoid(2.0 * u)
        return s + gate_mul(x * du, 2.0 * s * torch.sigmoid(-2.0 * u))
    return normal_cdf(x) + gate_mul(x, normal_pdf(x))


def _mp_gelu(x, approximate):
    if approximate == "tanh":
        u = mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf(GELU_TANH_COEFF) * x**3)
        return x * mp_sigmoid(2 * u)
    return x * mp_normal_cdf(x)


gelu = ActivationSpec(
    name="gelu",
    summary="x weighted by the standard normal CDF; 'tanh' selects the approximation of the GELU paper.",
    formula=(r"\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\,\mathrm{erfc}\!\left(-\tfrac{x}{\sqrt2}\right);"
             r"\ \text{tanh: } \tfrac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)"),
    references=(papers.HENDRYCKS_2016,),
    aliases=("gaussian_error_linear_unit",),
    alias_presets={"gelu_tanh": {"approximate": "tanh"}, "gelu_new": {"approximate": "tanh"}},
    params={"approximate": Param("none", choices=("none", "tanh"),
                                 doc="'none': exact erf form; 'tanh': approximation")},
    reference=_np_gelu,
    derivative=_np_gelu_derivative,
    exact=_mp_gelu,
    torch_forward=_gelu,
    torch_derivative=_gelu_derivative,
    # F.gelu forms 1 + erf(x / sqrt 2): within a few ulps of |x| in the negative tail, not of |f(x)|.
    native=lambda x, approximate: F.gelu(x, approximate=approximate),
    claims=dict(monotonic=False, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=0.5),
)

# ----- Swish / SiLU ----------------------------------------------------------------------------------
# beta * x is formed as 0 when beta = 0 (not 0 * inf = NaN), so swish(+-inf, beta=0) = +-inf = the limit of x / 2.


def _np_scaled(beta, x):
    x = _f64(x)
    return np.zeros_like(x) if beta == 0 else beta * x


def _scaled(beta, x):
    if isinstance(beta, numbers.Real):
        return torch.zeros_like(x) if beta == 0 else beta * x
    # a tensor (trainable beta; a traced value): beta * x stays differentiable in both, and 0 * inf is kept out
    return beta * torch.where((beta == 0) & torch.isinf(x), torch.zeros_like(x), x)


def _np_swish(x, beta):
    return np_gate_mul(_f64(x), np_sigmoid(_np_scaled(beta, x)))


def _np_swish_derivative(x, beta):
    t = _np_scaled(beta, x)
    return np_sigmoid(t) + np_gate_mul(t, np_sigmoid(t) * np_sigmoid(-t))


def _swish(x, beta):
    return gate_mul(x, torch.sigmoid(_scaled(beta, x)))


def _swish_derivative(x, beta):
    t = _scaled(beta, x)
    s = torch.sigmoid(t)
    return s + gate_mul(t, s * torch.sigmoid(-t))


def _swish_param_derivative(x, beta):
    # d/dbeta x sigmoid(beta x) = x^2 sigmoid(beta x) sigmoid(-beta x); x * (x * g) keeps x^2 from overflowing.
    t = _scaled(beta, x)
    return gate_mul(x, gate_mul(x, torch.sigmoid(t) * torch.sigmoid(-t)))


swish = ActivationSpec(
    name="swish",
    aliases=("silu", "swish1", "sigmoid_linear_unit"),
    alias_presets={"silu": {"beta": 1.0}},
    summary="x * sigmoid(beta x): x/2 at beta = 0, ReLU as beta -> inf; SiLU is beta = 1. Beta may be trained.",
    formula=r"\mathrm{swish}_\beta(x) = x\,\sigma(\beta x) = \frac{x}{1 + e^{-\beta x}}",
    references=(papers.RAMACHANDRAN_2017, papers.ELFWING_2017, papers.HENDRYCKS_2016),
    params={"beta": Param(1.0, low=0.0, trainable_allowed=True, doc="gate sharpness; trainable")},
    reference=_np_swish,
    derivative=_np_swish_derivative,
    exact=lambda x, beta: x * mp_sigmoid(beta * x),
    torch_forward=_swish,
    torch_derivative=_swish_derivative,
    torch_param_derivatives={"beta": _swish_param_derivative},
    native=lambda x, beta: F.silu(x),
    native_inplace=lambda x, beta: F.silu(x, inplace=True),
    native_covers=lambda beta: not is_tensor(beta) and beta == 1.0,
    claims=dict(monotonic=False, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=0.5),
)

# ----- Mish ------------------------------------------------------------------------------------------


def _np_mish_parts(x):
    x = _f64(x)
    t = np.tanh(np_softplus(x))
    return x, t


def _np_mish_derivative(x):
    x, t = _np_mish_parts(x)
    return t + np_gate_mul(x, (1.0 - t * t) * np_sigmoid(x))


def _mish(x):
    return gate_mul(x, torch.tanh(F.softplus(x)))


def _mish_derivative(x):
    t = torch.tanh(F.softplus(x))
    return t + gate_mul(x, (1.0 - t * t) * torch.sigmoid(x))


mish = ActivationSpec(
    name="mish",
    summary="x * tanh(softplus(x)); smooth, non-monotonic, slightly stronger negative dip than swish.",
    formula=r"\mathrm{Mish}(x) = x\,\tanh\!\left(\log\!\left(1 + e^{x}\right)\right)",
    references=(papers.MISRA_2019,),
    reference=lambda x: np_gate_mul(*_np_mish_parts(x)),
    derivative=_np_mish_derivative,
    exact=lambda x: x * mpmath.tanh(mp_softplus(x)),
    torch_forward=_mish,
    torch_derivative=_mish_derivative,
    native=F.mish,
    native_inplace=lambda x: F.mish(x, inplace=True),
    claims=dict(monotonic=False, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=0.6),
)

SPECS = (gelu, swish, mish)
