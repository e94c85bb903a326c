"""The autograd Function of an activation, built from its spec and its implementation entry; names no activation.

Backward keeps only the input (and parameter tensors) and recomputes what it needs, so an activation costs one
saved tensor of the input's size. Which math runs inside:

- under torch.compile, torch.func transforms, or with batched gradients: the spec's torch expressions, which
  dynamo traces (inductor fuses them with their neighbours) and functorch batches;
- on CUDA, actlab's Triton kernels where they cover the call (contiguous float32/bfloat16/float16);
- on CPU, for large tensors, one compiled loop each way from the entry's fused expressions
  (:mod:`actlab.kernels.fused_cpu`); otherwise the entry's aten fast paths where it has them;
- otherwise the expressions. Half types are computed in float32 and rounded once.

Forward-mode AD (``jvp``) uses the closed-form derivative, vmap a generated rule, and a backward run under
``create_graph`` uses the expressions, so double backward works. There is no host synchronisation anywhere.

:func:`eager_paths` builds the lean counterparts that plain eager CPU calls take (the dispatcher checks when): a
Function without the routing above, or the entry's composed ops, and the forward alone for calls without autograd.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.autograd.forward_ad as fwAD

from actlab.catalog.definitions.gated import split_halves
from actlab.catalog.spec import ActivationSpec
from actlab.kernels import compiled, fused_cpu
from actlab.kernels.implementations import HALF_TYPES, Implementation, implementation, kernel_call
from actlab.kernels.transforms import transformed

_FAST_DTYPES = (torch.float32, torch.float64, *HALF_TYPES)

# Devices whose tensors go to the Triton kernels (the tests add "cpu" to run them in Triton's interpreter).
TRITON_DEVICES = {"cuda"}


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types (computed in float32, rounded once at the end); the input's type otherwise."""
    return torch.float32 if dtype in HALF_TYPES else dtype


