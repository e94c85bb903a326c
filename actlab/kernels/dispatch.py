"""Route an activation call to its implementation. The one place that decides, in this order:

1. PyTorch's native op, where the spec names one and it covers the parameters (``spec.native_covers``): the same
   cost as calling it directly, eager, compiled and exported (in eager mode only where ``spec.native_traced`` is
   False: tracers then record the expression).
2. Eager calls on a plain CPU tensor whose parameters are numbers or one-element CPU tensors (a trained beta):
   the lean paths of :func:`~actlab.kernels.function.eager_paths`, a Function with autograd or the forward alone
   without. Checked first, because at the flagship's sizes routing costs as much as the arithmetic; modules with
   fixed parameters bind them once (:func:`eager_call`).
3. Under torch.compile, torch.export, torch.jit tracing and ``torch.fx.symbolic_trace``: the spec's torch
   expression, so the tracer records plain ops and inductor fuses them with their neighbours.
4. Without autograd (no grad mode, or nothing requires grad): the forward math directly, with no Function.
5. Otherwise the general autograd Function of :mod:`actlab.kernels.function`. Every Function keeps only the input
   for backward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.fx

from actlab.catalog.definitions.gated import check_halves
from actlab.catalog.spec import ActivationSpec
from actlab.errors import ShapeError
from actlab.kernels import compiled, fused_cpu
from actlab.kernels.function import (
    EagerPaths,
    activation_function,
    compute_dtype,
    eager_paths,
    expression_forward,
    forward_math,
)
from actlab.kernels.implementations import implementation
from actlab.kernels.transforms import transformed, transforms_active

__all__ = ["channel_view", "compute_dtype", "eager_call", "learned_call", "native_call", "run"]


def _apply_unbound(fn: type[torch.autograd.Function], *args: Any) -> torch.Tensor:
    """``fn.apply`` without its per-call inspect.signature binding (~30 us): the C apply it ends in."""
    return super(torch.autograd.Function, fn).apply(*args)  # type: ignore[misc]


def native_call(spec: ActivationSpec, params: Mapping[str, Any], *, inplace: bool = False
                ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The native op bound to ``params``, or None when the spec has none for them. ``inplace``: the in-place form
    where the spec names one (None otherwise)."""
    native = spec.native_inplace if inplace else spec.native
    if native is None or not spec.native_covers(**params):
        return None
    if not spec.native_traced:  # eager only: run() records the expression under a tracer
        return lambda x: run(spec, x, params) if _tracing(x) else native(x, **params)
    if spec.kind == "gated":  # actlab's ShapeError for an odd last dimension, not the native's message
        def gated(x: torch.Tensor) -> torch.Tensor:
            if not isinstance(x, torch.fx.Proxy):
                check_halves(x, spec.name)
            return native(x, **params)
        return gated
    if not params:
        return native
    return lambda x: native(x, **params)


def _tracing(x: Any) -> bool:
    return isinstance(x, torch.fx.Proxy) or torch.jit.is_tracing() or torch.compiler.is_compiling()


def _needs_autograd(x: torch.Tensor, params: Mapping[str, Any]) -> bool:
    if fwAD._current_level >= 0:  # inside a forward-mode dual level: the Function's jvp rule is needed
        return True
    if not torch.is_grad_enabled():
        return False
    if x.requires_grad or transformed(x):
        return True
    return any(isinstance(v, torch.Tensor) and (v.requires_grad or transformed(v)) for v in params.values())


_LANE_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
_NO_LANE, _AUTOGRAD, _FORWARD = 0, 1, 2


def _lane(x: Any) -> int:
    """Whether a call on ``x`` may take the lean paths of :func:`eager_paths`, and which: a plain CPU tensor in
    eager mode, outside torch.func transforms, forward-mode levels, tracers and torch.compile (where dynamo reports
    a fake tensor's type as torch.Tensor). A tensor wrapped by a transform exists only while one is active
    (autograd's batched gradients wrap gradients in backward, where no forward runs). Each test costs about a
    microsecond in a training loop, about what the arithmetic costs at the flagship's sizes, so there are no
    more than these."""
    if not (type(x) is torch.Tensor and x.is_cpu and x.dtype in _LANE_DTYPES) or fwAD._current_level >= 0 or \
            transforms_active() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return _NO_LANE
    return _AUTOGRAD if x.requires_grad and torch.is_grad_enabled() else _FORWARD


