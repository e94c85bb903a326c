"""Route an activation call to its implementation."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from actlab.catalog.definitions.gated import split_halves
from actlab.catalog.spec import ActivationSpec
from actlab.kernels.autograd import compute_dtype, elementwise_function, gated_function

__all__ = ["compute_dtype", "run"]

# Natives that handle tensor parameters (and their gradients) themselves.
_NATIVE_TAKES_TENSORS = {"prelu"}


def run(spec: ActivationSpec, x: torch.Tensor, params: Mapping[str, Any], *, training: bool = False) -> torch.Tensor:
    """Apply ``spec`` with validated ``params`` to ``x``. The output has the input's dtype, device and shape
    (gated kinds: the last dimension halved)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{spec.name}: expected a torch.Tensor input, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{spec.name}: input dtype {x.dtype} is not supported; use a floating type "
            "(float16, bfloat16, float32 or float64)"
        )
    if spec.stochastic and training:
        from actlab.catalog.definitions.rectifiers import rrelu_train

        return rrelu_train(x, **params)
    has_tensor = any(isinstance(v, torch.Tensor) for v in params.values())
    if spec.native is not None and (not has_tensor or spec.name in _NATIVE_TAKES_TENSORS):
        if spec.kind == "gated":
            split_halves(x, spec.name)  # same error as the generic path for an odd last dimension
        return spec.native(x, **params)
    if spec.kind == "elementwise":
        return elementwise_function(spec).apply(x, *params.values())
    if spec.kind == "gated":
        split_halves(x, spec.name)
        return gated_function(spec).apply(x, *params.values())
    cdt = compute_dtype(x.dtype)
    return spec.torch_forward(x.to(cdt), **params).to(x.dtype)
