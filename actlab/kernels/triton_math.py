"""Triton device functions: each catalogue activation's forward, derivative and (where trainable) parameter
derivative, in float32, in the stable forms of the catalogue's PyTorch definitions.

Every function takes ``(x, p0, p1)``: the input block and the activation's scalar parameters in the order of
:mod:`actlab.kernels.calls` (unused slots are ignored). Only core ``triton.language`` is used (no libdevice), so
the same code runs compiled on a GPU and under ``TRITON_INTERPRET=1`` on a CPU, where the tests check it
against the float64 references. ``expm1``, ``log1p``, ``tanh`` and ``erfc`` are built here from ``exp`` and
``log`` without cancellation:

- expm1 and log1p: Kahan's corrections, (e^x - 1) x / log(e^x) and log(1 + x) x / ((1 + x) - 1);
- tanh(|x|) = -m / (2 + m) with m = expm1(-2|x|);
- erfc(z), z >= 0: the Chebyshev fit of Press et al., Numerical Recipes 6.2 (relative error below 1.2e-7).

Importing this module imports triton; :mod:`actlab.kernels.triton_kernels` does so only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

# Globals read inside jit functions must be constexpr.
INF = tl.constexpr(float("inf"))

# ----- stable building blocks ----------------------------------------------------------------------------


@triton.jit
def gate_mul(a, g):
    """a * g, with a * 0 = 0 for infinite a (the catalogue's rule: swish(-inf) = 0, not NaN)."""
    return tl.where((g == 0.0) & (a == a), 0.0, a * g)


@triton.jit
def expm1(x):
    u = tl.exp(x)
    um1 = u - 1.0
    kahan = um1 * x / tl.log(u)
    return tl.where(u == 1.0, x, tl.where(um1 == -1.0, -1.0, tl.where(x > 80.0, u, kahan)))


@triton.jit
def log1p(x):
    """For x >= -1 and finite (the callers pass exp(-|x|) in [0, 1])."""
    u = 1.0 + x
    return tl.where(u == 1.0, x, tl.log(u) * x / (u - 1.0))


@triton.jit
def softplus_unit(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^{-|x|})."""
    return tl.where(x > 0.0, x, 0.0) + log1p(tl.exp(-tl.abs(x)))


@triton.jit
def tanh(x):
    m = expm1(-2.0 * tl.abs(x))
    t = -m / (2.0 + m)
    return tl.where(x < 0.0, -t, t)


@triton.jit
def sech2(x):
    e = tl.exp(-2.0 * tl.abs(x))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


@triton.jit
def erfc_nonneg(z):
    t = 1.0 / (1.0 + 0.5 * z)
    p = 0.17087277
    p = -0.82215223 + t * p
    p = 1.48851587 + t * p
    p = -1.13520398 + t * p
    p = 0.27886807 + t * p
    p = -0.18628806 + t * p
    p = 0.09678418 + t * p
    p = 0.37409196 + t * p
    p = 1.00002368 + t * p
    p = -1.26551223 + t * p
    return t * tl.exp(-z * z + p)


@triton.jit
def normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2, the small tail computed directly on either side."""
    z = x * 0.7071067811865476
    tail = 0.5 * erfc_nonneg(tl.abs(z))
    return tl.where(x < 0.0, tail, 1.0 - tail)


@triton.jit
def normal_pdf(x):
    return 0.3989422804014327 * tl.exp(-0.5 * x * x)


@triton.jit
def keep_nan(x, y):
    """y, except NaN where x is NaN (for branches that compare x and would drop its NaN)."""
    return tl.where(x != x, x, y)


# ----- classic ---------------------------------------------------------------------------------------------


@triton.jit
def sigmoid_fwd(x, p0, p1):
    return tl.sigmoid(x)


@triton.jit
def sigmoid_der(x, p0, p1):
    return tl.sigmoid(x) * tl.sigmoid(-x)


@triton.jit
def tanh_fwd(x, p0, p1):
    return tanh(x)


@triton.jit
def tanh_der(x, p0, p1):
    return sech2(x)


@triton.jit
def softsign_fwd(x, p0, p1):
    ax = tl.abs(x)
    return tl.where(ax == INF, tl.where(x > 0.0, 1.0, -1.0), x / (1.0 + ax))


@triton.jit
def softsign_der(x, p0, p1):
    d = 1.0 + tl.abs(x)
    return 1.0 / (d * d)


@triton.jit
def log_sigmoid_fwd(x, p0, p1):
    return tl.where(x < 0.0, x, 0.0) - log1p(tl.exp(-tl.abs(x)))


@triton.jit
def log_sigmoid_der(x, p0, p1):
    return tl.sigmoid(-x)


@triton.jit
def identity_fwd(x, p0, p1):
    return x


@triton.jit
def identity_der(x, p0, p1):
    return tl.full(x.shape, 1.0, tl.float32)


# ----- rectifiers --------------------------------------------------------------------------------------------


@triton.jit
def relu_fwd(x, p0, p1):
    return tl.where(x <= 0.0, 0.0, x)


@triton.jit
def relu_der(x, p0, p1):
    return tl.where(x > 0.0, 1.0, 0.0)


@triton.jit
def leaky_relu_fwd(x, p0, p1):
    """p0: the negative slope (leaky_relu, rrelu's mean slope in eval, prelu's scalar weight)."""
    return tl.where(x > 0.0, x, gate_mul(x, p0 + tl.zeros(x.shape, tl.float32)))


@triton.jit
def leaky_relu_der(x, p0, p1):
    return tl.where(x > 0.0, 1.0, p0 + tl.zeros(x.shape, tl.float32))


@triton.jit
def leaky_relu_slope_der(x, p0, p1):
    return tl.where(x > 0.0, 0.0, x)


@triton.jit
def threshold_relu_fwd(x, p0, p1):
    return tl.where(x <= p0, 0.0, x)


@triton.jit
def threshold_relu_der(x, p0, p1):
    return tl.where(x > p0, 1.0, 0.0)


@triton.jit
def relu6_fwd(x, p0, p1):
    return tl.where(x <= 0.0, 0.0, tl.where(x >= 6.0, 6.0, x))


@triton.jit
def relu6_der(x, p0, p1):
    return tl.where((x > 0.0) & (x < 6.0), 1.0, 0.0)


@triton.jit
def hardsigmoid_fwd(x, p0, p1):
    y = x / 6.0 + 0.5
    return tl.where(y <= 0.0, 0.0, tl.where(y >= 1.0, 1.0, y))


@triton.jit
def hardsigmoid_der(x, p0, p1):
    return tl.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)


