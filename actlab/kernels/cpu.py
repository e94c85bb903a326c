"""Fused CPU fast paths built from PyTorch's own vectorised kernels, for activations PyTorch has no native op for.

swish with any beta > 0 (fixed or a trainable one-element tensor), float32 and float64:

- forward: ``x * sigmoid(beta x)`` is exactly ``softplus_backward(grad=x, x, beta, threshold)`` (PyTorch's
  softplus gradient is ``grad * sigmoid(beta x)``, and ``grad`` itself above the threshold, where the sigmoid
  is 1 to working precision), one pass instead of four; ``F.silu`` for beta = 1.
- backward: ``d/dx x sigmoid(beta x) = silu'(beta x)``, so ``silu_backward(grad, beta x)``. Its formula forms
  1 - sigmoid(u) from a rounded sigmoid, so in float32 it is off by up to about |u| / 2 ulps for u in (3, 17)
  (about 1e-6 absolute), exactly as F.silu's own backward; an accurate selection between the two tails would
  need torch.where, which runs at a tenth of the bandwidth on CPU. A trainable beta's
  gradient ``sum(grad * x^2 sigmoid'(beta x))`` reuses the same buffer in place.

These natives give NaN at -inf (``-inf * 0``) where the catalogue's answer is 0: a forward whose input holds -inf
or NaN (one min pass finds out), and a beta gradient whose input holds an infinity, run the spec's stable
composition instead; backward clamps ``beta x`` to +-1e4, where silu' is exactly 1 and 0. Half types, beta = 0,
tensors inside torch.func transforms and anything else return ``None``: the caller runs the generic path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

# Above beta x = 40 the sigmoid is 1 within float64's rounding (e^-40 < 2^-53), so the threshold is exact.
_SWISH_THRESHOLD = 40.0
_FAST_DTYPES = (torch.float32, torch.float64)


def _eligible(spec, x: torch.Tensor) -> bool:
    return (spec.name == "swish" and x.device.type == "cpu" and x.dtype in _FAST_DTYPES
            and not torch._C._functorch.is_functorch_wrapped_tensor(x))


def _beta(params: dict[str, Any]) -> float | None:
    beta = params["beta"]
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1 or torch._C._functorch.is_functorch_wrapped_tensor(beta):
            return None
        beta = float(beta.detach())
    return beta if beta > 0 else None


def _finite_min(x: torch.Tensor) -> bool:
    """No NaN and no -inf (torch.min propagates NaN)."""
    return x.numel() == 0 or bool(torch.isfinite(x.min()))


def _all_finite(x: torch.Tensor) -> bool:
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def cpu_forward(spec, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | None:
    if not _eligible(spec, x):
        return None
    beta = _beta(params)
    if beta is None or not _finite_min(x):
        return None
    if beta == 1.0:
        return F.silu(x)
    return torch.ops.aten.softplus_backward(x, x, beta, _SWISH_THRESHOLD)


def cpu_backward(spec, x: torch.Tensor, grad: torch.Tensor, params: dict[str, Any], needs_x: bool,
                 needs_params: dict[str, bool]) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]] | None:
    # Under create_graph (double backward) the generic path runs: aten has no derivative for silu_backward.
    if not _eligible(spec, x) or grad.dtype != x.dtype or torch.is_grad_enabled():
        return None
    beta = _beta(params)
    need_beta = bool(needs_params.get("beta"))
    if beta is None or (need_beta and not _all_finite(x)):
        return None
    # silu'(u) is exactly 1 above u = 1e4 and 0 below -1e4 in every float type; the clamp (NaN stays NaN) turns
    # the infinities and overflowed products that silu_backward would make NaN into those limits.
    u = (x * beta if beta != 1.0 else x.clone()).clamp_(-1e4, 1e4)
    grad_x = torch.ops.aten.silu_backward(grad, u) if needs_x else None
    grads = {}
    if need_beta:
        weight = params["beta"]
        u = torch.sigmoid_(u.contiguous())
        u = torch.ops.aten.sigmoid_backward.grad_input(grad, u, grad_input=u).mul_(x)  # grad sigma' x, in place
        d = torch.dot(u.reshape(-1), x.reshape(-1)) if x.is_contiguous() else (u * x).sum()
        grads["beta"] = d.reshape(weight.shape).to(weight.dtype)
    return grad_x, grads
