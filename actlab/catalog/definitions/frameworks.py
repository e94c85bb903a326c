"""The names PyTorch, Keras 3 and JAX give that the other families lack: the shrinkages, hardtanh, threshold, the
sparse and algebraic rectifiers, exponential, and the normalizing log-softmax, softmin and sparsemax.

Where PyTorch has the op it is the implementation (``native``); defaults follow PyTorch where it has the function,
else the framework that defines it (JAX's squareplus b = 4).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from actlab.catalog.numerics import mpmath
from actlab.catalog.spec import ActivationSpec, Param, Reference, ordered

PYTORCH_DOCS = Reference("PyTorch contributors", "torch.nn activation functions (PyTorch documentation)", 2017,
                         "https://pytorch.org/docs/stable/nn.html#non-linear-activations-weighted-sum-nonlinearity")
KERAS_DOCS = Reference("Chollet, F. et al.", "Keras 3 API documentation: layer activation functions", 2023,
                       "https://keras.io/api/layers/activations/")
BARRON_2021 = Reference("Barron, J. T.", "Squareplus: A Softplus-Like Algebraic Rectifier", 2021,
                        "https://arxiv.org/abs/2112.11687")
BLONDEL_2020 = Reference("Blondel, M., Martins, A. F. T. & Niculae, V.", "Learning with Fenchel-Young Losses. JMLR",
                         2020, "https://arxiv.org/abs/1901.02324")
MARTINS_2016 = Reference("Martins, A. F. T. & Astudillo, R. F.",
                         "From Softmax to Sparsemax: A Sparse Model of Attention and Multi-Label Classification. "
                         "ICML", 2016, "https://arxiv.org/abs/1602.02068")
BRIDLE_1990 = Reference("Bridle, J. S.", "Probabilistic Interpretation of Feedforward Classification Network "
                        "Outputs", 1990)


def _f64(x):
    return np.asarray(x, dtype=np.float64)


hardtanh = ActivationSpec(
    name="hardtanh",
    summary="tanh's piecewise-linear stand-in: x clipped to [min_val, max_val].",
    formula=r"\mathrm{hardtanh}(x) = \min(\max(x, a), b)",
    references=(PYTORCH_DOCS, KERAS_DOCS),
    params={"min_val": Param(-1.0, doc="a, the lower clip"), "max_val": Param(1.0, doc="b, the upper clip")},
    check=ordered("hardtanh", "min_val", "max_val"),
    init="xavier",
    expression="Min(Max(x, min_val), max_val)",
    reference=lambda x, min_val, max_val: np.clip(_f64(x), min_val, max_val),
    derivative=lambda x, min_val, max_val: ((_f64(x) > min_val) & (_f64(x) < max_val)).astype(np.float64),
    exact=lambda x, min_val, max_val: min(max(x, mpmath.mpf(min_val)), mpmath.mpf(max_val)),
    torch_forward=lambda x, min_val, max_val: F.hardtanh(x, min_val, max_val),
    torch_derivative=lambda x, min_val, max_val: ((x > min_val) & (x < max_val)).to(x.dtype),
    native=lambda x, min_val, max_val: F.hardtanh(x, min_val, max_val),
    native_inplace=lambda x, min_val, max_val: F.hardtanh(x, min_val, max_val, inplace=True),
    breakpoints=lambda min_val, max_val: (min_val, max_val),
    claims=dict(monotonic=True, smooth=False, bounded_below=True, bounded_above=True, value_at_0=0.0),
)

hardshrink = ActivationSpec(
    name="hardshrink",
    summary="Zero inside [-lambda, lambda], the identity outside (a hard-thresholding operator).",
    formula=r"\mathrm{hardshrink}(x) = \begin{cases} x & |x| > \lambda \\ 0 & \text{otherwise} \end{cases}",
    references=(PYTORCH_DOCS, KERAS_DOCS),
    params={"lambd": Param(0.5, low=0.0, doc="lambda, the half-width of the zero band")},
    reference=lambda x, lambd: np.where(np.abs(_f64(x)) > lambd, _f64(x), np.where(np.isnan(_f64(x)), np.nan, 0.0)),
    derivative=lambda x, lambd: (np.abs(_f64(x)) > lambd).astype(np.float64),
    exact=lambda x, lambd: x if abs(x) > lambd else mpmath.mpf(0),
    torch_forward=lambda x, lambd: F.hardshrink(x, lambd),
    torch_derivative=lambda x, lambd: (x.abs() > lambd).to(x.dtype),
    native=lambda x, lambd: F.hardshrink(x, lambd),
    breakpoints=lambda lambd: (-lambd, lambd),
    claims=dict(continuous=False, smooth=False, bounded_below=False, bounded_above=False, value_at_0=0.0),
)

softshrink = ActivationSpec(
    name="softshrink",
    summary="Soft thresholding: x moved toward 0 by lambda, and 0 inside [-lambda, lambda].",
    formula=r"\mathrm{softshrink}(x) = \mathrm{sign}(x)\max(|x| - \lambda, 0)",
    references=(PYTORCH_DOCS, KERAS_DOCS),
    params={"lambd": Param(0.5, low=0.0, doc="lambda, the shrinkage")},
    reference=lambda x, lambd: np.sign(_f64(x)) * np.maximum(np.abs(_f64(x)) - lambd, 0.0),
    derivative=lambda x, lambd: (np.abs(_f64(x)) > lambd).astype(np.float64),
    exact=lambda x, lambd: (x - lambd if x > lambd else x + lambd if x < -lambd else mpmath.mpf(0)),
    torch_forward=lambda x, lambd: F.softshrink(x, lambd),
    torch_derivative=lambda x, lambd: (x.abs() > lambd).to(x.dtype),
    native=lambda x, lambd: F.softshrink(x, lambd),
    breakpoints=lambda lambd: (-lambd, lambd),
    claims=dict(monotonic=True, continuous=True, smooth=False, value_at_0=0.0),
)


def _tanh_series() -> tuple[float, ...]:
    """Coefficients of x - tanh(x) = sum c_n x^(2n+1), n >= 1, from the Bernoulli numbers (exact fractions)."""
    bern: list[Fraction] = [Fraction(1)]
    for m in range(1, 42):
        bern.append(-sum((math.comb(m + 1, k) * bern[k] for k in range(m)), Fraction(0)) / (m + 1))
    out = []
    for n in range(2, 21):  # tanh's x^(2n-1) coefficient is 2^2n (2^2n - 1) B_2n / (2n)!
        c = Fraction(2 ** (2 * n) * (2 ** (2 * n) - 1)) * bern[2 * n] / math.factorial(2 * n)
        out.append(-float(c))
    return tuple(out)


_TANHSHRINK_SERIES = _tanh_series()


def _np_tanhshrink(x):
    """x - tanh(x); below |x| = 0.3, where the difference cancels, its power series (terms to x^39)."""
    x = _f64(x)
    with np.errstate(all="ignore"):
        direct = x - np.tanh(x)
        small = np.abs(x) < 0.3
        x2 = x * x
        series = np.zeros_like(x)
        for c in reversed(_TANHSHRINK_SERIES):
            series = series * x2 + c
        series = series * x2 * x
    return np.where(small, series, direct)


tanhshrink = ActivationSpec(
    name="tanhshrink",
    summary="x minus tanh(x): zero slope at 0, the identity's slope far out.",
    formula=r"\mathrm{tanhshrink}(x) = x - \tanh(x)",
    references=(PYTORCH_DOCS, KERAS_DOCS),
    expression="x - tanh(x)",
    reference=_np_tanhshrink,
    derivative=lambda x: np.tanh(_f64(x)) ** 2,
    torch_forward=F.tanhshrink,
    torch_derivative=lambda x: torch.tanh(x) ** 2,
    native=F.tanhshrink,
    claims=dict(monotonic=True, smooth=True, value_at_0=0.0, slope_at_0=0.0),
)

threshold = ActivationSpec(
    name="threshold",
    summary="PyTorch's Threshold: x above the threshold, a constant value at or below it.",
    formula=r"\mathrm{threshold}(x) = \begin{cases} x & x > \theta \\ v & x \le \theta \end{cases}",
    references=(PYTORCH_DOCS, KERAS_DOCS),
    params={"threshold": Param(1.0, doc="theta (PyTorch and Keras have no default; 1 as threshold_relu's)"),
            "value": Param(0.0, doc="v, the output at or below theta")},
    reference=lambda x, threshold, value: np.where(_f64(x) > threshold, _f64(x),
                                                   np.where(np.isnan(_f64(x)), np.nan, value)),
    derivative=lambda x, threshold, value: (_f64(x) > threshold).astype(np.float64),
    exact=lambda x, threshold, value: x if x > threshold else mpmath.mpf(value),
    torch_forward=lambda x, threshold, value: torch.where(x <= threshold, value, x),
    torch_derivative=lambda x, threshold, value: (x > threshold).to(x.dtype),
    native=lambda x, threshold, value: F.threshold(x, threshold, value),
    native_inplace=lambda x, threshold, value: F.threshold(x, threshold, value, inplace=True),
    native_traced=False,  # the legacy ONNX exporter has no symbolic for F.threshold off 0
    breakpoints=lambda threshold, value: (threshold,),
    claims=dict(continuous=False, smooth=False),
)


def _hypot(x, b):
    """sqrt(x^2 + b) scaled by max(|x|, sqrt(b)), so x^2 never overflows (torch.hypot has no ONNX export)."""
    r = math.sqrt(b)
    m = x.abs().clamp(min=r)
    return m * torch.sqrt((x / m) ** 2 + (r / m) ** 2)


def _squareplus(x, b):
    h = _hypot(x, b)
    return torch.where(x >= 0, x / 2 + h / 2, b / (2 * (h - x)))  # the second form: no cancellation below 0


def _squareplus_derivative(x, b):
    h = _hypot(x, b)
    return torch.where(x >= 0, (1 + x / h) / 2, b / (2 * h) / (h - x))


def _np_squareplus(x, b):
    x = _f64(x)
    with np.errstate(all="ignore"):
        h = np.hypot(x, math.sqrt(b))
        return np.where(x >= 0, (x + h) / 2, b / (2 * (h - x)))


squareplus = ActivationSpec(
    name="squareplus",
    summary="An algebraic softplus: (x + sqrt(x^2 + b)) / 2, smooth, positive, no exp or log.",
    formula=r"\mathrm{squareplus}(x) = \tfrac{1}{2}\left(x + \sqrt{x^2 + b}\right)",
    references=(BARRON_2021,),
    params={"b": Param(4.0, low=0.0, low_open=True, doc="b > 0, the curvature near 0 (JAX's default 4)")},
    expression="(x + sqrt(x**2 + b)) / 2",
    reference=_np_squareplus,
    derivative=lambda x, b: np.where(_f64(x) >= 0, (1 + _f64(x) / np.hypot(_f64(x), math.sqrt(b))) / 2,
                                     b / (2 * np.hypot(_f64(x), math.sqrt(b))
                                          * (np.hypot(_f64(x), math.sqrt(b)) - _f64(x)))),
    torch_forward=_squareplus,
    torch_derivative=_squareplus_derivative,
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, value_at_0=1.0,
                slope_at_0=0.5),
)

sparse_plus = ActivationSpec(
    name="sparse_plus",
    summary="A piecewise-quadratic softplus: 0 below -1, x above 1, (x + 1)^2 / 4 between.",
    formula=r"\mathrm{sparse\_plus}(x) = \begin{cases} 0 & x \le -1 \\ \tfrac14 (x+1)^2 & -1 < x < 1 \\ x & x \ge 1"
            r"\end{cases}",
    references=(BLONDEL_2020,),
    expression="Piecewise((0, x <= -1), ((Min(Max(x, -1), 1) + 1)**2 / 4, x < 1), (x, True))",
    # two passes each way instead of the Piecewise's nest (its derivative is sparse_sigmoid)
    torch_forward=lambda x: torch.where(x >= 1, x, (x.clamp(-1.0, 1.0) + 1) ** 2 / 4),
    torch_derivative=lambda x: ((x + 1) / 2).clamp(0.0, 1.0),
    breakpoints=lambda: (-1.0, 1.0),
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, value_at_0=0.25,
                slope_at_0=0.5),
)

sparse_sigmoid = ActivationSpec(
    name="sparse_sigmoid",
    summary="The derivative of sparse_plus: 0 below -1, 1 above 1, linear between.",
    formula=r"\mathrm{sparse\_sigmoid}(x) = \min(\max(\tfrac12 (x + 1), 0), 1)",
    references=(BLONDEL_2020,),
    init="xavier",
    expression="Min(Max((x + 1) / 2, 0), 1)",
    torch_forward=lambda x: ((x + 1) / 2).clamp(0.0, 1.0),
    torch_derivative=lambda x: ((x > -1) & (x < 1)).to(x.dtype) / 2,
    breakpoints=lambda: (-1.0, 1.0),
    claims=dict(monotonic=True, smooth=False, bounded_below=True, bounded_above=True, value_at_0=0.5,
                slope_at_0=0.5),
)

exponential = ActivationSpec(
    name="exponential",
    summary="e^x (Keras's exponential activation).",
    formula=r"f(x) = e^x",
    references=(KERAS_DOCS,),
    expression="exp(x)",
    torch_forward=torch.exp,
    torch_derivative=torch.exp,
    native=torch.exp,
    claims=dict(monotonic=True, smooth=True, bounded_below=True, bounded_above=False, value_at_0=1.0,
                slope_at_0=1.0),
)


def _np_log_softmax(x, dim=-1):
    x = _f64(x)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


log_softmax = ActivationSpec(
    name="log_softmax",
    kind="normalizing",
    summary="The logarithm of softmax, computed without forming softmax (stable for large negative logits).",
    formula=r"\mathrm{log\_softmax}(x)_i = x_i - \log \sum_j e^{x_j}",
    references=(BRIDLE_1990, PYTORCH_DOCS),
    params={"dim": Param(-1, doc="the dimension normalised over")},
    reference=_np_log_softmax,
    torch_forward=lambda x, dim: F.log_softmax(x, dim=dim),
    native=lambda x, dim: F.log_softmax(x, dim=dim),
    claims=dict(bounded_below=False, bounded_above=True, output_range=(-math.inf, 0.0)),
)


def _np_softmin(x, dim=-1):
    x = -_f64(x)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / np.sum(e, axis=dim, keepdims=True)


softmin = ActivationSpec(
    name="softmin",
    kind="normalizing",
    summary="softmax of -x: the smallest inputs get the largest weights.",
    formula=r"\mathrm{softmin}(x)_i = \frac{e^{-x_i}}{\sum_j e^{-x_j}}",
    references=(PYTORCH_DOCS,),
    params={"dim": Param(-1, doc="the dimension that sums to one")},
    reference=_np_softmin,
    torch_forward=lambda x, dim: F.softmin(x, dim=dim),
    native=lambda x, dim: F.softmin(x, dim=dim),
    claims=dict(bounded_below=True, bounded_above=True, output_range=(0.0, 1.0)),
)


def _sparsemax(x, dim):
    """Euclidean projection onto the simplex along ``dim`` (Martins & Astudillo 2016, Algorithm 1): sort, find the
    support size k(z) = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)}, subtract tau = (sum of the support - 1) / k."""
    z = x - x.amax(dim=dim, keepdim=True)  # shift-invariant; keeps the cumulative sums small
    srt = torch.sort(z, dim=dim, descending=True).values
    n = z.shape[dim]
    shape = [1] * z.dim()
    shape[dim] = n
    k = torch.arange(1, n + 1, dtype=z.dtype, device=z.device).reshape(shape)
    cums = srt.cumsum(dim)
    support = (1 + k * srt > cums).to(z.dtype)
    size = support.sum(dim=dim, keepdim=True)
    tau = ((srt * support).sum(dim=dim, keepdim=True) - 1) / size
    return torch.clamp(z - tau, min=0)


def _np_sparsemax(x, dim=-1):
    z = np.moveaxis(_f64(x), dim, -1)
    z = z - np.max(z, axis=-1, keepdims=True)
    srt = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cums = np.cumsum(srt, axis=-1)
    size = np.sum(1 + k * srt > cums, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cums, size - 1, axis=-1) - 1) / size
    return np.moveaxis(np.maximum(z - tau, 0.0), -1, dim)


sparsemax = ActivationSpec(
    name="sparsemax",
    kind="normalizing",
    summary="A softmax that can give exact zeros: the Euclidean projection onto the probability simplex.",
    formula=r"\mathrm{sparsemax}(x) = \arg\min_{p \in \Delta} \lVert p - x \rVert^2 = \max(x - \tau(x), 0)",
    references=(MARTINS_2016,),
    params={"dim": Param(-1, doc="the dimension that sums to one")},
    reference=_np_sparsemax,
    torch_forward=lambda x, dim: _sparsemax(x, dim),
    claims=dict(bounded_below=True, bounded_above=True, output_range=(0.0, 1.0)),
)

SPECS = (hardtanh, hardshrink, softshrink, tanhshrink, threshold, squareplus, sparse_plus, sparse_sigmoid, exponential,
         log_softmax, softmin, sparsemax)

# How PyTorch, Keras 3 and JAX spell each activation they share with actlab ("-": the framework lacks it), and where
# their defaults differ from actlab's. docs/activations.md renders this table.
FRAMEWORK_NAMES: dict[str, tuple[str, str, str, str]] = {
    # actlab name: (PyTorch, Keras 3, JAX, defaults that differ)
    "celu": ("nn.CELU / F.celu", "celu", "jax.nn.celu", ""),
    "elu": ("nn.ELU / F.elu", "elu", "jax.nn.elu", ""),
    "exponential": ("torch.exp", "exponential", "jax.numpy.exp", ""),
    "gelu": ("nn.GELU / F.gelu", "gelu", "jax.nn.gelu",
             "JAX defaults to approximate=True (tanh); PyTorch and Keras 3 to the exact erf form, as actlab"),
    "glu": ("nn.GLU / F.glu", "glu", "jax.nn.glu", ""),
    "hardshrink": ("nn.Hardshrink / F.hardshrink", "hard_shrink", "-", ""),
    "hardsigmoid": ("nn.Hardsigmoid / F.hardsigmoid", "hard_sigmoid", "jax.nn.hard_sigmoid",
                    "all relu6(x + 3) / 6 (slope 1/6); Keras 2 and TF used 0.2 x + 0.5 (slope 0.2)"),
    "hardswish": ("nn.Hardswish / F.hardswish", "hard_silu / hard_swish", "jax.nn.hard_silu / hard_swish", ""),
    "hardtanh": ("nn.Hardtanh / F.hardtanh", "hard_tanh", "-", ""),
    "identity": ("nn.Identity", "linear", "-", ""),
    "leaky_relu": ("nn.LeakyReLU / F.leaky_relu", "leaky_relu", "jax.nn.leaky_relu",
                   "Keras 3 and JAX default negative_slope = 0.2; PyTorch and actlab 0.01"),
    "log_sigmoid": ("nn.LogSigmoid / F.logsigmoid", "log_sigmoid", "jax.nn.log_sigmoid", ""),
    "log_softmax": ("nn.LogSoftmax / F.log_softmax", "log_softmax", "jax.nn.log_softmax", ""),
    "mish": ("nn.Mish / F.mish", "mish", "jax.nn.mish", ""),
    "prelu": ("nn.PReLU / F.prelu", "- (layers.PReLU)", "-", "Keras's PReLU layer starts its slopes at 0; PyTorch "
              "and actlab at 0.25"),
    "relu": ("nn.ReLU / F.relu", "relu", "jax.nn.relu", ""),
    "relu6": ("nn.ReLU6 / F.relu6", "relu6", "jax.nn.relu6", ""),
    "rrelu": ("nn.RReLU / F.rrelu", "-", "-", ""),
    "selu": ("nn.SELU / F.selu", "selu", "jax.nn.selu", ""),
    "sigmoid": ("nn.Sigmoid / torch.sigmoid", "sigmoid", "jax.nn.sigmoid", ""),
    "softmax": ("nn.Softmax / F.softmax", "softmax", "jax.nn.softmax", "PyTorch's implicit dim is deprecated; "
                "Keras and JAX default to the last axis, as actlab"),
    "softmin": ("nn.Softmin / F.softmin", "-", "-", ""),
    "softplus": ("nn.Softplus / F.softplus", "softplus", "jax.nn.softplus",
                 "PyTorch (and actlab) return x once beta x > threshold = 20; Keras and JAX never do"),
    "softshrink": ("nn.Softshrink / F.softshrink", "soft_shrink", "-", ""),
    "softsign": ("nn.Softsign / F.softsign", "softsign", "jax.nn.soft_sign", ""),
    "sparse_plus": ("-", "sparse_plus", "jax.nn.sparse_plus", ""),
    "sparse_sigmoid": ("-", "sparse_sigmoid", "jax.nn.sparse_sigmoid", ""),
    "sparsemax": ("-", "sparsemax", "-", ""),
    "squareplus": ("-", "squareplus", "jax.nn.squareplus", "Keras 3 and JAX both default b = 4, as actlab"),
    "swish": ("nn.SiLU / F.silu", "silu / swish", "jax.nn.silu / swish", "swish's beta is actlab's (Ramachandran "
              "et al.); the frameworks' swish is SiLU, beta = 1"),
    "tanh": ("nn.Tanh / torch.tanh", "tanh", "jax.nn.tanh", ""),
    "tanhshrink": ("nn.Tanhshrink / F.tanhshrink", "tanh_shrink", "-", ""),
    "threshold": ("nn.Threshold / F.threshold", "threshold", "-",
                  "PyTorch and Keras require threshold and value; actlab's defaults are 1 and 0"),
}