@triton.jit
def hardswish_fwd(x, p0, p1):
    r = x + 3.0
    r6 = tl.where(r <= 0.0, 0.0, tl.where(r >= 6.0, 6.0, r))
    return gate_mul(x, r6 / 6.0)


@triton.jit
def hardswish_der(x, p0, p1):
    return tl.where(x <= -3.0, 0.0, tl.where(x < 3.0, x / 3.0 + 0.5, 1.0))


@triton.jit
def squared_relu_fwd(x, p0, p1):
    r = tl.where(x <= 0.0, 0.0, x)
    return r * r


@triton.jit
def squared_relu_der(x, p0, p1):
    return 2.0 * tl.where(x <= 0.0, 0.0, x)


# ----- exponential family ---------------------------------------------------------------------------------


@triton.jit
def elu_fwd(x, p0, p1):
    return tl.where(x > 0.0, x, keep_nan(x, p0 * expm1(tl.minimum(x, 0.0))))


@triton.jit
def elu_der(x, p0, p1):
    return tl.where(x > 0.0, 1.0, keep_nan(x, p0 * tl.exp(tl.minimum(x, 0.0))))


@triton.jit
def celu_fwd(x, p0, p1):
    return tl.where(x > 0.0, x, keep_nan(x, p0 * expm1(tl.minimum(x, 0.0) / p0)))


@triton.jit
def celu_der(x, p0, p1):
    return tl.where(x > 0.0, 1.0, keep_nan(x, tl.exp(tl.minimum(x, 0.0) / p0)))


SELU_ALPHA = tl.constexpr(1.6732632423543772848170429916717)
SELU_SCALE = tl.constexpr(1.0507009873554804934193349852946)


@triton.jit
def selu_fwd(x, p0, p1):
    return SELU_SCALE * tl.where(x > 0.0, x, keep_nan(x, SELU_ALPHA * expm1(tl.minimum(x, 0.0))))


@triton.jit
def selu_der(x, p0, p1):
    return SELU_SCALE * tl.where(x > 0.0, 1.0, keep_nan(x, SELU_ALPHA * tl.exp(tl.minimum(x, 0.0))))


