"""Learnable activations from recent papers: their parameters are always ``nn.Parameter``s of a module (``learned``),
one per channel of dim 1 where the paper learns them per channel (``per_channel``, as PReLU), shared otherwise.

Functions and references take the same parameters as numbers (the initial values), so every test of the catalogue
runs on them at their initialisation; a trained module's shape is drawn by ``actlab show --from-model``.
"""

from __future__ import annotations

import math

import torch

from actlab.catalog.numerics import mpmath
from actlab.catalog.spec import ActivationSpec, Param, Reference, ordered

MOLINA_2020 = Reference("Molina, A., Schramowski, P. & Kersting, K.",
                        "Padé Activation Units: End-to-end Learning of Flexible Activation Functions in Deep "
                        "Networks. ICLR", 2020, "https://arxiv.org/abs/1907.06732")
MA_2021 = Reference("Ma, N., Zhang, X., Liu, M. & Sun, J.", "Activate or Not: Learning Customized Activation. CVPR",
                    2021, "https://arxiv.org/abs/2009.04759")
ZIYIN_2020 = Reference("Liu Ziyin, Hartwig, T. & Ueda, M.",
                       "Neural Networks Fail to Learn Periodic Functions and How to Fix It. NeurIPS", 2020,
                       "https://arxiv.org/abs/2006.08195")
HUANG_2024 = Reference("Huang, A. H. & Schlag, I.", "Deriving Activation Functions Using Integration", 2024,
                       "https://arxiv.org/abs/2411.13010")
YU_2022 = Reference("Yu, W., Si, C., Zhou, P., Luo, M., Zhou, Y., Feng, J., Yan, S. & Wang, X.",
                    "MetaFormer Baselines for Vision", 2022, "https://arxiv.org/abs/2210.13452")
JIN_2016 = Reference("Jin, X., Xu, C., Feng, J., Wei, Y., Xiong, J. & Yan, S.",
                     "Deep Learning with S-shaped Rectified Linear Activation Units. AAAI", 2016,
                     "https://arxiv.org/abs/1512.07030")
AGOSTINELLI_2014 = Reference("Agostinelli, F., Hoffman, M., Sadowski, P. & Baldi, P.",
                             "Learning Activation Functions to Improve Deep Neural Networks. ICLR workshop", 2015,
                             "https://arxiv.org/abs/1412.6830")

_CHANNELS = Param(1, low=1, doc="number of channels (dim 1) with their own parameters; 1 shares them")


# ----- PAU: a safe rational function -------------------------------------------------------------------------------

# Initial coefficients: the authors' fit of P / Q to leaky_relu(x, 0.01) on [-3, 3] (ml-research/pau,
# "pade_optimized_leakyrelu", degrees (5, 4), the paper's safe denominator).
PAU_NUMERATOR = (3.35583603e-02, 5.05000375e-01, 1.65343934e+00, 2.01001052e+00, 9.31901999e-01, 1.52424124e-01)
PAU_DENOMINATOR = (3.30847488e-06, 3.98021568e+00, 5.12471206e-07, 3.01830109e-01)


def _coefficients(values, x):
    return values.to(x.dtype) if isinstance(values, torch.Tensor) else torch.tensor(values, dtype=x.dtype,
                                                                                     device=x.device)


def _pau(x, numerator, denominator):
    """P(x) / (1 + |b1| |x| + ... + |b4| |x|^4). For |x| > 1 in t = 1/x: x (a5 + a4 t + ... + a0 t^5) /
    (|t|^4 + |b1| |t|^3 + ... + |b4|), so no power overflows where the ratio is finite. Each branch sees a clamped
    input (the double-where rule), so the other branch's infinities never reach a gradient."""
    a, b = _coefficients(numerator, x), _coefficients(denominator, x).abs()
    large = x.abs() > 1
    xs = torch.where(large, torch.zeros_like(x), x)
    p = a[5]
    for k in range(4, -1, -1):
        p = p * xs + a[k]
    u = xs.abs()
    q = b[3]
    for k in range(2, -1, -1):
        q = q * u + b[k]
    small_value = p / (1 + q * u)
    # Past 1e30, t is 0 to within every float type's precision; exactly 0 there keeps backward free of inf * 0
    t = torch.where(x.abs() > 1e30, torch.zeros_like(x), 1 / torch.where(large, x, torch.ones_like(x)))
    pt = a[0]
    for k in range(1, 6):
        pt = pt * t + a[k]
    s = t.abs()
    qs = torch.ones_like(s)
    for k in range(4):
        qs = qs * s + b[k]
    return torch.where(large, x * (pt / qs), small_value)


