"""Autograd Functions built from a spec's PyTorch forward and closed-form derivative.

Backward keeps only the input (and parameter tensors) and recomputes what it needs, so an activation costs one
saved tensor of the input's size. The backward is written with differentiable torch ops on the saved input,
so double backward (gradgradcheck, Hessian-vector products) works too.
"""

from __future__ import annotations

from typing import Any

import torch

from actlab.catalog.spec import ActivationSpec
from actlab.kernels.cpu import cpu_backward, cpu_forward

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


def forward_math(spec: ActivationSpec, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """The spec's PyTorch forward in the compute type, rounded once to the input's type. On CPU, the fused fast
    path of :mod:`actlab.kernels.cpu` where one covers the call."""
    fast = cpu_forward(spec, x, params)
    if fast is not None:
        return fast
    cdt = compute_dtype(x.dtype)
    return spec.torch_forward(x.to(cdt), **_cast_params(params, cdt)).to(x.dtype)


def backward_math(spec: ActivationSpec, x: torch.Tensor, grad_out: torch.Tensor, params: dict[str, Any],
                  needs_x: bool, needs_params: dict[str, bool]) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Gradients from the saved input alone: ``(grad_x, {tensor parameter: grad})``. Written with differentiable
    torch ops, so double backward works through the autograd Functions."""
    fast = cpu_backward(spec, x, grad_out, params, needs_x, needs_params)
    if fast is not None:
        return fast
    cdt = compute_dtype(x.dtype)
    cparams = _cast_params(params, cdt)
    xc, g = x.to(cdt), grad_out.to(cdt)
    if spec.kind == "gated":
        h = xc.shape[-1] // 2
        a, b = xc[..., :h], xc[..., h:]
        grad_a = g * spec.gate.torch_forward(b, **params)
        grad_b = g * a * spec.gate.torch_derivative(b, **params)
        return (torch.cat([grad_a, grad_b], dim=-1).to(x.dtype) if needs_x else None), {}
    grad_x = (g * spec.torch_derivative(xc, **cparams)).to(x.dtype) if needs_x else None
    grads = {name: _reduce_like(g * spec.torch_param_derivatives[name](xc, **cparams), params[name])
             for name, needed in needs_params.items() if needed}
    return grad_x, grads


# Built once per spec. A dict rather than functools.lru_cache: torch.compile reads a dict as a constant but traces
# through an lru_cache wrapper.
_FUNCTIONS: dict[ActivationSpec, type[torch.autograd.Function]] = {}


def activation_function(spec: ActivationSpec) -> type[torch.autograd.Function]:
    """The autograd Function of an elementwise or gated spec, called as ``Fn.apply(x, *param_values)``. Gated
    kinds save their [..., 2H] input only and return both halves' gradients in one tensor."""
    fn = _FUNCTIONS.get(spec)
    if fn is None:
        fn = _FUNCTIONS[spec] = _build(spec)
    return fn


def _build(spec: ActivationSpec) -> type[torch.autograd.Function]:
    names = tuple(spec.params)

    class ActivationFunction(torch.autograd.Function):
        generate_vmap_rule = True  # torch.func.vmap/grad work through it (seed-vectorized training)

        @staticmethod
        def forward(x, *values):
            return forward_math(spec, x, dict(zip(names, values)))

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
            params = {**ctx.scalars, **dict(zip(ctx.tensor_names, tensors))}
            needs = {name: ctx.needs_input_grad[i] for i, name in enumerate(names, start=1)
                     if name in ctx.tensor_names}
            grad_x, grads = backward_math(spec, x, grad_out, params, ctx.needs_input_grad[0], needs)
            return (grad_x, *(grads.get(name) for name in names))

    ActivationFunction.__name__ = ActivationFunction.__qualname__ = f"{_camel(spec.name)}Function"
    return ActivationFunction


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part.isalnum()) or "Activation"