@triton.jit
def softplus_fwd(x, p0, p1):
    """p0: beta, p1: threshold (PyTorch's semantics: x itself where beta x > threshold)."""
    bx = p0 * x
    return tl.where(bx > p1, x, softplus_unit(bx) / p0)


@triton.jit
def softplus_der(x, p0, p1):
    bx = p0 * x
    return tl.where(bx > p1, 1.0, tl.sigmoid(bx))


# ----- smooth self-gated units --------------------------------------------------------------------------------


@triton.jit
def _scaled(x, beta):
    """beta x, with 0 (not 0 * inf = NaN) at beta = 0."""
    return tl.where(beta == 0.0, 0.0, beta * x)


@triton.jit
def swish_fwd(x, p0, p1):
    """p0: beta."""
    return gate_mul(x, tl.sigmoid(_scaled(x, p0)))


@triton.jit
def swish_der(x, p0, p1):
    t = _scaled(x, p0)
    s = tl.sigmoid(t)
    return s + gate_mul(t, s * tl.sigmoid(-t))


@triton.jit
def swish_beta_der(x, p0, p1):
    t = _scaled(x, p0)
    return gate_mul(x, gate_mul(x, tl.sigmoid(t) * tl.sigmoid(-t)))


@triton.jit
def _mish_gate(x):
    """tanh(softplus(x)) = q / (q + 2) with q = n (n + 2), n = e^x: no cancellation on either side. Also returns
    1 - the gate, 2 / (q + 2), computed directly (it goes to 0 as 2 e^{-2x}, which the derivative needs)."""
    n = tl.exp(x)
    q = n * (n + 2.0)
    return tl.where(x > 20.0, 1.0, q / (q + 2.0)), 2.0 / (q + 2.0)


@triton.jit
def mish_fwd(x, p0, p1):
    t, _ = _mish_gate(x)
    return gate_mul(x, t)


@triton.jit
def mish_der(x, p0, p1):
    t, one_minus_t = _mish_gate(x)
    return t + gate_mul(x, one_minus_t * (1.0 + t) * tl.sigmoid(x))


@triton.jit
def gelu_fwd(x, p0, p1):
    return gate_mul(x, normal_cdf(x))


@triton.jit
def gelu_der(x, p0, p1):
    return normal_cdf(x) + gate_mul(x, normal_pdf(x))


@triton.jit
def _gelu_tanh_u(x):
    return 0.7978845608028654 * (x + 0.044715 * x * x * x)


@triton.jit
def gelu_tanh_fwd(x, p0, p1):
    return gate_mul(x, tl.sigmoid(2.0 * _gelu_tanh_u(x)))


@triton.jit
def gelu_tanh_der(x, p0, p1):
    u = _gelu_tanh_u(x)
    du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x)
    s = tl.sigmoid(2.0 * u)
    return s + gate_mul(x * du, 2.0 * s * tl.sigmoid(-2.0 * u))


# key -> (forward, derivative, derivative with respect to the parameter in slot p0 or None).
FUNCTIONS = {
    "sigmoid": (sigmoid_fwd, sigmoid_der, None),
    "tanh": (tanh_fwd, tanh_der, None),
    "softsign": (softsign_fwd, softsign_der, None),
    "log_sigmoid": (log_sigmoid_fwd, log_sigmoid_der, None),
    "identity": (identity_fwd, identity_der, None),
    "relu": (relu_fwd, relu_der, None),
    "leaky_relu": (leaky_relu_fwd, leaky_relu_der, leaky_relu_slope_der),
    "threshold_relu": (threshold_relu_fwd, threshold_relu_der, None),
    "relu6": (relu6_fwd, relu6_der, None),
    "hardsigmoid": (hardsigmoid_fwd, hardsigmoid_der, None),
    "hardswish": (hardswish_fwd, hardswish_der, None),
    "squared_relu": (squared_relu_fwd, squared_relu_der, None),
    "elu": (elu_fwd, elu_der, None),
    "celu": (celu_fwd, celu_der, None),
    "selu": (selu_fwd, selu_der, None),
    "softplus": (softplus_fwd, softplus_der, None),
    "swish": (swish_fwd, swish_der, swish_beta_der),
    "mish": (mish_fwd, mish_der, None),
    "gelu": (gelu_fwd, gelu_der, None),
    "gelu_tanh": (gelu_tanh_fwd, gelu_tanh_der, None),
}