def _np_pau(x, numerator, denominator):
    """The float64 reference, evaluated in extended precision: near a root of P, Horner's rounding in float64 is
    amplified by sum |a_k x^k| / |P(x)| (2.6e-14 relative at x = -0.706)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        xl = x.astype(np.longdouble)
        u = np.abs(xl)
        p = np.zeros_like(xl)
        for c in reversed(numerator):  # Horner: powers of longdouble are slow
            p = p * xl + np.longdouble(c)
        q = np.zeros_like(xl)
        for c in reversed(denominator):
            q = (q + abs(np.longdouble(c))) * u
        q = q + 1
        direct = (p / q).astype(np.float64)
        # Past |x| = 1e30 the powers overflow; the ratio is a_5 / |b_4| x to double precision there.
        far = x * (float(numerator[5]) / abs(float(denominator[3])))
    return np.where(np.abs(x) > 1e30, far, direct)


def _pau_exact(x, numerator, denominator):
    p = sum(mpmath.mpf(c) * x**j for j, c in enumerate(numerator))
    q = 1 + sum(abs(mpmath.mpf(c)) * abs(x) ** (k + 1) for k, c in enumerate(denominator))
    return p / q


pau = ActivationSpec(
    name="pau",
    aliases=("pade_activation_unit", "safe_pau"),
    summary="Padé activation unit: a learned rational function P(x) / Q(x), degrees (5, 4), with the paper's "
            "pole-free ('safe') denominator; one set of coefficients per layer.",
    formula=r"\mathrm{PAU}(x) = \frac{\sum_{j=0}^{5} a_j x^j}{1 + \sum_{k=1}^{4} |b_k|\,|x|^k}",
    references=(MOLINA_2020,),
    params={"numerator": Param(PAU_NUMERATOR, length=6, trainable_allowed=True,
                               doc="a_0..a_5 (initially the authors' fit to leaky_relu(0.01))"),
            "denominator": Param(PAU_DENOMINATOR, length=4, trainable_allowed=True, doc="b_1..b_4")},
    learned=("numerator", "denominator"),
    torch_forward=_pau,
    reference=_np_pau,
    exact=_pau_exact,
    breakpoints=lambda numerator, denominator: (0.0,),  # |x| and |x|^3 (b1, b3 are tiny but not 0)
)


# ----- ACON-C ------------------------------------------------------------------------------------------------------


def _normal(shape):
    return torch.randn(shape)


acon = ActivationSpec(
    name="acon",
    aliases=("acon_c",),
    summary="ACON-C: learns per channel whether to activate, between the linear p2 x and a swish-like switch.",
    formula=r"\mathrm{ACON\text{-}C}(x) = (p_1 - p_2)\,x\,\sigma\!\left(\beta (p_1 - p_2) x\right) + p_2 x",
    references=(MA_2021,),
    params={"num_parameters": _CHANNELS,
            "p1": Param(1.0, trainable_allowed=True, sample=_normal, doc="p1 (modules: drawn from N(0, 1))"),
            "p2": Param(0.0, trainable_allowed=True, sample=_normal, doc="p2 (modules: drawn from N(0, 1))"),
            "beta": Param(1.0, trainable_allowed=True, doc="beta, the switching factor")},
    learned=("p1", "p2", "beta"),
    per_channel="num_parameters",
    expression="(p1 - p2) * x * sigmoid(beta * (p1 - p2) * x) + p2 * x",
)


# ----- Snake -------------------------------------------------------------------------------------------------------

snake = ActivationSpec(
    name="snake",
    summary="x + sin^2(a x) / a: monotonic trend plus a learned periodic component, for periodic data (a learned "
            "per channel as BigVGAN does; the paper also treats it as one hyperparameter).",
    formula=r"\mathrm{snake}_a(x) = x + \frac{\sin^2(a x)}{a}",
    references=(ZIYIN_2020,),
    params={"num_parameters": _CHANNELS,
            "a": Param(0.5, low=0.0, low_open=True, trainable_allowed=True,
                       doc="a > 0, the frequency (the paper's 0.5 for non-periodic tasks; 5-50 for periodic data)")},
    learned=("a",),
    per_channel="num_parameters",
    expression="x + sin(a * x)**2 / a",
    # 1 + sin(2 a x) cancels where the sine is near -1; the square of sin + cos does not
    torch_derivative=lambda x, num_parameters, a: (torch.sin(a * x) + torch.cos(a * x)) ** 2,
)


# ----- xIELU -------------------------------------------------------------------------------------------------------

def _softplus_inverse(y: float) -> float:
    return math.log(math.expm1(y))


xielu = ActivationSpec(
    name="xielu",
    summary="Expanded integral of the ELU: a learned quadratic for x > 0, a learned ELU-like curve below.",
    formula=(r"\mathrm{xIELU}(x) = \begin{cases} \alpha_p x^2 + \beta x & x > 0 \\ \alpha_n (e^{\min(x,\epsilon)} - 1)"
             r" - \alpha_n x + \beta x & x \le 0 \end{cases},\ \alpha_p = \mathrm{softplus}(\alpha_p'),\ "
             r"\alpha_n = \beta + \mathrm{softplus}(\alpha_n')"),
    references=(HUANG_2024,),
    params={"alpha_p": Param(_softplus_inverse(0.8), trainable_allowed=True,
                             doc="alpha_p' (learned; alpha_p = softplus(alpha_p') = 0.8 initially)"),
            "alpha_n": Param(_softplus_inverse(0.8 - 0.5), trainable_allowed=True,
                             doc="alpha_n' (learned; alpha_n = beta + softplus(alpha_n') = 0.8 initially)"),
            "beta": Param(0.5, doc="beta, the linear slope"),
            "eps": Param(-1e-6, high=0.0, doc="epsilon <= 0, where the exponential branch stops")},
    learned=("alpha_p", "alpha_n"),
    expression=("Piecewise((softplus(alpha_p) * x**2 + beta * x, x > 0), "
                "((beta + softplus(alpha_n)) * (expm1(Min(x, eps)) - x) + beta * x, True))"),
    breakpoints=lambda alpha_p, alpha_n, beta, eps: (eps, 0.0),
)


# ----- StarReLU ----------------------------------------------------------------------------------------------------

star_relu = ActivationSpec(
    name="star_relu",
    aliases=("starrelu",),
    summary="A learned scale and bias on squared ReLU, chosen so the output starts with zero mean and unit variance.",
    formula=r"\mathrm{StarReLU}(x) = s \cdot \mathrm{ReLU}(x)^2 + b",
    references=(YU_2022,),
    params={"scale": Param(1.0, trainable_allowed=True,
                           doc="s (1 initially, as the official code and timm; the paper's constant is 0.8944)"),
            "bias": Param(0.0, trainable_allowed=True,
                          doc="b (0 initially, as the official code and timm; the paper's constant is -0.4472)")},
    learned=("scale", "bias"),
    expression="scale * relu(x)**2 + bias",
    breakpoints=lambda scale, bias: (0.0,),
)


# ----- SReLU -------------------------------------------------------------------------------------------------------

srelu = ActivationSpec(
    name="srelu",
    aliases=("s_shaped_relu",),
    summary="S-shaped ReLU: the identity between two learned thresholds, learned slopes beyond them, per channel. "
            "It starts as the paper's frozen leaky form (t_l = 0, a_l = 0.2, a_r = 1); the paper sets t_r from the "
            "data and freezes the parameters for the first epochs, which this module does not.",
    formula=(r"\mathrm{SReLU}(x) = \begin{cases} t_r + a_r (x - t_r) & x \ge t_r \\ x & t_l < x < t_r \\ "
             r"t_l + a_l (x - t_l) & x \le t_l \end{cases}"),
    references=(JIN_2016,),
    params={"num_parameters": _CHANNELS,
            "t_left": Param(0.0, trainable_allowed=True, doc="t_l, the lower threshold"),
            "a_left": Param(0.2, trainable_allowed=True, doc="a_l, the slope below t_l"),
            "t_right": Param(1.0, trainable_allowed=True, doc="t_r, the upper threshold"),
            "a_right": Param(1.0, trainable_allowed=True, doc="a_r, the slope above t_r")},
    check=ordered("srelu", "t_left", "t_right"),
    learned=("t_left", "a_left", "t_right", "a_right"),
    per_channel="num_parameters",
    expression=("Piecewise((t_right + a_right * (x - t_right), x >= t_right), (x, x > t_left), "
                "(t_left + a_left * (x - t_left), True))"),
    breakpoints=lambda num_parameters, t_left, a_left, t_right, a_right: (t_left, t_right),
)


def _uniform_02(shape):
    return torch.empty(shape).uniform_(-0.2, 0.2)


def _normal_05(shape):
    return torch.randn(shape) * 0.5


# ----- APL ---------------------------------------------------------------------------------------------------------

apl = ActivationSpec(
    name="apl",
    aliases=("adaptive_piecewise_linear",),
    summary="Adaptive piecewise linear unit: ReLU plus S = 2 learned hinges, drawn as the authors' code draws them; "
            "learned per channel here, per unit (every element) in the paper.",
    formula=r"\mathrm{APL}(x) = \max(0, x) + \sum_{s=1}^{2} a_s \max(0, -x + b_s)",
    references=(AGOSTINELLI_2014,),
    params={"num_parameters": _CHANNELS,
            "a1": Param(0.2, trainable_allowed=True, sample=_uniform_02, doc="a_1 (modules: U(-0.2, 0.2))"),
            "b1": Param(0.0, trainable_allowed=True, sample=_normal_05, doc="b_1 (modules: N(0, 0.5^2))"),
            "a2": Param(0.1, trainable_allowed=True, sample=_uniform_02, doc="a_2 (modules: U(-0.2, 0.2))"),
            "b2": Param(-1.0, trainable_allowed=True, sample=_normal_05, doc="b_2 (modules: N(0, 0.5^2))")},
    learned=("a1", "b1", "a2", "b2"),
    per_channel="num_parameters",
    expression="relu(x) + a1 * relu(b1 - x) + a2 * relu(b2 - x)",
    breakpoints=lambda num_parameters, a1, b1, a2, b2: (0.0, b1, b2),
)

SPECS = (pau, acon, snake, xielu, star_relu, srelu, apl)
