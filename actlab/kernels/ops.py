"""actlab's activations as torch.library custom ops, so torch.compile(fullgraph=True) sees one opaque, known-good
call per activation, with a fake (meta) implementation for shapes and a registered autograd formula.

``actlab::activation(x, name, params, weight)`` applies the registered activation ``name``; ``params`` holds its
scalar parameters as text (:func:`encode`), and ``weight`` at most one tensor parameter (named in the text). On
CUDA the Triton kernels run where they cover the call (contiguous float32/bfloat16/float16 input, see
:mod:`actlab.kernels.triton_kernels`); everywhere else, the spec's PyTorch formulation (with the CPU fast paths).
``actlab::activation_backward`` returns the input's gradient and the weight's (an empty tensor when not asked for).
Backward saves only the input and the weight. Double backward through the custom op is not supported: on CUDA
and under torch.compile, Hessian-vector products through an activation fail with "derivative ... not implemented"
(on CPU in eager mode the autograd Functions support them).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from typing import Any, Mapping

import torch

from actlab.catalog import registry
from actlab.kernels.autograd import backward_math, forward_math
from actlab.kernels.calls import kernel_call

_WEIGHT = "__weight__"


def encode(params: Mapping[str, Any]) -> tuple[str, torch.Tensor | None]:
    """``(text, weight)`` for a call's validated parameters: ``"beta=1.5;approximate='tanh'"``, the tensor
    parameter's name under ``__weight__``. Plain string formatting, which torch.compile traces (json it does not)."""
    parts, weight = [], None
    for k, v in params.items():
        if isinstance(v, torch.Tensor):
            if weight is not None:
                raise ValueError("at most one tensor parameter per activation call")
            weight = v
            parts.append(f"{_WEIGHT}={k!r}")
        else:
            parts.append(f"{k}={v!r}")
    return ";".join(parts), weight


def _decode(name: str, params: str, weight: torch.Tensor | None):
    """``(spec, parameters in the spec's order, the weight's parameter name or None)``."""
    spec = registry.spec(name)
    values = {}
    for part in filter(None, params.split(";")):
        key, _, text = part.partition("=")
        values[key] = ast.literal_eval(text)
    weight_name = values.pop(_WEIGHT, None)
    if weight_name is not None:
        values[weight_name] = weight
    return spec, {k: values[k] for k in spec.params}, weight_name


@functools.cache
def _triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


# Devices whose tensors go to the Triton kernels (the tests add "cpu" to run them in Triton's interpreter).
TRITON_DEVICES = {"cuda"}


def _triton_call(spec, params, x: torch.Tensor):
    if not (x.device.type in TRITON_DEVICES and _triton_available()):
        return None, None
    from actlab.kernels import triton_kernels

    call = kernel_call(spec, params)
    if call is None or not triton_kernels.supports(x):
        return None, None
    return triton_kernels, call


@torch.library.custom_op("actlab::activation", mutates_args=())
def activation(x: torch.Tensor, name: str, params: str, weight: torch.Tensor | None = None) -> torch.Tensor:
    spec, p, _ = _decode(name, params, weight)
    tk, call = _triton_call(spec, p, x)
    if tk is not None:
        if spec.kind == "gated":
            return tk.gated_forward(x, call.key, call.scalars)
        return tk.elementwise_forward(x, call.key, call.scalars, call.weight)
    with torch.no_grad():
        return forward_math(spec, x, p)


@activation.register_fake
def _(x, name, params, weight=None):
    if registry.spec(name).kind == "gated":
        return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))
    return torch.empty_like(x)


@torch.library.custom_op("actlab::activation_backward", mutates_args=())
def activation_backward(grad: torch.Tensor, x: torch.Tensor, name: str, params: str, weight: torch.Tensor | None,
                        need_weight_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    spec, p, weight_name = _decode(name, params, weight)
    need_w = need_weight_grad and weight is not None
    tk, call = _triton_call(spec, p, x)
    if tk is not None:
        if spec.kind == "gated":
            return tk.gated_backward(grad, x, call.key, call.scalars), x.new_empty(0)
        dx, dw = tk.elementwise_backward(grad, x, call.key, call.scalars, call.weight, need_w)
        return dx, (dw.reshape(weight.shape).to(weight.dtype) if need_w else x.new_empty(0))
    with torch.no_grad():
        dx, grads = backward_math(spec, x, grad, p, True, {weight_name: need_w} if weight_name else {})
    return dx, (grads[weight_name] if need_w else x.new_empty(0))


@activation_backward.register_fake
def _(grad, x, name, params, weight, need_weight_grad):
    dw = weight.new_empty(weight.shape) if (need_weight_grad and weight is not None) else x.new_empty(0)
    return torch.empty_like(x), dw


def _setup_context(ctx, inputs, output):
    x, name, params, weight = inputs
    ctx.name, ctx.params = name, params
    ctx.has_weight = weight is not None
    ctx.save_for_backward(x, *([weight] if weight is not None else []))


def _backward(ctx, grad):
    x, *rest = ctx.saved_tensors
    weight = rest[0] if rest else None
    need_w = ctx.has_weight and ctx.needs_input_grad[3]
    dx, dw = activation_backward(grad, x, ctx.name, ctx.params, weight, need_w)
    return (dx if ctx.needs_input_grad[0] else None), None, None, (dw if need_w else None)


activation.register_autograd(_backward, setup_context=_setup_context)


def apply(spec, x: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
    """Run ``spec`` through the custom op (the spec must be registered under its name)."""
    encoded, weight = encode(params)
    return activation(x, spec.name, encoded, weight)