@functools.cache
def _triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def _cast_params(values: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    return {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in values.items()}


def _reduce_like(grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """Sum the per-element gradient over the dimensions the parameter was broadcast along (a scalar beta: all of
    them; a [S, 1, 1] stack of per-seed betas: all but the first)."""
    if param.dim() == 0 or param.numel() == 1:
        return grad.sum().reshape(param.shape).to(param.dtype)
    return grad.sum_to_size(param.shape).to(param.dtype)


def _expression_only(*tensors: torch.Tensor) -> bool:
    return torch.compiler.is_compiling() or any(transformed(t) for t in tensors)


def _triton(spec: ActivationSpec, x: torch.Tensor, params: dict[str, Any]):
    if x.device.type not in TRITON_DEVICES or not _triton_available():
        return None, None
    from actlab.kernels import triton_kernels

    call = kernel_call(spec, params)
    if call is None or not triton_kernels.supports(x):
        return None, None
    return triton_kernels, call


def expression_forward(spec: ActivationSpec, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """The spec's torch expression in the compute type, rounded once to the input's type."""
    cdt = compute_dtype(x.dtype)
    return spec.torch_forward(x.to(cdt), **_cast_params(params, cdt)).to(x.dtype)


def _cpu_forward(impl: Implementation, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | None:
    """The entry's aten forward on a CPU tensor (half types computed in float32 unless it takes them as they are),
    or None where it has none or does not cover the call."""
    fast = impl.forward
    if fast is None or x.dtype not in _FAST_DTYPES:
        return None
    if x.dtype in HALF_TYPES and not impl.half_as_is:
        y = fast(x.float(), params)
        return None if y is None else y.to(x.dtype)
    return fast(x, params)


def forward_math(spec: ActivationSpec, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    if not _expression_only(x):
        tk, call = _triton(spec, x, params)
        if tk is not None:
            if spec.kind == "gated":
                return tk.gated_forward(x, call.key, call.scalars)
            return tk.elementwise_forward(x, call.key, call.scalars, call.weight)
        y = fused_cpu.forward(spec, x, params)
        if y is not None:
            return y
        if x.is_cpu:
            y = _cpu_forward(implementation(spec), x, params)
            if y is not None:
                return y
    return expression_forward(spec, x, params)


def expression_backward(spec: ActivationSpec, x: torch.Tensor, grad_out: torch.Tensor, params: dict[str, Any],
                        needs_x: bool, needs_params: dict[str, bool]):
    """Gradients from the saved input with differentiable torch ops: ``(grad_x, {tensor parameter: grad})``."""
    cdt = compute_dtype(x.dtype)
    cparams = _cast_params(params, cdt)
    xc, g = x.to(cdt), grad_out.to(cdt)
    if spec.kind == "gated":
        gate = spec.gate
        assert gate is not None  # every gated spec has one
        a, b = split_halves(xc, spec.name)
        grad_a = g * gate.torch_forward(b, **cparams)
        grad_b = g * a * gate.torch_derivative(b, **cparams)
        return (torch.cat([grad_a, grad_b], dim=-1).to(x.dtype) if needs_x else None), {}
    grad_x = (g * spec.torch_derivative(xc, **cparams)).to(x.dtype) if needs_x else None
    grads = {name: _reduce_like(g * spec.torch_param_derivatives[name](xc, **cparams), params[name])
             for name, needed in needs_params.items() if needed}
    return grad_x, grads


def _cpu_backward(impl: Implementation, x: torch.Tensor, grad_out: torch.Tensor, params: dict[str, Any],
                  needs_x: bool, needs_params: dict[str, bool]):
    """The entry's aten backward on CPU tensors, or None where it has none or does not cover the call (a parameter
    gradient it does not form included)."""
    fast = impl.backward
    if fast is None or x.dtype not in _FAST_DTYPES:
        return None
    half = x.dtype in HALF_TYPES and not impl.half_as_is
    out = fast(x.float(), grad_out.float(), params, needs_x, needs_params) if half else fast(
        x, grad_out, params, needs_x, needs_params)
    if out is None or not all(name in out[1] for name, needed in needs_params.items() if needed):
        return None
    grad_x, grads = out
    return (grad_x.to(x.dtype) if half and grad_x is not None else grad_x), grads


def backward_math(spec: ActivationSpec, x: torch.Tensor, grad_out: torch.Tensor, params: dict[str, Any],
                  needs_x: bool, needs_params: dict[str, bool]):
    if not (torch.is_grad_enabled() or _expression_only(x, grad_out) or grad_out.dtype != x.dtype):
        tk, call = _triton(spec, x, params)
        if tk is not None and grad_out.is_contiguous():
            if spec.kind == "gated":
                return tk.gated_backward(grad_out, x, call.key, call.scalars), {}
            need_w = call.weight is not None and any(needs_params.values())
            dx, dw = tk.elementwise_backward(grad_out, x, call.key, call.scalars, call.weight, need_w)
            grads = {name: dw.reshape(params[name].shape).to(params[name].dtype)
                     for name, needed in needs_params.items() if needed}
            return dx, grads
        out = fused_cpu.backward(spec, x, grad_out, params, needs_x, needs_params)
        if out is None and x.is_cpu:
            out = _cpu_backward(implementation(spec), x, grad_out, params, needs_x, needs_params)
        if out is not None:
            return out
    return expression_backward(spec, x, grad_out, params, needs_x, needs_params)


def jvp_math(spec: ActivationSpec, x: torch.Tensor, x_t: torch.Tensor | None, params: dict[str, Any],
             param_tangents: dict[str, torch.Tensor]) -> torch.Tensor:
    """The forward-mode derivative: f'(x) x_t plus df/dp p_t for every parameter with a tangent."""
    cdt = compute_dtype(x.dtype)
    cparams = _cast_params(params, cdt)
    xc = x.to(cdt)
    if spec.kind == "gated":
        gate = spec.gate
        assert gate is not None and x_t is not None
        a, b = split_halves(xc, spec.name)
        ta, tb = split_halves(x_t.to(cdt), spec.name)
        out = ta * gate.torch_forward(b, **cparams) + a * gate.torch_derivative(b, **cparams) * tb
        return out.to(x.dtype)
    out = torch.zeros_like(xc) if x_t is None else spec.torch_derivative(xc, **cparams) * x_t.to(cdt)
    for name, tangent in param_tangents.items():
        out = out + spec.torch_param_derivatives[name](xc, **cparams) * tangent.to(cdt)
    return out.to(x.dtype)


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
        generate_vmap_rule = True

        @staticmethod
        def forward(x, *values):
            return forward_math(spec, x, dict(zip(names, values)))

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, *values = inputs
            if not any(isinstance(v, torch.Tensor) for v in values):
                ctx.scalars, ctx.tensor_names, tensors = dict(zip(names, values)), (), ()
            else:
                params = dict(zip(names, values))
                ctx.tensor_names = tuple(k for k, v in params.items() if isinstance(v, torch.Tensor))
                ctx.scalars = {k: v for k, v in params.items() if k not in ctx.tensor_names}
                tensors = tuple(params[k] for k in ctx.tensor_names)
            ctx.save_for_backward(x, *tensors)
            if fwAD._current_level >= 0:  # tangents exist only inside a dual level: jvp needs the input then
                ctx.save_for_forward(x, *tensors)

        @staticmethod
        def backward(ctx, grad_out):
            x, *tensors = ctx.saved_tensors
            params = {**ctx.scalars, **dict(zip(ctx.tensor_names, tensors))}
            needs = {name: ctx.needs_input_grad[i] for i, name in enumerate(names, start=1)
                     if name in ctx.tensor_names}
            grad_x, grads = backward_math(spec, x, grad_out, params, ctx.needs_input_grad[0], needs)
            return (grad_x, *(grads.get(name) for name in names))

        @staticmethod
        def jvp(ctx, x_t, *value_tangents):
            x, *tensors = ctx.saved_tensors
            params = {**ctx.scalars, **dict(zip(ctx.tensor_names, tensors))}
            tangents = {name: t for name, t in zip(names, value_tangents)
                        if name in ctx.tensor_names and t is not None}
            return jvp_math(spec, x, x_t, params, tangents)

    ActivationFunction.__name__ = ActivationFunction.__qualname__ = f"{_camel(spec.name)}Function"
    return ActivationFunction


class EagerPaths(NamedTuple):
    """The lean paths of one activation: ``function(x, *param_values)``, a lean Function's apply (one-element
    parameter tensors included); ``autograd(x, *param_values)``, the call with autograd for numeric parameters
    (that apply, or the entry's ``composed`` ops); ``forward(x, params)``, the forward for calls without autograd;
    ``every_size``, whether they also serve tensors that :mod:`actlab.kernels.fused_cpu` would take (the compiled
    ops, whose fused loops run on every thread and measured faster there)."""

    function: Callable[..., torch.Tensor]
    autograd: Callable[..., torch.Tensor]
    forward: Callable[[torch.Tensor, dict[str, Any]], torch.Tensor]
    every_size: bool = False


_EAGER: dict[ActivationSpec, tuple[Implementation, EagerPaths | None]] = {}


def eager_paths(spec: ActivationSpec) -> EagerPaths | None:
    """The lean paths for the most common call, or None where the spec's entry has no aten paths on the CPU:
    eager mode on CPU tensors (below :mod:`actlab.kernels.fused_cpu`'s size unless ``every_size``), every parameter
    a number or a one-element CPU tensor, no torch.func transform, tracer or forward-mode level (the caller checks
    these). They run the entry's aten paths (or its compiled op) with none of the general Function's per-call
    routing, which costs as much as the arithmetic at the flagship's tensor sizes. Backward keeps only the input
    (and parameter tensors); a backward recorded for double backward (create_graph) or run with batched gradients
    takes the general path's expressions."""
    impl = implementation(spec)
    built = _EAGER.get(spec)
    if built is None or built[0] is not impl:  # built from this entry (an entry replaced at run time: rebuilt)
        built = _EAGER[spec] = (impl, _build_eager(spec, impl) if impl.forward and impl.backward else None)
    return built[1]


def _build_eager(spec: ActivationSpec, impl: Implementation) -> EagerPaths:
    names = tuple(spec.params)
    slot = {name: i for i, name in enumerate(names, start=1)}  # a parameter's place in apply's arguments
    trainable = tuple(k for k, p in spec.params.items() if p.trainable_allowed)
    fast_forward, fast_backward = impl.forward, impl.backward
    # Half types go in as they are where the entry takes them so; otherwise through float32.
    as_is = (torch.float32, torch.float64, *HALF_TYPES) if impl.half_as_is else (torch.float32, torch.float64)
    assert fast_forward is not None and fast_backward is not None

    op = compiled.lean_op(impl.compiled, _compiled_fallback) if impl.compiled else None
    if op is not None:  # the Function below's work in one C++ autograd node (fused loops where it can)
        _COMPILED_SPECS[impl.compiled] = spec
        return EagerPaths(op, op, _positional(op, names), every_size=True)

    def forward(x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        y = fast_forward(x, params) if x.dtype in as_is else _cpu_forward(impl, x, params)
        return expression_forward(spec, x, params) if y is None else y

    class EagerActivationFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *values):
            params = dict(zip(names, values))
            learned = tuple(k for k in trainable if isinstance(params[k], torch.Tensor)) if trainable else ()
            ctx.learned = learned
            if learned:  # saved, so an in-place change before backward is caught
                ctx.params = {k: v for k, v in params.items() if k not in learned}
                ctx.save_for_backward(x, *(params[k] for k in learned))
            else:
                ctx.params = params
                ctx.save_for_backward(x)
            return forward(x, params)

        @staticmethod
        def backward(ctx, grad_out):
            x, *tensors = ctx.saved_tensors
            params, needs, needs_x = ctx.params, {}, ctx.needs_input_grad[0]
            if tensors:
                params = {**params, **dict(zip(ctx.learned, tensors))}
                needs = {k: ctx.needs_input_grad[slot[k]] for k in ctx.learned}
            out = None
            if not (torch.is_grad_enabled() or grad_out.dtype != x.dtype or transformed(grad_out)):
                if x.dtype in as_is:
                    out = fast_backward(x, grad_out, params, needs_x, needs)
                    if out is not None and not all(k in out[1] for k, needed in needs.items() if needed):
                        out = None
                else:
                    out = _cpu_backward(impl, x, grad_out, params, needs_x, needs)
            grad_x, grads = out or expression_backward(spec, x, grad_out, params, needs_x, needs)
            return (grad_x if needs_x else None, *(grads.get(k) for k in names))

    EagerActivationFunction.__name__ = EagerActivationFunction.__qualname__ = f"{_camel(spec.name)}EagerFunction"
    apply = super(torch.autograd.Function, EagerActivationFunction).apply
    composed = impl.composed
    if composed is not None:
        return EagerPaths(apply, lambda x, *values: composed(x, dict(zip(names, values))), forward)
    return EagerPaths(apply, apply, forward)


_COMPILED_SPECS: dict[str | None, ActivationSpec] = {}


def _positional(op: Callable[..., torch.Tensor], names: tuple[str, ...]
                ) -> Callable[[torch.Tensor, dict[str, Any]], torch.Tensor]:
    """``op(x, *values)`` as ``forward(x, params)``: the values in the spec's order, with the common arities spelled
    out (a generator per call costs about what a small activation's arithmetic does)."""
    if not names:
        return lambda x, params: op(x)
    if len(names) == 1:
        (name,) = names
        return lambda x, params: op(x, params[name])
    return lambda x, params: op(x, *[params[k] for k in names])


def _compiled_fallback(op: str, x: torch.Tensor, grad_out: torch.Tensor, values: tuple[Any, ...], needs_x: bool,
                       needs_values: tuple[bool, ...]) -> tuple[torch.Tensor | None, ...]:
    """The backwards a compiled lean op leaves to Python (a graph recorded for double backward, batched gradients):
    the general path's, as the lean Function's would run."""
    spec = _COMPILED_SPECS[op]
    names = tuple(spec.params)
    params = dict(zip(names, values))
    needs = {k: needed for k, needed, v in zip(names, needs_values, values) if isinstance(v, torch.Tensor)}
    grad_x, grads = backward_math(spec, x, grad_out, params, needs_x, needs)
    return (grad_x if needs_x else None, *(grads.get(k) for k in names))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part.isalnum()) or "Activation"
