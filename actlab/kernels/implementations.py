"""The per-activation implementations beyond the spec: one :class:`Implementation` entry per built-in, and the only
module in ``actlab.kernels`` that names activations.

What a spec already gives is not repeated here: its ``native`` op (PyTorch's own, used directly), its
``torch_forward`` / ``torch_derivative`` expressions (what torch.compile, export, fx and torch.func see). An entry
adds, where it pays:

- ``forward`` / ``backward``: an eager path built from aten's vectorised kernels, writing into as few fresh buffers
  as it can (on CPU a fresh full-size buffer costs its page faults, and ``torch.where`` runs at a tenth of copy
  bandwidth). They take float32 or float64 tensors (half types are computed in float32 by the caller) and
  contain no host synchronisation and no branch on tensor values. Like PyTorch's natives, they may give NaN at
  +-inf where the limit is finite; on finite inputs they give what the expression gives, within rounding.
- ``fused``: plain torch expressions of the forward and the derivatives, for :mod:`actlab.kernels.fused_cpu`, which
  compiles them into one loop each way for large CPU tensors. Simpler than the spec's expressions (those also guard
  0 * inf at the infinities, which costs a compute-bound kernel a third of its speed): a finite input gives a finite
  result, and +-inf may give NaN, as PyTorch's own kernels do. A gated entry's are its gate's.
- ``triton``: the call of actlab's Triton kernels (:mod:`actlab.kernels.triton_math`) for the CUDA path.

A path returns ``None`` where it does not cover a call (per-seed stacked betas, for instance): the expression runs.
Activations not listed (a third-party spec) run their expression, with backward from their derivative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from actlab.catalog.definitions import classic, exponential, gated, rectifiers, smooth
from actlab.catalog.definitions.gated import split_halves
from actlab.catalog.definitions.smooth import GELU_TANH_COEFF
from actlab.catalog.numerics import INV_SQRT_2PI, SQRT_2, SQRT_2_OVER_PI
from actlab.catalog.spec import ActivationSpec
from actlab.kernels.transforms import transformed

Forward = Callable[[torch.Tensor, dict[str, Any]], "torch.Tensor | None"]
Backward = Callable[..., "tuple[torch.Tensor | None, dict[str, torch.Tensor]] | None"]


@dataclass(frozen=True)
class KernelCall:
    """A Triton kernel call: the device functions' key in :data:`actlab.kernels.triton_math.FUNCTIONS`, up to two
    scalar parameters, and at most one one-element parameter tensor (it replaces the first scalar)."""

    key: str
    scalars: tuple[float, float] = (0.0, 0.0)
    weight: torch.Tensor | None = None


@dataclass(frozen=True)
class Fused:
    """``forward(x, **params)``, ``derivative(x, **params)`` (df/dx) and ``param_derivatives[name](x, **params)``
    (df/dp per element), in float32 torch ops that inductor fuses into one loop."""

    forward: Callable[..., torch.Tensor]
    derivative: Callable[..., torch.Tensor]
    param_derivatives: Mapping[str, Callable[..., torch.Tensor]] = field(default_factory=dict)


@dataclass(frozen=True)
class Implementation:
    forward: Forward | None = None
    backward: Backward | None = None
    triton: Callable[..., KernelCall | None] | None = None
    # PyTorch's closest op, ``closest(x, **params)``, for activations PyTorch lacks: what the benchmark compares
    # them with (swish at any beta costs what F.silu costs, a GLU variant what F.glu costs).
    closest: Callable[..., torch.Tensor] | None = None
    # The paths take half types as they are: each result comes from aten kernels that compute in float32 and
    # round once (or from exact steps: relu, a product by 2; or the path converts the one step that would round,
    # as swish's backward forms beta x in float32). Otherwise half types are converted to float32 first.
    half_as_is: bool = False
    fused: Fused | None = None
    # False where ``forward`` is already one aten pass (swish's softplus_backward(x, x, beta)): aten's exp is faster
    # than the compiled loop's, so only the backward is compiled.
    fuse_forward: bool = True
    # ``composed(x, params)``: the forward as PyTorch ops whose own derivatives make a backward that keeps one tensor
    # of the input's size. Plain CPU calls with autograd run it instead of a Function (autograd then stays in C++,
    # double backward included), where that measured faster at small sizes: a Python Function costs more per call
    # than an extra aten pass there.
    composed: Callable[[torch.Tensor, dict[str, Any]], torch.Tensor] | None = None
    # The name of the op in actlab's compiled lean paths (:mod:`actlab.kernels.compiled`, ``lean_ops.cpp``) that runs
    # ``forward`` and ``backward`` as one C++ autograd node, ``op(x, *parameter values)``; plain CPU calls with
    # autograd take it where it is built. For entries whose Python Function alone costs more than the speed bound.
    compiled: str | None = None


HALF_TYPES = (torch.float16, torch.bfloat16)


def _scalars(*values: float) -> tuple[float, float]:
    padded = [float(v) for v in values] + [0.0, 0.0]
    return padded[0], padded[1]


def _slot(key: str, value: Any, *rest: float) -> KernelCall | None:
    """A parameter that may be a trainable tensor: one element rides in the weight slot; more have no kernel."""
    if isinstance(value, torch.Tensor):
        return KernelCall(key, _scalars(0.0, *rest), value) if value.numel() == 1 else None
    return KernelCall(key, _scalars(value, *rest))


def _plain(key: str) -> Callable[..., KernelCall]:
    return lambda **_: KernelCall(key)


def _gelu_call(approximate: str) -> KernelCall:
    return KernelCall("gelu_tanh" if approximate == "tanh" else "gelu")


# ----- swish at any beta ---------------------------------------------------------------------------------------------
# softplus_backward(g, x, beta, threshold) is g * sigmoid(beta x) (g itself above the threshold, where the sigmoid is
# 1 in float64), so softplus_backward(x, x, beta, 40) is swish_beta(x) in one pass, for every beta.
# silu_backward(g, u) is g * silu'(u), and d/dx swish_beta(x) = silu'(beta x).

_SWISH_THRESHOLD = 40.0  # e^-40 < 2^-53


def _beta_value(beta: Any) -> float | None:
    """A Python float for aten's scalar argument. A trainable one-element beta on the CPU is read from memory (on
    the CPU that is a load, not a device synchronisation); anywhere else a tensor beta takes the expression."""
    if not isinstance(beta, torch.Tensor):
        return beta
    if beta.numel() != 1 or beta.device.type != "cpu" or transformed(beta):
        return None
    return float(beta.detach())


def _swish_into(b: torch.Tensor, beta: float, out: torch.Tensor | None = None) -> torch.Tensor:
    if beta == 1.0:
        return F.silu(b) if out is None else torch.ops.aten.silu.out(b, out=out)
    if out is None:
        return torch.ops.aten.softplus_backward(b, b, beta, _SWISH_THRESHOLD)
    return torch.ops.aten.softplus_backward.grad_input(b, b, beta, _SWISH_THRESHOLD, grad_input=out)


def _scaled(b: torch.Tensor, beta: float, own: bool = False) -> torch.Tensor:
    """beta * b in a fresh buffer (in ``b``'s own where ``own``: a copy the caller made); for beta > 1 clamped to
    +-1e4 (silu' is exactly 0 and 1 beyond, and beta b could overflow to inf, which silu_backward turns into NaN)."""
    u = b.mul_(beta) if own else torch.mul(b, beta)
    return u.clamp_(-1e4, 1e4) if beta > 1.0 else u


def _swish_grad(grad: torch.Tensor, b: torch.Tensor, beta: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """grad * silu'(beta b), into ``out`` (or the scaled buffer)."""
    if beta == 1.0:
        if out is None:
            return torch.ops.aten.silu_backward(grad, b)
        return torch.ops.aten.silu_backward.grad_input(grad, b, grad_input=out)
    u = _scaled(b, beta)
    return torch.ops.aten.silu_backward.grad_input(grad, u, grad_input=u if out is None else out)


def _swish_forward(x, params):
    beta = _beta_value(params["beta"])
    return None if beta is None else _swish_into(x, beta)


def _swish_backward(x, grad, params, needs_x, needs_params):
    """Half types: beta x is formed in float32 (its rounding to the half type would be a second rounding), and
    silu_backward of a half gradient and a float32 u computes in float32; the result is rounded once."""
    beta = _beta_value(params["beta"])
    if beta is None:
        return None
    half = x.dtype in HALF_TYPES
    if half:
        x = x.float()
    if not needs_params.get("beta"):
        if not half:
            return _swish_grad(grad, x, beta), {}
        u = _scaled(x, beta, own=True)  # x is the float32 copy made above
        return torch.ops.aten.silu_backward.grad_input(grad, u, grad_input=u).to(grad.dtype), {}
    u = _scaled(x, beta)
    grad_x = torch.ops.aten.silu_backward(grad, u) if needs_x else None
    # d/dbeta = sum(grad x^2 sigmoid'(beta x)), formed in place in u's buffer and ended with a dot product.
    u = torch.ops.aten.sigmoid_backward.grad_input(grad, torch.sigmoid_(u), grad_input=u).mul_(x)
    d = torch.dot(u.reshape(-1), x.reshape(-1)) if x.is_contiguous() else (u * x).sum()
    weight = params["beta"]
    return (None if grad_x is None else grad_x.to(grad.dtype)), {"beta": d.reshape(weight.shape).to(weight.dtype)}


def _swish_sigmoids(x, beta):
    """u = beta x, sigmoid(u) and sigmoid(u) sigmoid(-u) = e / (1 + e)^2 with e = exp(-|u|): one exp, one division,
    each accurate in both tails (sigmoid(-u) as 1 - sigmoid(u) loses all its digits once sigmoid(u) rounds to 1).
    The clamp keeps beta x = +-inf (|x| near the float32 maximum) from giving inf * 0 below; the sigmoids are exactly
    0 and 1 beyond 1e4. Forward and derivatives share it, so a loop forming both (a gated backward) computes one
    exp."""
    u = (beta * x).clamp(-1e4, 1e4)
    e = torch.exp(-u.abs())
    r = torch.reciprocal(1.0 + e)
    er = e * r
    return u, torch.where(u >= 0, r, er), er * r


def _swish_fused_forward(x, beta):
    return x * _swish_sigmoids(x, beta)[1]


def _swish_fused_derivative(x, beta):
    u, s, st = _swish_sigmoids(x, beta)
    return s + u * st  # d/dx x sigmoid(beta x) = s + beta x s (1 - s)


def _swish_fused_beta_derivative(x, beta):
    _, _, st = _swish_sigmoids(x, beta)
    return x * (x * st)  # x * (x * st): no x^2 overflow where st = 0


_swish_fused = Fused(_swish_fused_forward, _swish_fused_derivative, {"beta": _swish_fused_beta_derivative})


def _gelu_fused_derivative(x, approximate):
    if approximate == "tanh":
        t = torch.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x))
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEFF * x * x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    return 0.5 * (1.0 + torch.erf(x / SQRT_2)) + x * (INV_SQRT_2PI * torch.exp(-0.5 * x * x))


_gelu_fused = Fused(lambda x, approximate: F.gelu(x, approximate=approximate), _gelu_fused_derivative)


# ----- hardsigmoid, softsign, squared ReLU -----------------------------------------------------------


def _hardsigmoid_forward(x, params):
    return F.hardsigmoid(x)


def _hardsigmoid_backward(x, grad, params, needs_x, needs_params):
    # aten's float64 kernel uses 1/6 rounded to float32; float64 takes the expression
    return None if x.dtype == torch.float64 else (torch.ops.aten.hardsigmoid_backward(grad, x), {})


def _softsign_forward(x, params):
    t = x.abs().add_(1.0)
    return torch.div(x, t, out=t)


def _softsign_backward(x, grad, params, needs_x, needs_params):
    t = x.abs().add_(1.0)
    return torch.div(grad, t.mul_(t), out=t), {}


def _squared_relu_forward(x, params):
    t = torch.relu(x)
    return t.mul_(t)


def _squared_relu_backward(x, grad, params, needs_x, needs_params):
    # addcmul from a broadcast 0-d zero: 2 relu(x) grad in one pass, rounded once
    return torch.addcmul(x.new_zeros(()), torch.relu(x), grad, value=2.0), {}


def _squared_relu_fused_forward(x):
    r = torch.relu(x)
    return r * r


def _squared_relu_composed(x, params):
    # autograd keeps r (relu's result, both of mul's operands): one tensor; grad r + grad r is 2 grad r exactly
    r = torch.relu(x)
    return r * r


_squared_relu_fused = Fused(_squared_relu_fused_forward, lambda x: 2.0 * torch.relu(x))


# ----- gated: value half a, gate half b; backward fills both halves of one [..., 2H] buffer --------------------------


def _gated(gate: Callable[..., torch.Tensor | None], gate_grad: Callable[..., torch.Tensor | None]
           ) -> tuple[Forward, Backward]:
    """Forward ``a * gate(b)``; backward ``da = grad gate(b)``, ``db = gate'(b) (grad a)``. ``gate(b, params, out)``
    and ``gate_grad(g, b, params, out)`` write into ``out`` when given."""
    def forward(x, params):
        a, b = split_halves(x, "gated")
        y = gate(b, params, None)
        return None if y is None else y.mul_(a)

    def backward(x, grad, params, needs_x, needs_params):
        a, b = split_halves(x, "gated")
        dx = torch.empty_like(x)
        da, db = split_halves(dx, "gated")
        if gate(b, params, da) is None:
            return None
        da.mul_(grad)
        torch.mul(grad, a, out=db)
        return (dx, {}) if gate_grad(db, b, params, db) is not None else None

    return forward, backward


def _relu_gate(b, params, out):
    return torch.relu(b) if out is None else torch.clamp_min(b, 0.0, out=out)


def _relu_gate_grad(g, b, params, out):
    return torch.ops.aten.threshold_backward.grad_input(g, b, 0.0, grad_input=out)


def _swish_gate(b, params, out):
    return _swish_into(b, params["beta"], out)


def _swish_gate_grad(g, b, params, out):
    return _swish_grad(g, b, params["beta"], out)


def _gelu_gate(b, params, out):
    return F.gelu(b, approximate=params["approximate"]) if out is None else torch.ops.aten.gelu.out(
        b, approximate=params["approximate"], out=out)


def _gelu_gate_grad(g, b, params, out):
    return torch.ops.aten.gelu_backward.grad_input(g, b, approximate=params["approximate"], grad_input=out)


_reglu = _gated(_relu_gate, _relu_gate_grad)
_swiglu = _gated(_swish_gate, _swish_gate_grad)
_geglu = _gated(_gelu_gate, _gelu_gate_grad)


def _reglu_composed(x, params):
    """a relu(b) as threshold_backward(a b, b, 0): a b where b > 0, else 0. Autograd keeps a and b (views of x) and
    the detached b: the input's storage only. The gate is detached because relu's own derivative contributes
    nothing (its mask is constant almost everywhere); backward is grad [b > 0] times b and times a, bit for bit
    the aten path's. At a = +-inf with b <= 0 it gives the limit, 0."""
    a, b = x.chunk(2, dim=-1)
    return torch.ops.aten.threshold_backward(a * b, b.detach(), 0.0)


IMPLEMENTATIONS: dict[ActivationSpec, Implementation] = {
    # classic
    classic.sigmoid: Implementation(triton=_plain("sigmoid")),
    classic.tanh: Implementation(triton=_plain("tanh")),
    classic.softsign: Implementation(_softsign_forward, _softsign_backward, _plain("softsign"),
                                     closest=lambda x: F.softsign(x), compiled="softsign"),
    classic.log_sigmoid: Implementation(triton=_plain("log_sigmoid")),
    classic.identity: Implementation(triton=_plain("identity")),
    # rectifiers
    rectifiers.relu: Implementation(triton=_plain("relu")),
    rectifiers.leaky_relu: Implementation(
        triton=lambda negative_slope: KernelCall("leaky_relu", _scalars(negative_slope))),
    rectifiers.prelu: Implementation(triton=lambda num_parameters, init: _slot("leaky_relu", init)),
    rectifiers.rrelu: Implementation(
        triton=lambda lower, upper: KernelCall("leaky_relu", _scalars((lower + upper) / 2))),
    rectifiers.threshold_relu: Implementation(
        triton=lambda threshold: KernelCall("threshold_relu", _scalars(threshold))),
    rectifiers.relu6: Implementation(triton=_plain("relu6")),
    rectifiers.hardsigmoid: Implementation(_hardsigmoid_forward, _hardsigmoid_backward, _plain("hardsigmoid"),
                                           closest=lambda x: F.hardsigmoid(x), half_as_is=True,
                                           compiled="hardsigmoid"),
    rectifiers.hardswish: Implementation(triton=_plain("hardswish")),
    rectifiers.squared_relu: Implementation(_squared_relu_forward, _squared_relu_backward, _plain("squared_relu"),
                                            closest=lambda x: F.relu(x), half_as_is=True,
                                            fused=_squared_relu_fused, composed=_squared_relu_composed,
                                            compiled="squared_relu"),
    # exponential
    exponential.elu: Implementation(triton=lambda alpha: KernelCall("elu", _scalars(alpha))),
    exponential.celu: Implementation(triton=lambda alpha: KernelCall("celu", _scalars(alpha))),
    exponential.selu: Implementation(triton=_plain("selu")),
    exponential.softplus: Implementation(
        triton=lambda beta, threshold: KernelCall("softplus", _scalars(beta, threshold))),
    # smooth
    smooth.swish: Implementation(_swish_forward, _swish_backward, lambda beta: _slot("swish", beta),
                                 closest=lambda x, beta: F.silu(x), half_as_is=True, fused=_swish_fused,
                                 fuse_forward=False, compiled="swish"),
    smooth.gelu: Implementation(triton=_gelu_call),
    smooth.mish: Implementation(triton=_plain("mish")),
    # gated: the Triton call describes the gate applied to the second half
    gated.glu: Implementation(triton=_plain("sigmoid")),
    gated.reglu: Implementation(_reglu[0], _reglu[1], _plain("relu"), closest=lambda x: F.glu(x), half_as_is=True,
                                composed=_reglu_composed),
    gated.geglu: Implementation(_geglu[0], _geglu[1], _gelu_call, closest=lambda x, approximate: F.glu(x),
                                fused=_gelu_fused, compiled="geglu"),
    gated.swiglu: Implementation(_swiglu[0], _swiglu[1], lambda beta: KernelCall("swish", _scalars(beta)),
                                 closest=lambda x, beta: F.glu(x), fused=_swish_fused,
                                 compiled="swiglu"),
}

# Built-ins with no entry, and why (the completeness test reads this).
NOT_IMPLEMENTED = {
    "softmax": "normalizing: PyTorch's F.softmax is the implementation; no elementwise kernel applies",
}

_NONE = Implementation()


def implementation(spec: ActivationSpec) -> Implementation:
    """The entry for ``spec``; an empty one for activations without (their expression runs)."""
    return IMPLEMENTATIONS.get(spec, _NONE)


def kernel_call(spec: ActivationSpec, params: dict[str, Any]) -> KernelCall | None:
    """The Triton call for ``spec`` with validated ``params``, or ``None`` where no kernel covers it."""
    make = implementation(spec).triton
    return None if make is None else make(**params)
