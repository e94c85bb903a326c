"""How a catalogue activation call maps onto actlab's compiled kernels.

A :class:`KernelCall` names the device functions to run (a key of :mod:`actlab.kernels.triton_math` and of
:mod:`actlab.kernels.cpu`), the scalar parameters in the order those functions take them, and at most one
trainable parameter tensor with a single element (swish's beta, a one-slope PReLU), which replaces the first
scalar. Calls that have no kernel (a third-party spec, per-channel PReLU slopes, per-seed stacked betas) map to
``None`` and run the spec's autograd Function or PyTorch's native op instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from actlab.catalog.definitions import classic, exponential, gated, rectifiers, smooth
from actlab.catalog.spec import ActivationSpec


@dataclass(frozen=True)
class KernelCall:
    key: str
    scalars: tuple[float, float] = (0.0, 0.0)
    weight: torch.Tensor | None = None


def _scalars(*values: float) -> tuple[float, float]:
    padded = [float(v) for v in values] + [0.0, 0.0]
    return padded[0], padded[1]


def _slot(key: str, value: Any, *rest: float) -> KernelCall | None:
    """A parameter that may be a trainable tensor: one element rides in the weight slot; more have no kernel."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        return KernelCall(key, _scalars(0.0, *rest), value)
    return KernelCall(key, _scalars(value, *rest))


def _gelu_key(approximate: str) -> str:
    return "gelu_tanh" if approximate == "tanh" else "gelu"


_NO_PARAMS = (classic.sigmoid, classic.tanh, classic.softsign, classic.log_sigmoid, classic.identity, rectifiers.relu,
              rectifiers.relu6, rectifiers.hardsigmoid, rectifiers.hardswish, rectifiers.squared_relu,
              exponential.selu, smooth.mish)

_ELEMENTWISE: dict[ActivationSpec, Callable[..., KernelCall | None]] = {
    **{spec: (lambda name: lambda: KernelCall(name))(spec.name) for spec in _NO_PARAMS},
    rectifiers.leaky_relu: lambda negative_slope: KernelCall("leaky_relu", _scalars(negative_slope)),
    rectifiers.rrelu: lambda lower, upper: KernelCall("leaky_relu", _scalars((lower + upper) / 2)),
    rectifiers.prelu: lambda num_parameters, init: _slot("leaky_relu", init),
    rectifiers.threshold_relu: lambda threshold: KernelCall("threshold_relu", _scalars(threshold)),
    exponential.elu: lambda alpha: KernelCall("elu", _scalars(alpha)),
    exponential.celu: lambda alpha: KernelCall("celu", _scalars(alpha)),
    exponential.softplus: lambda beta, threshold: KernelCall("softplus", _scalars(beta, threshold)),
    smooth.swish: lambda beta: _slot("swish", beta),
    smooth.gelu: lambda approximate: KernelCall(_gelu_key(approximate)),
}

# Gated kinds: the call describes the gate applied to the second half.
_GATED: dict[ActivationSpec, Callable[..., KernelCall]] = {
    gated.glu: lambda: KernelCall("sigmoid"),
    gated.reglu: lambda: KernelCall("relu"),
    gated.geglu: lambda approximate: KernelCall(_gelu_key(approximate)),
    gated.swiglu: lambda beta: KernelCall("swish", _scalars(beta)),
}


def kernel_call(spec: ActivationSpec, params: Mapping[str, Any]) -> KernelCall | None:
    """The kernel call for ``spec`` with validated ``params``, or ``None`` where no kernel covers it."""
    table = _GATED if spec.kind == "gated" else _ELEMENTWISE
    make = table.get(spec)
    return None if make is None else make(**params)


def covered() -> tuple[ActivationSpec, ...]:
    """Every spec that has kernels (for the tests and the benchmark)."""
    return (*_ELEMENTWISE, *_GATED)
