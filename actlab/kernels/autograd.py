"""Autograd Functions built from a spec's PyTorch forward and closed-form derivative.

Backward keeps only the input (and parameter tensors) and recomputes what it needs, so an activation costs one
saved tensor of the input's size. The backward is written with differentiable torch ops on the saved input,
so double backward (gradgradcheck, Hessian-vector products) works too.
"""

from __future__ import annotations

from typing import Any

import torch

from actlab.catalog.spec import ActivationSpec

HALF_TYPES = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types (computed in float32, rounded once at the end); the input's type otherwise."""
    return torch.float32 if dtype in HALF_TYPES else dtype


def _cast_params(values: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    return {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in values.items()}


def _reduce_like(grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """Sum the per-element gradient over the dimensions the parameter was broadcast along (a scalar beta: all of
    them; a [S, 1, 1] stack of per-seed betas: all but the first)."""
    if param.dim() == 0 or param.numel() == 1:
        return grad.sum().reshape(param.shape).to(param.dtype)
    return grad.sum_to_size(param.shape).to(param.dtype)


# Built once per spec. A dict rather than functools.lru_cache: torch.compile reads a dict as a constant but traces
# through an lru_cache wrapper.
_FUNCTIONS: dict[ActivationSpec, type[torch.autograd.Function]] = {}


def elementwise_function(spec: ActivationSpec) -> type[torch.autograd.Function]:
    """The autograd Function of an elementwise spec; called as ``Fn.apply(x, *param_values)``."""
    fn = _FUNCTIONS.get(spec)
    if fn is None:
        fn = _FUNCTIONS[spec] = _build_elementwise(spec)
    return fn


def gated_function(spec: ActivationSpec) -> type[torch.autograd.Function]:
    """The autograd Function of a gated spec: saves the [..., 2H] input only; grads of both halves in one tensor."""
    fn = _FUNCTIONS.get(spec)
    if fn is None:
        fn = _FUNCTIONS[spec] = _build_gated(spec)
    return fn


def _build_elementwise(spec: ActivationSpec) -> type[torch.autograd.Function]:
    names = tuple(spec.params)

    class ElementwiseFunction(torch.autograd.Function):
        generate_vmap_rule = True  # torch.func.vmap/grad work through it (seed-vectorized training)

        @staticmethod
        def forward(x, *values):
            params = dict(zip(names, values))
            cdt = compute_dtype(x.dtype)
            return spec.torch_forward(x.to(cdt), **_cast_params(params, cdt)).to(x.dtype)

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, *values = inputs
            params = dict(zip(names, values))
            tensor_names = tuple(k for k, v in params.items() if isinstance(v, torch.Tensor))
            ctx.scalars = {k: v for k, v in params.items() if k not in tensor_names}
            ctx.tensor_names = tensor_names
            ctx.save_for_backward(x, *(params[k] for k in tensor_names))

        @staticmethod
        def backward(ctx, grad_out):
            x, *tensors = ctx.saved_tensors
            cdt = compute_dtype(x.dtype)
            params = {**ctx.scalars, **dict(zip(ctx.tensor_names, tensors))}
            cparams = _cast_params(params, cdt)
            xc, g = x.to(cdt), grad_out.to(cdt)
            grad_x = None
            if ctx.needs_input_grad[0]:
                grad_x = (g * spec.torch_derivative(xc, **cparams)).to(x.dtype)
            grads = []
            for i, name in enumerate(names, start=1):
                value = params[name]
                if isinstance(value, torch.Tensor) and ctx.needs_input_grad[i]:
                    d = spec.torch_param_derivatives[name](xc, **cparams)
                    grads.append(_reduce_like(g * d, value))
                else:
                    grads.append(None)
            return (grad_x, *grads)

    ElementwiseFunction.__name__ = ElementwiseFunction.__qualname__ = f"{_camel(spec.name)}Function"
    return ElementwiseFunction


def _build_gated(spec: ActivationSpec) -> type[torch.autograd.Function]:
    gate = spec.gate
    names = tuple(spec.params)

    class GatedFunction(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x, *values):
            params = dict(zip(names, values))
            cdt = compute_dtype(x.dtype)
            return spec.torch_forward(x.to(cdt), **params).to(x.dtype)

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, *values = inputs
            ctx.params = dict(zip(names, values))
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            cdt = compute_dtype(x.dtype)
            xc, g = x.to(cdt), grad_out.to(cdt)
            h = xc.shape[-1] // 2
            a, b = xc[..., :h], xc[..., h:]
            grad_a = g * gate.torch_forward(b, **ctx.params)
            grad_b = g * a * gate.torch_derivative(b, **ctx.params)
            return (torch.cat([grad_a, grad_b], dim=-1).to(x.dtype), *([None] * len(names)))

    GatedFunction.__name__ = GatedFunction.__qualname__ = f"{_camel(spec.name)}Function"
    return GatedFunction


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part.isalnum()) or "Activation"
