"""Sigmoid-era activations and the pass-throughs: sigmoid, tanh, softsign, log-sigmoid, identity, softmax."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from actlab.catalog.definitions import papers
from actlab.catalog.numerics import mp_sigmoid, mp_softplus, mpmath, np_sech2, np_sigmoid, np_softplus, sech2
from actlab.catalog.spec import ActivationSpec, Param

sigmoid = ActivationSpec(
    name="sigmoid",
    aliases=("logistic",),
    summary="The logistic function; saturates on both sides, output in (0, 1).",
    formula=r"\sigma(x) = \frac{1}{1 + e^{-x}}",
    references=(papers.RUMELHART_1986,),
    init="xavier",
    reference=np_sigmoid,
    derivative=lambda x: np_sigmoid(x) * np_sigmoid(-np.asarray(x, dtype=np.float64)),
    exact=mp_sigmoid,
    torch_forward=torch.sigmoid,
    torch_derivative=lambda x: torch.sigmoid(x) * torch.sigmoid(-x),
    native=torch.sigmoid,
    native_inplace=torch.sigmoid_,
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=True, value_at_0=0.5,
                slope_at_0=0.25),
)

tanh = ActivationSpec(
    name="tanh",
    aliases=("hyperbolic_tangent",),
    summary="Zero-centred sigmoid, output in (-1, 1).",
    formula=r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
    references=(papers.LECUN_1998,),
    init="xavier",
    reference=lambda x: np.tanh(np.asarray(x, dtype=np.float64)),
    derivative=np_sech2,
    exact=lambda x: mpmath.tanh(x),
    torch_forward=torch.tanh,
    torch_derivative=sech2,
    native=torch.tanh,
    native_inplace=torch.tanh_,
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=True, value_at_0=0.0,
                slope_at_0=1.0),
)


def _softsign(x: torch.Tensor) -> torch.Tensor:
    # x / (1 + |x|) is inf / inf at +-inf; the limit there is sign(x).
    return torch.where(torch.isinf(x), torch.sign(x), x / (1.0 + x.abs()))


def _np_softsign(x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(x), np.sign(x), x / (1.0 + np.abs(x)))


softsign = ActivationSpec(
    name="softsign",
    summary="A rational sigmoid with polynomial (not exponential) tails.",
    formula=r"\mathrm{softsign}(x) = \frac{x}{1 + |x|}",
    references=(papers.TURIAN_2009,),
    reference=_np_softsign,
    derivative=lambda x: 1.0 / (1.0 + np.abs(np.asarray(x, dtype=np.float64))) ** 2,
    exact=lambda x: x / (1 + abs(x)),
    torch_forward=_softsign,
    torch_derivative=lambda x: 1.0 / (1.0 + x.abs()) ** 2,
    breakpoints=lambda: (0.0,),
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=True, value_at_0=0.0,
                slope_at_0=1.0),
)

log_sigmoid = ActivationSpec(
    name="log_sigmoid",
    aliases=("logsigmoid",),
    summary="log(sigmoid(x)) = -softplus(-x); computed without forming sigmoid, so no log(0).",
    formula=r"\log\sigma(x) = -\log\left(1 + e^{-x}\right)",
    references=(papers.RUMELHART_1986,),
    reference=lambda x: -np_softplus(-np.asarray(x, dtype=np.float64)),
    derivative=lambda x: np_sigmoid(-np.asarray(x, dtype=np.float64)),
    exact=lambda x: -mp_softplus(-x),
    torch_forward=F.logsigmoid,
    torch_derivative=lambda x: torch.sigmoid(-x),
    native=F.logsigmoid,
    claims=dict(monotonic=True, smooth=True, bounded_below=False, bounded_above=True),
)

identity = ActivationSpec(
    name="identity",
    aliases=("linear", "none"),
    summary="No activation: a linear network, the baseline every nonlinearity should beat.",
    formula=r"f(x) = x",
    references=(papers.LECUN_1998,),
    reference=lambda x: np.asarray(x, dtype=np.float64).copy(),
    derivative=lambda x: np.ones_like(np.asarray(x, dtype=np.float64)),
    exact=lambda x: x,
    torch_forward=lambda x: x.clone(),
    torch_derivative=torch.ones_like,
    native=lambda x: x.clone(),
    claims=dict(monotonic=True, smooth=True, bounded_below=False, bounded_above=False, value_at_0=0.0,
                slope_at_0=1.0, gain=1.0),
)


def _np_softmax(x, dim=-1):
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=dim, keepdims=True)


softmax = ActivationSpec(
    name="softmax",
    kind="normalizing",
    summary="Normalises a vector into a probability distribution along one dimension.",
    formula=r"\mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}",
    references=(papers.BRIDLE_1990,),
    params={"dim": Param(-1, doc="the dimension that sums to one")},
    reference=_np_softmax,
    torch_forward=lambda x, dim: F.softmax(x, dim=dim),
    native=lambda x, dim: F.softmax(x, dim=dim),
    claims=dict(bounded_below=True, bounded_above=True, output_range=(0.0, 1.0)),
)

SPECS = (sigmoid, tanh, softsign, log_sigmoid, identity, softmax)
