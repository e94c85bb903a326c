"""Route an activation call to its implementation: PyTorch's native op where the spec names one with the same
semantics; the ``actlab::activation`` custom op under torch.compile and on CUDA (Triton kernels there); actlab's
autograd Function (CPU fast paths inside) otherwise."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from actlab.catalog.definitions.gated import split_halves
from actlab.catalog.spec import ActivationSpec
from actlab.catalog import registry
from actlab.kernels import ops
from actlab.kernels.autograd import activation_function, compute_dtype

__all__ = ["compute_dtype", "run"]

# Natives that handle tensor parameters (and their gradients) themselves.
_NATIVE_TAKES_TENSORS = {"prelu"}


def _through_custom_op(x: torch.Tensor) -> bool:
    """Under torch.compile (one opaque op in the graph) and on CUDA (the Triton kernels). Inside torch.func
    transforms (the vmap trainer) the autograd Function runs: it has a generated vmap rule."""
    if torch.compiler.is_compiling():
        return True
    return x.is_cuda and not torch._C._functorch.is_functorch_wrapped_tensor(x)


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
    tensors = sum(isinstance(v, torch.Tensor) for v in params.values())
    if spec.kind == "gated":
        split_halves(x, spec.name)  # the same error on every path for an odd last dimension
    if spec.native is not None and (not tensors or spec.name in _NATIVE_TAKES_TENSORS):
        return spec.native(x, **params)
    if spec.kind in ("elementwise", "gated"):
        if tensors <= 1 and _through_custom_op(x) and registry.registered(spec):
            return ops.apply(spec, x, params)
        return activation_function(spec).apply(x, *params.values())
    cdt = compute_dtype(x.dtype)
    return spec.torch_forward(x.to(cdt), **params).to(x.dtype)
