"""One compiled loop forward and one backward on the CPU for activations PyTorch has no kernel for; names none.

aten has no single kernel for swish at beta != 1 (trainable or not), squared ReLU or the GLU variants, so their eager
paths make two to four passes over memory where the native op of the same size makes one. For large tensors,
torch.compile (inductor's C++ backend) turns an implementation entry's fused expressions
(:class:`actlab.kernels.implementations.Fused`) into one vectorised loop forward and one backward, the backward forming
the input's gradient and a trainable parameter's reduction in the same pass. Small tensors keep the eager paths: a
compiled call's fixed cost (dynamo's guards) would outweigh the passes it saves.

Covered: CPU, float32 and half types (computed in float32, rounded once), at least :data:`MIN_NUMEL` elements, scalar
parameters (a one-element trainable tensor included). Everything else returns ``None`` and the caller's other paths
run. The first call per activation, dtype and kind of call compiles a loop for its size (seconds; inductor keeps the
result on disk for later processes); a second size compiles one loop for every size (dynamo's automatic dynamic
shapes), which is slower than a loop for one size, so a training loop with fixed shapes gets the fastest. Where
compiling fails (no C++ compiler, for instance) one warning says so and the eager paths run from then on.
``ACTLAB_FUSED_CPU=0`` in the environment turns the path off.
"""

from __future__ import annotations

import os
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from actlab.catalog.spec import ActivationSpec
from actlab.kernels.implementations import Fused, Implementation, implementation

# Below about this many elements the eager paths win: a compiled call costs 60-120 us more than an aten call on the
# 2-core CPU of benchmarks/RESULTS.md, and the crossover there lies between 2^18 and 2^20 elements.
MIN_NUMEL = 1 << 20

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# (spec, "forward" | "backward", dtype, which gradients) -> the compiled kernel
_KERNELS: dict[tuple[Any, ...], Callable[..., Any]] = {}
_state = {"failed": False}


def enabled() -> bool:
    return not _state["failed"] and os.environ.get("ACTLAB_FUSED_CPU", "1") != "0"


def covers(spec: ActivationSpec, x: torch.Tensor, params: Mapping[str, Any]) -> Implementation | None:
    """The implementation entry where this path covers the call (its ``fused`` set), else None. The size is checked
    first: every small CPU call of a Function-backed activation passes here."""
    if x.numel() < MIN_NUMEL or x.device.type != "cpu" or x.dtype not in _DTYPES or not x.is_contiguous():
        return None
    impl = implementation(spec)
    if impl.fused is None or not enabled():
        return None
    for value in params.values():
        if isinstance(value, torch.Tensor) and (value.numel() != 1 or value.device.type != "cpu"):
            return None
    return impl


def _scalar_tensors(params: dict[str, Any]) -> dict[str, Any]:
    """Numbers as 0-d float32 tensors, so one compiled kernel serves every value (a Python float would be baked in
    and recompiled per value); strings (choices) stay constants."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, torch.Tensor):
            out[name] = value.detach().reshape(()).float()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = torch.tensor(float(value), dtype=torch.float32)
        else:
            out[name] = value
    return out


def _own_code(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A copy of ``fn`` with its own code object. Dynamo keeps its compiled graphs and its recompile limit per code
    object, so kernels made by one factory would otherwise share (and soon exhaust) one cache."""
    code = fn.__code__.replace(co_name=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


def _make(fused: Fused, gated: bool, what: str, grads: tuple[str, ...]) -> Callable[..., Any]:
    f, d, dp = fused.forward, fused.derivative, fused.param_derivatives
    if gated:
        def gated_forward(x, params):
            a, b = x.float().chunk(2, dim=-1)
            return (a * f(b, **params)).to(x.dtype)

        def gated_backward(x, g, params):
            a, b = x.float().chunk(2, dim=-1)
            gc = g.float()
            return torch.cat([gc * f(b, **params), gc * a * d(b, **params)], dim=-1).to(x.dtype)

        return gated_forward if what == "forward" else gated_backward

    def forward(x, params):
        return f(x.float(), **params).to(x.dtype)

    def backward(x, g, params):
        xc, gc = x.float(), g.float()
        dx = (gc * d(xc, **params)).to(x.dtype) if "x" in grads else None
        return dx, tuple((gc * dp[name](xc, **params)).sum() for name in grads if name != "x")

    return forward if what == "forward" else backward


def _kernel(spec: ActivationSpec, fused: Fused, what: str, dtype: torch.dtype, grads: tuple[str, ...] = ()):
    key = (spec, what, dtype, grads)
    if key not in _KERNELS:
        fn = _make(fused, spec.kind == "gated", what, grads)
        name = f"actlab_{spec.name}_{what}_{str(dtype).removeprefix('torch.')}_{'_'.join(grads) or 'none'}"
        _KERNELS[key] = torch.compile(_own_code(fn, name), fullgraph=True)
    return _KERNELS[key]


def _call(kernel: Callable[..., Any], *args: Any):
    try:
        # A call may compile (a first call, a new size), and torch's lazy imports then warn (DeprecationWarning
        # from torch.jit); where warnings are errors (-W error, pytest's filterwarnings) that would fail the compile.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return kernel(*args)
    except Exception as error:  # a missing C++ compiler, an inductor limitation: the eager paths are correct
        _state["failed"] = True
        warnings.warn(f"actlab: compiling a fused CPU kernel failed ({type(error).__name__}: {error}); "
                      "using the eager paths from now on", RuntimeWarning, stacklevel=3)
        return None


def _flat(spec: ActivationSpec, x: torch.Tensor) -> torch.Tensor:
    # detached: whether the caller's tensor requires grad would otherwise be one more thing dynamo guards on
    x = x.detach()
    return x.reshape(-1, x.shape[-1]) if spec.kind == "gated" else x.reshape(-1)


def forward(spec: ActivationSpec, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | None:
    impl = covers(spec, x, params)
    if impl is None or impl.fused is None or not impl.fuse_forward:
        return None
    y = _call(_kernel(spec, impl.fused, "forward", x.dtype), _flat(spec, x), _scalar_tensors(params))
    if y is None:
        return None
    return y.reshape(*x.shape[:-1], x.shape[-1] // 2) if spec.kind == "gated" else y.reshape(x.shape)


def backward(spec: ActivationSpec, x: torch.Tensor, grad_out: torch.Tensor, params: dict[str, Any],
             needs_x: bool, needs_params: dict[str, bool]):
    """``(grad_x, {parameter: grad})`` like the other backward paths, or None where this path does not cover it."""
    impl = covers(spec, x, params)
    if impl is None or impl.fused is None or grad_out.dtype != x.dtype:
        return None
    fused = impl.fused
    wanted = tuple(name for name, needed in needs_params.items() if needed)
    if spec.kind == "gated" or not (needs_x or wanted):
        wanted = ()
    if any(name not in fused.param_derivatives for name in wanted):
        return None
    grads = (("x",) if needs_x or spec.kind == "gated" else ()) + wanted
    g = grad_out.contiguous()
    out = _call(_kernel(spec, fused, "backward", x.dtype, grads), _flat(spec, x), _flat(spec, g),
                _scalar_tensors(params))
    if out is None:
        return None
    if spec.kind == "gated":
        return out.reshape(x.shape), {}
    dx, sums = out
    results = {name: s.reshape(params[name].shape).to(params[name].dtype) for name, s in zip(wanted, sums)}
    return (None if dx is None else dx.reshape(x.shape)), results
