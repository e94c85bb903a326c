"""Exponential-family units with a saturating negative side (ELU, CELU, SELU) and softplus.

The negative side uses expm1, accurate near 0 and exactly -alpha in the limit, never exp(x) - 1.
At x = 0 the derivative takes the negative branch, as PyTorch's autograd does (selu'(0) = scale * alpha).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from actlab.catalog.definitions import papers
from actlab.catalog.numerics import mp_softplus, mpmath, np_sigmoid, np_softplus
from actlab.catalog.spec import ActivationSpec, Param

# Klambauer et al. (2017), eq. 14, to full double precision (checked against the closed form in the tests).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _np_elu(x, alpha):
    x = _f64(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _np_elu_derivative(x, alpha):
    x = _f64(x)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def _elu_derivative(x, alpha):
    return torch.where(x > 0, torch.ones_like(x), alpha * torch.exp(torch.clamp(x, max=0.0)))


elu = ActivationSpec(
    name="elu",
    summary="Identity for x > 0, alpha * (e^x - 1) below: negative outputs push mean activations toward 0.",
    formula=r"\mathrm{ELU}(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & x \le 0 \end{cases}",
    references=(papers.CLEVERT_2015,),
    params={"alpha": Param(1.0, low=0.0, doc="saturation value -alpha for x -> -inf")},
    reference=_np_elu,
    derivative=_np_elu_derivative,
    exact=lambda x, alpha: x if x > 0 else alpha * mpmath.expm1(x),
    torch_forward=lambda x, alpha: F.elu(x, alpha),
    torch_derivative=_elu_derivative,
    native=lambda x, alpha: F.elu(x, alpha),
    native_inplace=lambda x, alpha: F.elu(x, alpha, inplace=True),
    breakpoints=lambda alpha: (0.0,),
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=1.0),
)

celu = ActivationSpec(
    name="celu",
    summary="ELU reparametrised so that it is continuously differentiable for every alpha.",
    formula=r"\mathrm{CELU}(x) = \max(0, x) + \min\!\left(0, \alpha\,(e^{x/\alpha} - 1)\right)",
    references=(papers.BARRON_2017,),
    params={"alpha": Param(1.0, low=0.0, low_open=True, doc="saturation value -alpha; alpha > 0")},
    reference=lambda x, alpha: np.where(_f64(x) > 0, _f64(x), alpha * np.expm1(np.minimum(_f64(x), 0.0) / alpha)),
    derivative=lambda x, alpha: np.where(_f64(x) > 0, 1.0, np.exp(np.minimum(_f64(x), 0.0) / alpha)),
    exact=lambda x, alpha: x if x > 0 else alpha * mpmath.expm1(x / alpha),
    torch_forward=lambda x, alpha: F.celu(x, alpha),
    torch_derivative=lambda x, alpha: torch.where(x > 0, torch.ones_like(x),
                                                  torch.exp(torch.clamp(x, max=0.0) / alpha)),
    native=lambda x, alpha: F.celu(x, alpha),
    native_inplace=lambda x, alpha: F.celu(x, alpha, inplace=True),
    breakpoints=lambda alpha: (0.0,),
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=1.0),
)

selu = ActivationSpec(
    name="selu",
    summary="Scaled ELU whose constants make (mean 0, variance 1) an attracting fixed point under LeCun-normal init.",
    formula=(r"\mathrm{SELU}(x) = \lambda \begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & x \le 0 \end{cases},"
             r"\ \alpha \approx 1.6732632423543772,\ \lambda \approx 1.0507009873554805"),
    references=(papers.KLAMBAUER_2017,),
    init="lecun",
    reference=lambda x: SELU_SCALE * _np_elu(x, SELU_ALPHA),
    derivative=lambda x: SELU_SCALE * _np_elu_derivative(x, SELU_ALPHA),
    exact=lambda x: mpmath.mpf(SELU_SCALE) * (x if x > 0 else mpmath.mpf(SELU_ALPHA) * mpmath.expm1(x)),
    torch_forward=F.selu,
    torch_derivative=lambda x: SELU_SCALE * _elu_derivative(x, SELU_ALPHA),
    native=F.selu,
    native_inplace=lambda x: F.selu(x, inplace=True),
    breakpoints=lambda: (0.0,),
    claims=dict(monotonic=True, smooth=False, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=None, gain=1.0, mean=0.0),
)


def _np_softplus(x, beta, threshold):
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(beta * x > threshold, x, np_softplus(beta * x) / beta)


def _mp_softplus(x, beta, threshold):
    return x if beta * x > threshold else mp_softplus(beta * x) / beta


softplus = ActivationSpec(
    name="softplus",
    summary="Smooth ReLU, log(1 + e^{beta x}) / beta; reverts to x above the threshold (PyTorch semantics).",
    formula=(r"\mathrm{softplus}(x) = \begin{cases} \tfrac{1}{\beta}\log\!\left(1 + e^{\beta x}\right) & "
             r"\beta x \le t \\ x & \beta x > t \end{cases}"),
    references=(papers.DUGAS_2000,),
    params={
        "beta": Param(1.0, low=0.0, low_open=True, doc="sharpness; beta > 0"),
        "threshold": Param(20.0, low=0.0, doc="t: above beta*x > t the output is x"),
    },
    reference=_np_softplus,
    derivative=lambda x, beta, threshold: np.where(beta * _f64(x) > threshold, 1.0, np_sigmoid(beta * _f64(x))),
    exact=_mp_softplus,
    torch_forward=lambda x, beta, threshold: F.softplus(x, beta, threshold),
    torch_derivative=lambda x, beta, threshold: torch.where(
        beta * x > threshold, torch.ones_like(x), torch.sigmoid(beta * x)
    ),
    native=lambda x, beta, threshold: F.softplus(x, beta, threshold),
    breakpoints=lambda beta, threshold: (threshold / beta,),
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, slope_at_0=0.5),
)

SPECS = (elu, celu, selu, softplus)
