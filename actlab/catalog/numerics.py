"""Stable building blocks shared by the definitions: NumPy (float64 reference), PyTorch and mpmath.

The rule everywhere: never form ``inf * 0``. Products of a value and a gate that underflowed to zero are
zero, so ``swish(-inf) = 0`` rather than NaN, and a finite input with a finite answer never gives NaN.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
import torch


class _LazyModule:
    """A module imported on first use. mpmath is the tests' high-precision truth (the specs' ``exact``), not
    something the library needs to run, so a core install goes without it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


mpmath: Any = _LazyModule("mpmath")

SQRT_2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# ----- NumPy, float64 --------------------------------------------------------------------------------


def np_sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def np_softplus(x):
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def np_gate_mul(x, g):
    """``x * g`` with ``x * 0 = 0`` even for infinite ``x`` (sign of the product kept)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(g == 0, np.sign(x) * g, x * g)


_erfc = np.frompyfunc(math.erfc, 1, 1)


def np_erfc(x):
    return _erfc(np.asarray(x, dtype=np.float64)).astype(np.float64)


def np_normal_cdf(x):
    return 0.5 * np_erfc(-np.asarray(x, dtype=np.float64) / SQRT_2)


def np_normal_pdf(x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return INV_SQRT_2PI * np.exp(-0.5 * x * x)


def np_sech2(x):
    """1 - tanh(x)^2 without cancellation: 4 e^{-2|x|} / (1 + e^{-2|x|})^2."""
    e = np.exp(-2.0 * np.abs(np.asarray(x, dtype=np.float64)))
    return 4.0 * e / (1.0 + e) ** 2


# ----- PyTorch -----------------------------------------------------------------------------------------


def gate_mul(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x * g`` with ``x * 0 = 0`` for infinite ``x``; NaN still propagates from either side."""
    return torch.where(g == 0, g * torch.sign(x), x * g)


def sech2(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(-2.0 * x.abs())
    return 4.0 * e / (1.0 + e) ** 2


def erfc(z: torch.Tensor) -> torch.Tensor:
    """erfc(z); under torch.jit tracing (the legacy ONNX exporter, which has no erfc) as 1 - erf(z), which loses the
    far tail's relative precision in that graph only."""
    return 1 - torch.erf(z) if torch.jit.is_tracing() else torch.special.erfc(z)


def normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.special.erfc(-x / SQRT_2)


def normal_pdf(x: torch.Tensor) -> torch.Tensor:
    return INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def is_tensor(v) -> bool:
    return isinstance(v, torch.Tensor)


# ----- mpmath (tests' high-precision truth) -----------------------------------------------------------


def mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def mp_softplus(x):
    return mpmath.log1p(mpmath.exp(x)) if x < 0 else x + mpmath.log1p(mpmath.exp(-x))


def mp_normal_cdf(x):
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2
