"""CPU fast paths built from PyTorch's own vectorised kernels, for activations PyTorch has no exact native op for.

Each path writes into as few fresh buffers as it can (on CPU a fresh full-size buffer costs its page faults, and
``torch.where`` runs at a tenth of copy bandwidth, so the stable compositions with ``where`` guards are slow). The
natives they use give NaN at the infinities (``-inf * 0``) where the catalogue's answer is finite, so a call
whose input holds one (one min or min/max pass finds out) runs the spec's stable composition instead; so do
tensors inside torch.func transforms, and backward under ``create_graph`` (aten has no derivative for
``silu_backward``). float32 and float64 run as they are; half types are computed in float32 and rounded once.

- swish, any beta > 0, fixed or a trainable one-element tensor: forward ``softplus_backward(x, x, beta, 40)``,
  which is ``x sigmoid(beta x)`` in one pass (PyTorch's softplus gradient is ``grad * sigmoid(beta x)``, and
  ``grad`` above the threshold, where the sigmoid is 1 to float64 precision), ``F.silu`` at beta = 1; backward
  ``silu_backward(grad, beta x)``. silu_backward forms 1 - sigmoid(u) from a rounded sigmoid, so in float32 it is
  off by up to about |u| / 2 ulps for u in (3, 17) (1e-6 absolute), as F.silu's own backward is. A trainable
  beta's gradient ``sum(grad x^2 sigmoid'(beta x))`` reuses one buffer in place and ends in a dot product.
- gelu (exact): forward ``x erfc(-x / sqrt 2) / 2`` (no 1 + erf cancellation in the negative tail, unlike F.gelu);
  backward aten's ``gelu_backward``.
- mish: ``F.mish`` and ``mish_backward``; hardswish and hardsigmoid: the natives, except where their conventions
  differ from the catalogue's (hardswish' exactly at -3 and 3; hardsigmoid's float64 backward).
- softsign, squared_relu: in-place compositions.
- reglu, swiglu, geglu: the gate computed into a buffer that becomes the output; backward writes both halves of one
  ``[..., 2H]`` gradient buffer through ``out=`` views (no cat).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from actlab.catalog import registry

# Above beta x = 40 the sigmoid is 1 within float64's rounding (e^-40 < 2^-53), so the threshold is exact.
_SWISH_THRESHOLD = 40.0
_HALF = (torch.float16, torch.bfloat16)
_FAST_DTYPES = (torch.float32, torch.float64, *_HALF)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)

_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def _finite_min(x: torch.Tensor) -> bool:
    """No NaN and no -inf (torch.min propagates NaN)."""
    return x.numel() == 0 or bool(torch.isfinite(x.min()))


def _finite_ends(x: torch.Tensor) -> tuple[bool, bool]:
    """(the minimum is finite, the maximum is finite), from one pass; a NaN makes both False."""
    if x.numel() == 0:
        return True, True
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo)), bool(torch.isfinite(hi))


def _all_finite(x: torch.Tensor) -> bool:
    return all(_finite_ends(x))


def _swish_beta(params: dict[str, Any]) -> float | None:
    beta = params["beta"]
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1 or _wrapped(beta):
            return None
        beta = float(beta.detach())
    return beta if beta > 0 else None


def _swish_gate_into(b: torch.Tensor, beta: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """swish_beta(b) = b sigmoid(beta b); b must be free of -inf and NaN."""
    if beta == 1.0:
        return F.silu(b) if out is None else torch.ops.aten.silu.out(b, out=out)
    if out is None:
        return torch.ops.aten.softplus_backward(b, b, beta, _SWISH_THRESHOLD)
    return torch.ops.aten.softplus_backward.grad_input(b, b, beta, _SWISH_THRESHOLD, grad_input=out)


def _clamped_scaled(x: torch.Tensor, beta: float) -> torch.Tensor:
    # silu'(u) is exactly 1 above u = 1e4 and 0 below -1e4 in every float type; the clamp (NaN stays NaN) turns the
    # infinities and overflowed products that silu_backward would make NaN into those limits.
    return (x * beta if beta != 1.0 else x.clone()).clamp_(-1e4, 1e4)


def _swish_grad(grad: torch.Tensor, b: torch.Tensor, beta: float, plain: bool,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """grad * d/db swish_beta(b) = grad * silu'(beta b), into ``out`` (a fresh buffer when None). ``plain``: b can
    be used as it is (beta = 1 and no infinity or NaN); otherwise a clamped beta b is formed, which, being a
    temporary, also takes the result when no ``out`` is given."""
    if plain:
        u = b
    else:
        u = _clamped_scaled(b, beta)
        out = u if out is None else out
    if out is None:
        return torch.ops.aten.silu_backward(grad, u)
    return torch.ops.aten.silu_backward.grad_input(grad, u, grad_input=out)


def _gelu_into(b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """b Phi(b) = b erfc(-b / sqrt 2) / 2; b must be free of -inf and NaN."""
    t = torch.mul(b, -_INV_SQRT_2, out=out) if out is not None else b * -_INV_SQRT_2
    return torch.special.erfc(t, out=t).mul_(0.5).mul_(b)  # halve first: b * 2 overflows near the float max


# ----- elementwise ------------------------------------------------------------------------------------------------


def _swish_forward(x, params):
    beta = _swish_beta(params)
    if beta is None or not _finite_min(x):
        return None
    return _swish_gate_into(x, beta)


def _swish_backward(x, grad, params, needs_x, needs_params):
    beta = _swish_beta(params)
    if beta is None:
        return None
    if not needs_params.get("beta"):
        return _swish_grad(grad, x, beta, plain=beta == 1.0 and _all_finite(x)), {}
    if not _all_finite(x):
        return None
    u = _clamped_scaled(x, beta)
    grad_x = torch.ops.aten.silu_backward(grad, u) if needs_x else None
    weight = params["beta"]
    u = torch.sigmoid_(u.contiguous())
    u = torch.ops.aten.sigmoid_backward.grad_input(grad, u, grad_input=u).mul_(x)  # grad sigma' x, in place
    d = torch.dot(u.reshape(-1), x.reshape(-1)) if x.is_contiguous() else (u * x).sum()
    return grad_x, {"beta": d.reshape(weight.shape).to(weight.dtype)}


def _gelu_forward(x, params):
    if params["approximate"] != "none" or not _finite_min(x):
        return None
    return _gelu_into(x)


def _gelu_backward(x, grad, params, needs_x, needs_params):
    if params["approximate"] != "none" or not _all_finite(x):
        return None
    return torch.ops.aten.gelu_backward(grad, x), {}


def _mish_forward(x, params):
    return F.mish(x) if _finite_min(x) else None


def _mish_backward(x, grad, params, needs_x, needs_params):
    return (torch.ops.aten.mish_backward(grad, x), {}) if _all_finite(x) else None


def _hardswish_forward(x, params):
    # F.hardswish forms x * 6 before dividing, which overflows above a sixth of the float max.
    if x.numel() == 0:
        return F.hardswish(x)
    lo, hi = torch.aminmax(x)
    return F.hardswish(x) if bool(torch.isfinite(lo) & (hi < torch.finfo(x.dtype).max / 8)) else None


def _hardswish_backward(x, grad, params, needs_x, needs_params):
    # aten's hardswish_backward matches the catalogue everywhere except exactly at x = -3 and 3, where it takes the
    # outer side's slope (0 and 1) and the catalogue the inner one (-1/2 and 3/2): inputs holding those run generic.
    # (count_nonzero of |x| - 3 is the cheapest exact test here: boolean any() runs at ~2 GB/s on this CPU build.)
    if int(torch.count_nonzero(x.abs().sub_(3.0))) != x.numel():
        return None
    return torch.ops.aten.hardswish_backward(grad, x), {}


def _hardsigmoid_forward(x, params):
    return F.hardsigmoid(x)


def _hardsigmoid_backward(x, grad, params, needs_x, needs_params):
    # aten's hardsigmoid_backward returns 1/6 rounded to float32 for float64 inputs, so float64 runs generic.
    return None if x.dtype == torch.float64 else (torch.ops.aten.hardsigmoid_backward(grad, x), {})


def _softsign_forward(x, params):
    if not _all_finite(x):
        return None
    t = x.abs().add_(1.0)
    return torch.div(x, t, out=t)


def _softsign_backward(x, grad, params, needs_x, needs_params):
    t = x.abs().add_(1.0)  # 1 / (1 + |x|)^2 -> 0 at the infinities, as it should
    return torch.div(grad, t.mul_(t), out=t), {}


def _squared_relu_forward(x, params):
    t = torch.relu(x)
    return t.mul_(t)


def _squared_relu_backward(x, grad, params, needs_x, needs_params):
    return torch.relu(x).mul_(grad).mul_(2.0), {}


# ----- gated: value half a, gate half b --------------------------------------------------------------------------


def _halves(x):
    h = x.shape[-1] // 2
    return x[..., :h], x[..., h:]


def _gated_forward(gate_into: Callable[[torch.Tensor], torch.Tensor | None]):
    def forward(x, params):
        a, b = _halves(x)
        y = gate_into(b, params)
        return None if y is None else y.mul_(a)
    return forward


def _gated_backward(gate_grads: Callable[..., bool]):
    """``gate_grads(a, b, grad, da, db, params)`` fills da = grad g(b) and db = grad a g'(b) in place and returns
    False when the fast path does not apply."""
    def backward(x, grad, params, needs_x, needs_params):
        a, b = _halves(x)
        dx = torch.empty_like(x)
        da, db = _halves(dx)
        return (dx, {}) if gate_grads(a, b, grad, da, db, params) else None
    return backward


def _reglu_gate(b, params):
    return torch.relu(b)


def _reglu_grads(a, b, grad, da, db, params):
    torch.clamp_min(b, 0.0, out=da).mul_(grad)
    torch.mul(grad, a, out=db).mul_(b > 0)
    return True


def _swiglu_gate(b, params):
    return _swish_gate_into(b, params["beta"]) if params["beta"] > 0 and _finite_min(b) else None


def _swiglu_grads(a, b, grad, da, db, params):
    beta = params["beta"]
    min_finite, max_finite = _finite_ends(b)
    if not (beta > 0 and min_finite):
        return False
    _swish_gate_into(b, beta, out=da).mul_(grad)
    torch.mul(grad, a, out=db)
    _swish_grad(db, b, beta, plain=beta == 1.0 and max_finite, out=db)
    return True


def _geglu_gate(b, params):
    return _gelu_into(b) if params["approximate"] == "none" and _finite_min(b) else None


def _geglu_grads(a, b, grad, da, db, params):
    if params["approximate"] != "none" or not _all_finite(b):
        return False
    _gelu_into(b, out=da).mul_(grad)
    torch.mul(grad, a, out=db)
    torch.ops.aten.gelu_backward.grad_input(db, b, grad_input=db)
    return True


_FORWARD: dict[str, Callable] = {
    "swish": _swish_forward, "gelu": _gelu_forward, "mish": _mish_forward, "hardswish": _hardswish_forward,
    "hardsigmoid": _hardsigmoid_forward,
    "softsign": _softsign_forward, "squared_relu": _squared_relu_forward,
    "reglu": _gated_forward(_reglu_gate), "swiglu": _gated_forward(_swiglu_gate),
    "geglu": _gated_forward(_geglu_gate),
}
_BACKWARD: dict[str, Callable] = {
    "swish": _swish_backward, "gelu": _gelu_backward, "mish": _mish_backward, "softsign": _softsign_backward,
    "hardswish": _hardswish_backward, "hardsigmoid": _hardsigmoid_backward,
    "squared_relu": _squared_relu_backward, "reglu": _gated_backward(_reglu_grads),
    "swiglu": _gated_backward(_swiglu_grads), "geglu": _gated_backward(_geglu_grads),
}


def covers(name: str) -> tuple[bool, bool]:
    """(forward, backward) fast paths exist for the catalogue activation ``name``."""
    return name in _FORWARD, name in _BACKWARD


def _eligible(spec, x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype in _FAST_DTYPES and not _wrapped(x) and registry.registered(spec))


def cpu_forward(spec, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | None:
    """The fast forward of ``spec`` for ``x``, or None where none applies. Half types run in float32 and are
    rounded once."""
    fn = _FORWARD.get(spec.name)
    if fn is None or not _eligible(spec, x):
        return None
    if x.dtype in _HALF:
        y = fn(x.float(), params)
        return None if y is None else y.to(x.dtype)
    return fn(x, params)


def cpu_backward(spec, x: torch.Tensor, grad: torch.Tensor, params: dict[str, Any], needs_x: bool,
                 needs_params: dict[str, bool]) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]] | None:
    """``(grad_x, {parameter: grad})`` from the fast backward, or None where none applies."""
    fn = _BACKWARD.get(spec.name)
    if fn is None or grad.dtype != x.dtype or torch.is_grad_enabled() or not _eligible(spec, x):
        return None
    half = x.dtype in _HALF
    out = fn(x.float(), grad.float(), params, needs_x, needs_params) if half else fn(x, grad, params, needs_x,
                                                                                        needs_params)
    if out is None:
        return None
    grad_x, grads = out
    if any(needed and name not in grads for name, needed in needs_params.items()):
        return None  # a path that gives no gradient for a parameter that needs one leaves it to the generic path
    return (grad_x.to(x.dtype) if half and grad_x is not None else grad_x), grads
