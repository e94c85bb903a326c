"""Piecewise-linear rectifiers: ReLU and its leaky, parametric, randomized, thresholded, capped, hard and
squared relatives.

Derivatives at the kinks follow PyTorch's autograd: relu'(0) = 0, leaky_relu'(0) = negative_slope,
relu6'(0) = relu6'(6) = 0, hardsigmoid'(+-3) = 0, hardswish'(-3) = 0 and hardswish'(3) = 1.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from actlab.catalog.definitions import papers
from actlab.catalog.numerics import gate_mul, mpmath, np_gate_mul
from actlab.catalog.spec import ActivationSpec, Param
from actlab.errors import InvalidParameterError


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _np_leaky(x, slope):
    x = _f64(x)
    return np.where(x > 0, x, np_gate_mul(x, np.full_like(x, slope)))


def _np_leaky_derivative(x, slope):
    return np.where(_f64(x) > 0, 1.0, slope)


def _torch_leaky_derivative(x, slope):
    # slope may be a tensor (prelu weight broadcast on the channel dim, or a trainable scalar).
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x > 0, one, slope * torch.ones_like(x))


relu = ActivationSpec(
    name="relu",
    aliases=("rectifier",),
    summary="max(0, x): cheap, non-saturating for x > 0, zero gradient for x < 0 (units can die).",
    formula=r"\mathrm{ReLU}(x) = \max(0, x)",
    references=(papers.NAIR_HINTON_2010, papers.GLOROT_2011),
    reference=lambda x: np.maximum(_f64(x), 0.0),
    derivative=lambda x: np.where(_f64(x) > 0, 1.0, 0.0),
    exact=lambda x: max(x, mpmath.mpf(0)),
    torch_forward=torch.relu,
    torch_derivative=lambda x: (x > 0).to(x.dtype),
    native=torch.relu,
    native_inplace=torch.relu_,
    breakpoints=lambda: (0.0,),
    claims=dict(monotonic=True, smooth=False, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=None, gain=2.0**0.5),
)

leaky_relu = ActivationSpec(
    name="leaky_relu",
    aliases=("lrelu", "leaky"),
    summary="ReLU with a small fixed slope for x < 0, so negative units still pass gradient.",
    formula=r"\mathrm{LeakyReLU}(x) = \begin{cases} x & x > 0 \\ a\,x & x \le 0 \end{cases} = \max(0,x) + a\min(0,x)",
    references=(papers.MAAS_2013,),
    params={"negative_slope": Param(0.01, low=0.0, high=1.0, doc="slope a for x <= 0")},
    reference=lambda x, negative_slope: _np_leaky(x, negative_slope),
    derivative=lambda x, negative_slope: _np_leaky_derivative(x, negative_slope),
    exact=lambda x, negative_slope: x if x > 0 else negative_slope * x,
    torch_forward=lambda x, negative_slope: F.leaky_relu(x, negative_slope),
    torch_derivative=lambda x, negative_slope: _torch_leaky_derivative(x, negative_slope),
    native=lambda x, negative_slope: F.leaky_relu(x, negative_slope),
    native_inplace=lambda x, negative_slope: F.leaky_relu(x, negative_slope, inplace=True),
    breakpoints=lambda negative_slope: (0.0,),
    claims=dict(monotonic=True, smooth=False, bounded_below=False, bounded_above=False, value_at_0=0.0,
                slope_at_0=None),
)


def _prelu_forward(x, num_parameters, init):
    if isinstance(init, torch.Tensor):  # the learned slopes, on every module call: the cheap test first
        return F.prelu(x, init if init.dtype == x.dtype else init.to(x.dtype))
    if isinstance(init, numbers.Real):
        return F.prelu(x, torch.full((1,), init, dtype=x.dtype, device=x.device))
    return F.prelu(x, init.to(x.dtype))  # a traced value


def _prelu_derivative(x, num_parameters, init):
    return _torch_leaky_derivative(x, _channel_view(init, x))


def _channel_view(weight, x):
    """Broadcast a per-channel weight of shape (C,) over dim 1 of x (dim 0 of a 1-D input), as F.prelu does."""
    if not isinstance(weight, torch.Tensor) or weight.numel() == 1:
        return weight.reshape(()) if isinstance(weight, torch.Tensor) else weight
    shape = [1] * x.dim()
    shape[1 if x.dim() >= 2 else 0] = weight.numel()
    return weight.reshape(shape)


prelu = ActivationSpec(
    name="prelu",
    summary="Leaky ReLU whose negative slope is learned, one per channel (dim 1) or shared.",
    formula=r"\mathrm{PReLU}(x) = \begin{cases} x & x > 0 \\ a_c\,x & x \le 0 \end{cases}, \quad a_c \text{ learned}",
    references=(papers.HE_2015,),
    params={
        "num_parameters": Param(1, low=1, doc="number of learned slopes: 1 or the number of channels (dim 1)"),
        "init": Param(0.25, trainable_allowed=True, doc="initial slope"),
    },
    reference=lambda x, num_parameters, init: _np_leaky(x, init),
    derivative=lambda x, num_parameters, init: _np_leaky_derivative(x, init),
    exact=lambda x, num_parameters, init: x if x > 0 else init * x,
    torch_forward=_prelu_forward,
    torch_derivative=_prelu_derivative,
    torch_param_derivatives={"init": lambda x, num_parameters, init: torch.where(x > 0, torch.zeros_like(x), x)},
    native=_prelu_forward,
    weight=("init", "num_parameters"),
    native_covers=lambda num_parameters, init: True,  # F.prelu takes the slope tensor and its gradient
    breakpoints=lambda num_parameters, init: (0.0,),
    claims=dict(monotonic=True, smooth=False, bounded_below=False, value_at_0=0.0, slope_at_0=None),
)


def _check_rrelu(p):
    if p["lower"] > p["upper"]:
        raise InvalidParameterError(
            "rrelu", "lower", p["lower"], f"lower must be <= upper (upper = {p['upper']!r})"
        )


def _rrelu_mean(lower, upper):
    return (lower + upper) / 2.0


def rrelu_train(x: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    """RReLU in training mode: a fresh slope from U(lower, upper) for every negative element."""
    return F.rrelu(x, lower, upper, training=True)


rrelu = ActivationSpec(
    name="rrelu",
    aliases=("randomized_leaky_relu",),
    summary="Leaky ReLU with a slope drawn from U(lower, upper) per element in training; the mean slope in eval.",
    formula=(r"\mathrm{RReLU}(x) = \begin{cases} x & x \ge 0 \\ a\,x & x < 0 \end{cases},\ "
             r"a \sim U(l, u) \text{ (train)},\ a = \tfrac{l+u}{2} \text{ (eval)}"),
    references=(papers.XU_2015,),
    params={
        "lower": Param(1.0 / 8.0, low=0.0, high=1.0, doc="lower bound of the random slope"),
        "upper": Param(1.0 / 3.0, low=0.0, high=1.0, doc="upper bound of the random slope"),
    },
    check=_check_rrelu,
    train_forward=rrelu_train,
    reference=lambda x, lower, upper: _np_leaky(x, _rrelu_mean(lower, upper)),
    derivative=lambda x, lower, upper: _np_leaky_derivative(x, _rrelu_mean(lower, upper)),
    exact=lambda x, lower, upper: x if x > 0 else (lower + upper) / 2 * x,
    torch_forward=lambda x, lower, upper: F.leaky_relu(x, _rrelu_mean(lower, upper)),
    torch_derivative=lambda x, lower, upper: _torch_leaky_derivative(x, _rrelu_mean(lower, upper)),
    native=lambda x, lower, upper: F.leaky_relu(x, _rrelu_mean(lower, upper)),
    native_inplace=lambda x, lower, upper: F.leaky_relu(x, _rrelu_mean(lower, upper), inplace=True),
    breakpoints=lambda lower, upper: (0.0,),
    claims=dict(monotonic=True, smooth=False, bounded_below=False, value_at_0=0.0, slope_at_0=None),
)


threshold_relu = ActivationSpec(
    name="threshold_relu",
    aliases=("thresholded_relu", "trelu"),
    summary="Passes x only above a threshold, else 0 (discontinuous at the threshold when it is not 0).",
    formula=r"\mathrm{TReLU}(x) = \begin{cases} x & x > \theta \\ 0 & x \le \theta \end{cases}",
    references=(papers.KONDA_2014,),
    params={"threshold": Param(1.0, doc="theta: inputs at or below it give 0")},
    reference=lambda x, threshold: np.where(_f64(x) > threshold, _f64(x), np.where(np.isnan(_f64(x)), np.nan, 0.0)),
    derivative=lambda x, threshold: np.where(_f64(x) > threshold, 1.0, 0.0),
    exact=lambda x, threshold: x if x > threshold else mpmath.mpf(0),
    torch_forward=lambda x, threshold: torch.where(x <= threshold, 0.0, x),  # exportable; NaN stays NaN
    torch_derivative=lambda x, threshold: (x > threshold).to(x.dtype),
    native=lambda x, threshold: F.threshold(x, threshold, 0.0),
    native_inplace=lambda x, threshold: F.threshold(x, threshold, 0.0, inplace=True),
    # Eager only: the legacy ONNX exporter has no symbolic for F.threshold with a threshold other than 0.
    native_traced=False,
    breakpoints=lambda threshold: (threshold,),
    claims=dict(monotonic=True, continuous=False, smooth=False, bounded_below=True, bounded_above=False,
                value_at_0=0.0, slope_at_0=0.0),
)

relu6 = ActivationSpec(
    name="relu6",
    summary="ReLU capped at 6; bounded output that survives low-precision arithmetic (MobileNet).",
    formula=r"\mathrm{ReLU6}(x) = \min(\max(0, x), 6)",
    references=(papers.KRIZHEVSKY_2010,),
    reference=lambda x: np.clip(_f64(x), 0.0, 6.0),
    derivative=lambda x: np.where((_f64(x) > 0) & (_f64(x) < 6), 1.0, 0.0),
    exact=lambda x: min(max(x, mpmath.mpf(0)), mpmath.mpf(6)),
    torch_forward=F.relu6,
    torch_derivative=lambda x: ((x > 0) & (x < 6)).to(x.dtype),
    native=F.relu6,
    native_inplace=lambda x: F.relu6(x, inplace=True),
    breakpoints=lambda: (0.0, 6.0),
    claims=dict(monotonic=True, smooth=False, bounded_below=True, bounded_above=True, value_at_0=0.0,
                slope_at_0=None),
)

hardsigmoid = ActivationSpec(
    name="hardsigmoid",
    aliases=("hard_sigmoid",),
    summary="Piecewise-linear sigmoid, relu6(x + 3) / 6 (MobileNetV3 form).",
    formula=r"\mathrm{hardsigmoid}(x) = \frac{\mathrm{ReLU6}(x + 3)}{6}",
    references=(papers.COURBARIAUX_2015, papers.HOWARD_2019),
    reference=lambda x: np.clip(_f64(x) / 6.0 + 0.5, 0.0, 1.0),
    derivative=lambda x: np.where((_f64(x) > -3) & (_f64(x) < 3), 1.0 / 6.0, 0.0),
    exact=lambda x: min(max(x / 6 + mpmath.mpf(1) / 2, mpmath.mpf(0)), mpmath.mpf(1)),
    torch_forward=lambda x: F.relu6(x + 3.0) / 6.0,  # autograd gives 0 at +-3 and an exact 1/6 in float64
    torch_derivative=lambda x: ((x > -3) & (x < 3)).to(x.dtype) / 6.0,
    # Not native: aten's hardsigmoid_backward has no derivative of its own (double backward, hessian and jvp of
    # the gradient fail), and returns 1/6 rounded to float32 for float64 inputs. It runs as actlab's fast path.
    breakpoints=lambda: (-3.0, 3.0),
    claims=dict(monotonic=True, smooth=False, bounded_below=True, bounded_above=True, value_at_0=0.5,
                slope_at_0=1.0 / 6.0),
)


def _np_hardswish(x):
    x = _f64(x)
    return np_gate_mul(x, np.clip(x + 3.0, 0.0, 6.0) / 6.0)


def _hardswish(x):
    return gate_mul(x, torch.clamp(x + 3.0, 0.0, 6.0) / 6.0)


def _hardswish_derivative(x):
    return torch.where(x <= -3, torch.zeros_like(x), torch.where(x < 3, x / 3.0 + 0.5, torch.ones_like(x)))


hardswish = ActivationSpec(
    name="hardswish",
    aliases=("hard_swish", "hard_silu"),
    summary="Piecewise-quadratic swish, x * relu6(x + 3) / 6 (MobileNetV3).",
    formula=r"\mathrm{hardswish}(x) = x\,\frac{\mathrm{ReLU6}(x + 3)}{6}",
    references=(papers.HOWARD_2019,),
    reference=_np_hardswish,
    derivative=lambda x: np.where(_f64(x) <= -3, 0.0, np.where(_f64(x) < 3, _f64(x) / 3.0 + 0.5, 1.0)),
    exact=lambda x: x * min(max(x + 3, mpmath.mpf(0)), mpmath.mpf(6)) / 6,
    torch_forward=_hardswish,
    torch_derivative=_hardswish_derivative,
    # F.hardswish forms x * 6 first: inf above a sixth of the float max, where the answer is finite.
    native=F.hardswish,
    native_inplace=lambda x: F.hardswish(x, inplace=True),
    breakpoints=lambda: (-3.0, 3.0),
    claims=dict(monotonic=False, smooth=False, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=0.5),
)

squared_relu = ActivationSpec(
    name="squared_relu",
    aliases=("relu2", "relu_squared", "relu_sq"),
    summary="ReLU squared (Primer); continuously differentiable, grows quadratically.",
    formula=r"\mathrm{ReLU}^2(x) = \max(0, x)^2",
    references=(papers.SO_2021,),
    reference=lambda x: np.maximum(_f64(x), 0.0) ** 2,
    derivative=lambda x: 2.0 * np.maximum(_f64(x), 0.0),
    exact=lambda x: max(x, mpmath.mpf(0)) ** 2,
    torch_forward=lambda x: torch.relu(x) ** 2,
    torch_derivative=lambda x: 2.0 * torch.relu(x),
    breakpoints=lambda: (0.0,),
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.0,
                slope_at_0=0.0),
)

SPECS = (relu, leaky_relu, prelu, rrelu, threshold_relu, relu6, hardsigmoid, hardswish, squared_relu)