def eager_call(spec: ActivationSpec, params: Mapping[str, Any]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """For a module with fixed parameters: ``run(spec, x, params)`` with the lean paths' lane checked once and
    everything about the spec and its parameters decided once. None where the lane never applies (a native op,
    a stochastic or tensor parameter, an entry without aten paths)."""
    paths = eager_paths(spec)
    if paths is None or spec.stochastic or (spec.native is not None and spec.native_covers(**params)) or any(
            isinstance(v, torch.Tensor) for v in params.values()):
        return None
    autograd, forward, values, kwargs = paths.autograd, paths.forward, tuple(params.values()), dict(params)
    name, gated = spec.name, spec.kind == "gated"
    fused = implementation(spec).fused is not None and not paths.every_size

    def call(x: torch.Tensor) -> torch.Tensor:
        lane = _lane(x)
        if lane and not (fused and fused_cpu.covers(spec, x, kwargs) is not None):
            if gated:
                check_halves(x, name)
            return autograd(x, *values) if lane == _AUTOGRAD else forward(x, kwargs)
        return _route(spec, x, kwargs, False, False)  # no native covers these, and none is stochastic

    return call


def learned_call(spec: ActivationSpec, fixed: Mapping[str, Any], learned: tuple[str, ...]
                 ) -> Callable[..., torch.Tensor] | None:
    """For a module whose parameters ``learned`` are trained tensors (a trained swish beta) and the rest ``fixed``:
    ``call(x, *tensors)`` (the tensors in ``learned``'s order) is ``run(spec, x, params)`` with what does not depend
    on the call decided once, as :func:`eager_call` does for fixed parameters. None where the lean paths never apply
    (a stochastic activation, an entry without aten paths)."""
    paths = eager_paths(spec)
    if paths is None or spec.stochastic or set(learned) & set(fixed) or set(learned) | set(fixed) != set(spec.params):
        return None
    names = tuple(spec.params)
    template = [fixed.get(name) for name in names]
    slots = [names.index(name) for name in learned]
    min_fused = fused_cpu.MIN_NUMEL if implementation(spec).fused is not None and not paths.every_size else None

    def fused_takes(x: torch.Tensor, values: list[Any]) -> bool:  # fused_cpu's compiled loops take large tensors
        return min_fused is not None and x.numel() >= min_fused and \
            fused_cpu.covers(spec, x, dict(zip(names, values))) is not None

    def call(x: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        values = template.copy()
        for slot, tensor in zip(slots, tensors):
            values[slot] = tensor
        lane = _lane(x)
        if lane and all(t.is_cpu and t.numel() == 1 for t in tensors) and not fused_takes(x, values):
            return _lean(spec, paths, x, values, lane, tensors)
        return run(spec, x, dict(zip(names, values)))

    return call


def run(spec: ActivationSpec, x: torch.Tensor, params: Mapping[str, Any], *, training: bool = False) -> torch.Tensor:
    """Apply ``spec`` with validated ``params`` to ``x``. The output has the input's dtype, device and shape
    (gated kinds: the last dimension halved)."""
    covered = spec.native is not None and spec.native_covers(**params)
    if not covered and not spec.stochastic:
        lane = _lane(x)
        paths = eager_paths(spec) if lane else None
        if paths is not None and (paths.every_size or fused_cpu.covers(spec, x, params) is None):
            learned = [v for v in params.values() if isinstance(v, torch.Tensor)]
            if not learned or all(v.is_cpu and v.numel() == 1 for v in learned):  # a trained swish beta
                return _lean(spec, paths, x, tuple(params.values()), lane, learned)
    return _route(spec, x, params, covered, training)


def _lean(spec: ActivationSpec, paths: EagerPaths, x: torch.Tensor, values: Sequence[Any], lane: int,
          learned: Sequence[torch.Tensor]) -> torch.Tensor:
    """The lean paths' call once its lane is checked (``values``: the parameters in the spec's order): with autograd
    where the input or a trained tensor (in ``learned``) needs it, else the forward alone."""
    if spec.kind == "gated":
        check_halves(x, spec.name)
    if lane == _AUTOGRAD:
        return (paths.function if learned else paths.autograd)(x, *values)
    if learned and torch.is_grad_enabled() and any(v.requires_grad for v in learned):
        return paths.function(x, *values)
    return paths.forward(x, dict(zip(spec.params, values)))


def _check_broadcast(spec: ActivationSpec, name: str, value: torch.Tensor, x: torch.Tensor) -> None:
    """A tensor parameter with several elements (per-channel, per-seed) must broadcast to the shape it acts on
    without enlarging it: the output keeps the input's shape."""
    shape = tuple(x.shape[:-1]) + (x.shape[-1] // 2,) if spec.kind == "gated" else tuple(x.shape)
    try:
        fits = torch.broadcast_shapes(value.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ShapeError(f"{spec.name}: parameter '{name}' has shape {tuple(value.shape)}, which does not broadcast "
                         f"to the shape it acts on, {shape}; give one element, or a shape that broadcasts to it")


@torch.fx.wrap
def channel_view(value: Any, x: torch.Tensor) -> Any:
    """A per-channel parameter of shape (C,) viewed to broadcast over dim 1 of ``x`` (dim 0 of a 1-D input), as
    F.prelu broadcasts its slopes; one element, or anything else, as it is. torch.fx records it as one call."""
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.numel() == 1 or x.dim() < 2:
        return value
    return value.reshape((value.numel(),) + (1,) * (x.dim() - 2))


def _channel_views(spec: ActivationSpec, params: Mapping[str, Any], x: Any) -> dict[str, Any]:
    if isinstance(x, torch.Tensor):
        for k, v in params.items():
            if isinstance(v, torch.Tensor) and v.dim() == 1 and v.numel() > 1 and spec.params[k].length is None:
                channels = x.shape[1] if x.dim() >= 2 else (x.shape[0] if x.dim() == 1 else None)
                if channels != v.numel():
                    raise ShapeError(
                        f"{spec.name}: parameter '{k}' holds {v.numel()} channels' values ({spec.per_channel} = "
                        f"{v.numel()}) but the input of shape {tuple(x.shape)} has {channels} channels on dim 1; "
                        f"build it with {spec.per_channel} = {channels}, or 1 to share the values")
    return {k: channel_view(v, x) if spec.params[k].length is None else v for k, v in params.items()}


def _route(spec: ActivationSpec, x: Any, params: Mapping[str, Any], covered: bool, training: bool) -> torch.Tensor:
    """Every path but the lean ones (whose lane the caller has checked)."""
    if spec.per_channel is not None:
        params = _channel_views(spec, params, x)
    if isinstance(x, torch.fx.Proxy):
        return spec.native(x, **params) if covered and spec.native_traced else spec.torch_forward(x, **params)  # type: ignore[misc]  # covered implies native is set
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{spec.name}: expected a torch.Tensor input, got {type(x).__name__}")
    if spec.train_forward is not None and training:
        return spec.train_forward(x, **params)
    if spec.kind == "gated":
        check_halves(x, spec.name)  # the same error on every path for an odd last dimension
    if covered and (spec.native_traced or not _tracing(x)):
        return spec.native(x, **params)  # type: ignore[misc]  # covered implies native is set
    if not x.is_floating_point():
        raise TypeError(
            f"{spec.name}: input dtype {x.dtype} is not supported; use a floating type "
            "(float16, bfloat16, float32 or float64)"
        )
    vectors = False
    for name, value in params.items():
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            if spec.params[name].length is None:
                _check_broadcast(spec, name, value, x)
            else:
                vectors = True
    if spec.kind == "normalizing" or vectors or _tracing(x):
        # A vector of coefficients (a Padé unit's) is no elementwise parameter: autograd differentiates the
        # expression's own ops, which keep what they need.
        return expression_forward(spec, x, dict(params))
    if not _needs_autograd(x, params):
        return forward_math(spec, x, dict(params))
    fn = activation_function(spec)
    if transforms_active() or transformed(x):
        return fn.apply(x, *params.values())
    # Outside torch.func transforms, and the forward taking positional arguments only, the binding is not needed.
    return _apply_unbound(fn, x, *params.values())


def route(spec: ActivationSpec, params: Mapping[str, Any], trained: bool = False) -> str:
    """Which implementation a CPU module of ``spec`` at ``params`` runs: ``"native"`` (PyTorch's own op, whatever is
    built), ``"compiled"`` (actlab's C++ lean paths, from ``actlab build-ext``) or ``"python"`` (the aten lean paths
    or the general Function). Part of a trial's identity: a build changes it only where it changes the path."""
    if not trained and spec.native is not None and spec.native_covers(**params):
        return "native"
    paths = eager_paths(spec)
    if paths is not None and not spec.stochastic and implementation(spec).compiled and compiled.load() is not None:
        return "compiled"
    return "python"
