"""Published activations from Kunc & Kléma's survey ("Three Decades of Activations", 2024), each defined here from
its original paper, most as a SymPy expression (actlab derives the torch forward, the closed-form derivative and the
mpmath truth from it). A hand-written torch form stands beside an expression where the textbook form overflows or
cancels in float32; the tests hold both to the expression's mpmath.

An independent reviewer checked each formula, default and citation against the original source (2026-12); where a
paper gives no default, the summary says which value is used and why.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from actlab.catalog.numerics import erfc, mpmath, np_erfc, np_normal_cdf, sech2
from actlab.catalog.spec import ActivationSpec, Param, Reference

SURVEY = Reference("Kunc, V. & Kléma, J.", "Three Decades of Activations: A Comprehensive Survey of 400 Activation "
                   "Functions for Neural Networks", 2024, "https://arxiv.org/abs/2402.09092")


def _ref(authors: str, title: str, year: int, url: str = "") -> Reference:
    return Reference(authors, title, year, url)


def _spec(name: str, expression: str, formula: str, source: Reference, summary: str, **kw: Any) -> ActivationSpec:
    return ActivationSpec(name=name, expression=expression, formula=formula, references=(source,),
                          summary=summary, **kw)


def _clamp_exp(x, limit: float = 80.0):
    return torch.exp(x.clamp(max=limit))


# ----- sigmoid-shaped -------------------------------------------------------------------------------------------------

lecun_tanh = _spec(
    "lecun_tanh", "1.7159 * tanh(2 * x / 3)", r"f(x) = 1.7159 \tanh(\tfrac{2}{3} x)",
    _ref("LeCun, Y., Bottou, L., Orr, G. B. & Müller, K.-R.", "Efficient BackProp. Neural Networks: Tricks of the "
         "Trade", 1998),
    "tanh scaled so that f(+-1) = +-1 and the gain at 0 is near 1.", aliases=("scaled_tanh",), init="xavier",
    torch_derivative=lambda x: (1.7159 * 2 / 3) * sech2(2 * x / 3))

penalized_tanh = _spec(
    "penalized_tanh", "Piecewise((tanh(x), x > 0), (a * tanh(x), True))",
    r"f(x) = \begin{cases} \tanh x & x > 0 \\ a \tanh x & x \le 0 \end{cases}",
    _ref("Xu, B., Huang, R. & Li, M.", "Revise Saturated Activation Functions", 2016, "https://arxiv.org/abs/1602.05980"),
    "tanh with its negative half scaled down, as leaky ReLU scales ReLU's.",
    params={"a": Param(0.25, low=0.0, doc="the slope factor below 0")}, init="xavier",
    breakpoints=lambda a: (0.0,), torch_derivative=lambda x, a: torch.where(x > 0, sech2(x), a * sech2(x)))

elliott = _spec(
    "elliott", "x / (2 * (1 + Abs(x))) + 1 / 2", r"f(x) = \frac{x}{2(1 + |x|)} + \frac{1}{2}",
    _ref("Elliott, D. L.", "A Better Activation Function for Artificial Neural Networks. ISR Technical Report TR 93-8",
         1993),
    "Elliott's algebraic sigmoid in its unipolar form (FANN's), range (0, 1); the report's symmetric x / (1 + |x|) is "
    "softsign.", init="xavier",
    # below 0 as 1 / (2 (1 - x)), above as (1/2 + x) / (1 + x): no cancellation and no overflow of 2 (1 + |x|)
    torch_forward=lambda x: torch.where(x < 0, 0.5 / (1 - x), (0.5 + x) / (1 + x)),
    torch_derivative=lambda x: 0.5 / (1 + x.abs()) / (1 + x.abs()))

bipolar_sigmoid = _spec(
    "bipolar_sigmoid", "tanh(x / 2)", r"f(x) = \frac{1 - e^{-x}}{1 + e^{-x}} = \tanh(x/2)",
    _ref("Fausett, L.", "Fundamentals of Neural Networks: Architectures, Algorithms and Applications", 1994),
    "The logistic sigmoid rescaled to (-1, 1): 2 sigmoid(x) - 1.", init="xavier",
    torch_derivative=lambda x: sech2(x / 2) / 2)

lisht = _spec(
    "lisht", "x * tanh(x)", r"f(x) = x \tanh x",
    _ref("Roy, S. K., Manna, S., Dubey, S. R. & Chaudhuri, B. B.", "LiSHT: Non-Parametric Linearly Scaled Hyperbolic "
         "Tangent Activation Function for Neural Networks", 2019, "https://arxiv.org/abs/1901.05894"),
    "tanh scaled by its input: even, unbounded, non-negative.")


def _isru(x, alpha):
    """x / sqrt(1 + alpha x^2), for |x| > 1 as sign(x) / sqrt(1/x^2 + alpha) so x^2 never overflows."""
    big = x.abs() > 1
    xl = torch.where(big, x, torch.ones_like(x))
    return torch.where(big, torch.sign(xl) * torch.rsqrt(1 / (xl * xl) + alpha), x * torch.rsqrt(1 + alpha * x * x))


def _isru_derivative(x, alpha):
    """(1 + alpha x^2)^(-3/2), for |x| > 1 as (|x| sqrt(1/x^2 + alpha))^-3."""
    big = x.abs() > 1
    xl = torch.where(big, x, torch.ones_like(x))
    r = torch.where(big, 1 / (xl.abs() * torch.sqrt(1 / (xl * xl) + alpha)), torch.rsqrt(1 + alpha * x * x))
    return r * r * r


_CARLILE = _ref("Carlile, B., Delamarter, G., Kinney, P., Marti, A. & Whitney, B.", "Improving Deep Learning by "
                "Inverse Square Root Linear Units (ISRLUs)", 2017, "https://arxiv.org/abs/1710.09967")
_ALPHA = {"alpha": Param(1.0, low=0.0, low_open=True, doc="alpha > 0: the curve saturates at +-1/sqrt(alpha)")}

isru = _spec(
    "isru", "x / sqrt(1 + alpha * x**2)", r"f(x) = \frac{x}{\sqrt{1 + \alpha x^2}}", _CARLILE,
    "Inverse square root unit: a sigmoid-shaped curve from one square root.", params=_ALPHA, init="xavier",
    torch_forward=_isru, torch_derivative=_isru_derivative)

isrlu = _spec(
    "isrlu", "Piecewise((x, x >= 0), (x / sqrt(1 + alpha * x**2), True))",
    r"f(x) = \begin{cases} x & x \ge 0 \\ \frac{x}{\sqrt{1 + \alpha x^2}} & x < 0 \end{cases}", _CARLILE,
    "Inverse square root linear unit: the identity above 0, ISRU below (an ELU without the exponential).",
    params=_ALPHA, breakpoints=lambda alpha: (0.0,),
    torch_forward=lambda x, alpha: torch.where(x >= 0, x, _isru(x, alpha)),
    torch_derivative=lambda x, alpha: torch.where(x >= 0, torch.ones_like(x), _isru_derivative(x, alpha)))

cloglog = _spec(
    "cloglog", "-expm1(-exp(x))", r"f(x) = 1 - e^{-e^{x}}",
    _ref("Gomes, G. S. da S., Ludermir, T. B. & Lima, L. M. M. R.", "Comparison of new activation functions in neural "
         "network for forecasting financial time series. Neural Computing and Applications 20", 2011),
    "Complementary log-log: an asymmetric sigmoid, the Gumbel distribution's CDF of -x.", init="xavier",
    torch_derivative=lambda x: torch.exp(x - torch.exp(x)))

loglog = _spec(
    "loglog", "exp(-exp(-x))", r"f(x) = e^{-e^{-x}}",
    _ref("Gomes, G. S. da S., Ludermir, T. B. & Lima, L. M. M. R.", "Comparison of new activation functions in neural "
         "network for forecasting financial time series. Neural Computing and Applications 20", 2011),
    "Log-log (the Gompertz curve): an asymmetric sigmoid that approaches 1 faster than 0.", init="xavier",
    torch_derivative=lambda x: torch.exp(-x - torch.exp(-x)))

probit = _spec(
    "probit", "erfc(-x / sqrt(2)) / 2", r"f(x) = \Phi(x) = \tfrac12 \operatorname{erfc}(-x/\sqrt{2})",
    _ref("Gomes, G. S. da S., Ludermir, T. B. & Lima, L. M. M. R.", "Comparison of new activation functions in neural "
         "network for forecasting financial time series. Neural Computing and Applications 20", 2011),
    "The standard normal CDF as a sigmoid.", init="xavier", reference=np_normal_cdf)

laplace = _spec(
    "laplace", "erfc(-(x - mu) / (sigma * sqrt(2))) / 2",
    r"f(x) = \tfrac12 \left(1 + \operatorname{erf}\frac{x - \mu}{\sigma \sqrt 2}\right)",
    _ref("Ma, X., Zhou, C., Kong, X., He, J., Gui, L., Neubig, G., May, J. & Zettlemoyer, L.",
         "Mega: Moving Average Equipped Gated Attention", 2022, "https://arxiv.org/abs/2209.10655"),
    "Mega's Laplace attention function: a normal CDF fitted to squared ReLU's range near 0.",
    params={"mu": Param(math.sqrt(0.5), doc="mu, sqrt(1/2)"),
            "sigma": Param(math.sqrt(1 / (4 * math.pi)), low=0.0, low_open=True, doc="sigma, sqrt(1/(4 pi))")},
    init="xavier", torch_forward=lambda x, mu, sigma: _laplace(x, mu, sigma),
    reference=lambda x, mu, sigma: np_erfc(-(x - mu) / (sigma * math.sqrt(2))) / 2)

# ----- rectifier-shaped -----------------------------------------------------------------------------------------------

absolute = _spec(
    "absolute", "Abs(x)", r"f(x) = |x|",
    _ref("Jarrett, K., Kavukcuoglu, K., Ranzato, M. & LeCun, Y.",
         "What is the Best Multi-Stage Architecture for Object Recognition? ICCV", 2009),
    "Absolute value rectification.", aliases=("abs", "absolute_value"), breakpoints=lambda: (0.0,),
    torch_forward=torch.abs, torch_derivative=torch.sign, native=torch.abs)

shifted_relu = _spec(
    "shifted_relu", "Max(x, -1)", r"f(x) = \max(x, -1)",
    _ref("Clevert, D.-A., Unterthiner, T. & Hochreiter, S.", "Fast and Accurate Deep Network Learning by Exponential "
         "Linear Units (ELUs)", 2015, "https://arxiv.org/abs/1511.07289"),
    "ReLU moved to -1 (the ELU paper's 'SReLU' baseline; not the S-shaped srelu).", breakpoints=lambda: (-1.0,),
    torch_forward=lambda x: x.clamp(min=-1.0), torch_derivative=lambda x: (x > -1).to(x.dtype))

nlrelu = _spec(
    "nlrelu", "log1p(beta * relu(x))", r"f(x) = \ln(\beta \max(0, x) + 1)",
    _ref("Liu, Y., Zhang, J., Gao, C., Qu, J. & Ji, L.", "Natural-Logarithm-Rectified Activation Function in "
         "Convolutional Neural Networks", 2019, "https://arxiv.org/abs/1908.03682"),
    "ReLU compressed by a logarithm.", params={"beta": Param(1.0, low=0.0, low_open=True, doc="beta > 0")},
    breakpoints=lambda beta: (0.0,))

smelu = _spec(
    "smelu", "(Min(Max(x, -beta), beta) + beta)**2 / (4 * beta) + Max(x, beta) - beta",
    r"f(x) = \begin{cases} 0 & x \le -\beta \\ \frac{(x + \beta)^2}{4\beta} & |x| < \beta \\ x & x \ge \beta "
    r"\end{cases}",
    _ref("Shamir, G. I., Lin, D. & Coviello, L.", "Smooth activations and reproducibility in deep networks", 2020,
         "https://arxiv.org/abs/2010.09931"),
    "Smooth ReLU: a quadratic joins 0 and x across [-beta, beta] (the paper sweeps beta; 1 here).",
    params={"beta": Param(1.0, low=0.0, low_open=True, doc="beta > 0, the half-width of the quadratic")},
    breakpoints=lambda beta: (-beta, beta))

satlin = _spec(
    "satlin", "Min(Max(x, 0), 1)", r"f(x) = \min(\max(x, 0), 1)",
    _ref("The MathWorks", "satlin: saturating linear transfer function (Deep Learning Toolbox documentation)", 1992),
    "Saturating linear: x clipped to [0, 1].", init="xavier", breakpoints=lambda: (0.0, 1.0),
    torch_forward=lambda x: x.clamp(0.0, 1.0), torch_derivative=lambda x: ((x > 0) & (x < 1)).to(x.dtype))

binary_step = _spec(
    "binary_step", "step(x)", r"f(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}",
    _ref("Rosenblatt, F.", "The Perceptron: A Probabilistic Model for Information Storage and Organization in the "
         "Brain. Psychological Review 65", 1958),
    "The perceptron's threshold unit; its derivative is 0 wherever it exists, so gradient descent cannot train "
    "through it.", aliases=("heaviside",), init="xavier", breakpoints=lambda: (0.0,),
    torch_forward=lambda x: torch.where(x > 0, torch.ones_like(x), torch.where(x.isnan(), x, torch.zeros_like(x))),
    torch_derivative=torch.zeros_like,
    claims=dict(continuous=False))

reu = _spec(
    "reu", "Piecewise((x, x > 0), (x * exp(Min(x, 0)), True))",
    r"f(x) = \begin{cases} x & x > 0 \\ x e^x & x \le 0 \end{cases}",
    _ref("Ying, Y., Su, J., Shan, P., Miao, L., Wang, X. & Peng, S.", "Rectified Exponential Units for Convolutional "
         "Neural Networks. IEEE Access 7", 2019),
    "Rectified exponential unit: x e^x below 0, non-monotonic with a minimum at -1.", breakpoints=lambda: (0.0,))

elu_plus_one = _spec(
    "elu_plus_one", "Piecewise((x + 1, x > 0), (exp(Min(x, 0)), True))",
    r"f(x) = \mathrm{ELU}(x) + 1",
    _ref("Katharopoulos, A., Vyas, A., Pappas, N. & Fleuret, F.", "Transformers are RNNs: Fast Autoregressive "
         "Transformers with Linear Attention. ICML", 2020, "https://arxiv.org/abs/2006.16236"),
    "ELU shifted to stay positive: linear attention's feature map.", breakpoints=lambda: (0.0,))

# ----- self-gated (x times a gate) ------------------------------------------------------------------------------------

quick_gelu = _spec(
    "quick_gelu", "x * sigmoid(1.702 * x)", r"f(x) = x\,\sigma(1.702 x)",
    _ref("Hendrycks, D. & Gimpel, K.", "Gaussian Error Linear Units (GELUs)", 2016, "https://arxiv.org/abs/1606.08415"),
    "GELU's sigmoid approximation (CLIP's QuickGELU).", aliases=("gelu_sigmoid",),
    torch_derivative=lambda x: torch.sigmoid(1.702 * x) + x * (1.702 * torch.sigmoid(1.702 * x)
                                                              * torch.sigmoid(-1.702 * x)))

e_swish = _spec(
    "e_swish", "beta * x * sigmoid(x)", r"f(x) = \beta\,x\,\sigma(x)",
    _ref("Alcaide, E.", "E-swish: Adjusting Activations to Different Network Depths", 2018,
         "https://arxiv.org/abs/1801.07145"),
    "SiLU scaled by beta; the paper recommends 1 <= beta <= 2 (1.375 was its best on WRN-10-2).",
    params={"beta": Param(1.375, low=1.0, high=2.0, doc="beta, the scale")},
    # x times the gate first: beta x overflows at the float max, where x sigmoid(x) is still 0 or x
    torch_forward=lambda x, beta: beta * (x * torch.sigmoid(x)),
    torch_derivative=lambda x, beta: beta * (torch.sigmoid(x) + x * (torch.sigmoid(x) * torch.sigmoid(-x))))

dsilu = _spec(
    "dsilu", "sigmoid(x) * (1 + x * sigmoid(-x))", r"f(x) = \sigma(x)\,(1 + x(1 - \sigma(x)))",
    _ref("Elfwing, S., Uchibe, E. & Doya, K.", "Sigmoid-Weighted Linear Units for Neural Network Function "
         "Approximation in Reinforcement Learning. Neural Networks 107", 2018, "https://arxiv.org/abs/1702.03118"),
    "The derivative of SiLU used as an activation: a sigmoid with overshoot.", init="xavier")

logish = _spec(
    "logish", "x * log1p(sigmoid(x))", r"f(x) = x \ln(1 + \sigma(x))",
    _ref("Zhu, H., Zeng, H., Liu, J. & Zhang, X.", "Logish: A new nonlinear nonmonotonic activation function for "
         "convolutional neural network. Neurocomputing 458", 2021),
    "x times the log of one plus its sigmoid.")

serf = _spec(
    "serf", "x * erf(softplus(x))", r"f(x) = x \operatorname{erf}(\ln(1 + e^x))",
    _ref("Nag, S. & Bhattacharyya, M.", "SERF: Towards better training of deep neural networks using log-Softplus "
         "ERror activation Function", 2021, "https://arxiv.org/abs/2108.09598"),
    "Mish with erf in place of tanh.",
    torch_derivative=lambda x: _serf_derivative(x))

smish = _spec(
    "smish", "alpha * x * tanh(log1p(sigmoid(beta * x)))", r"f(x) = \alpha x \tanh(\ln(1 + \sigma(\beta x)))",
    _ref("Wang, X., Ren, H. & Wang, A.", "Smish: A Novel Activation Function for Deep Learning Methods. Electronics 11",
         2022),
    "x times tanh of logish's gate.",
    params={"alpha": Param(1.0, low=0.0, low_open=True, doc="alpha, the output scale"),
            "beta": Param(1.0, low=0.0, low_open=True, doc="beta, the input scale")})


def _serf_derivative(x):
    """erf(sp) + x (2/sqrt(pi)) e^{-sp^2} sigmoid(x), sp = softplus(x); x multiplies last (no inf * 0)."""
    sp = torch.nn.functional.softplus(x, threshold=40.0)
    return torch.erf(sp) + x * (1.1283791670955126 * torch.exp(-sp * sp) * torch.sigmoid(x))


def _smu_derivative(x, alpha, mu):
    z = mu * (1 - alpha) * x
    return ((1 + alpha) + (1 - alpha) * torch.erf(z)) / 2 + x * ((1 - alpha) * mu * (1 - alpha)
                                                                 * 0.5641895835477563 * torch.exp(-z * z))


def _laplace(x, mu, sigma):
    """In float64 for float32 inputs: the argument (x - mu) / (sigma sqrt 2) near x = 0 is conditioned like 7 ulps,
    more than the policy's budget allows in float32 (the result is rounded once to the input's type)."""
    if not isinstance(x, torch.Tensor) or torch.compiler.is_compiling() or torch.jit.is_tracing():
        return erfc(-(x - mu) / (sigma * math.sqrt(2))) / 2  # what tracers and exporters record
    wide = torch.float64 if x.dtype == torch.float32 and x.device.type == "cpu" else x.dtype
    z = (x.to(wide) - mu) / (sigma * math.sqrt(2))
    return (torch.special.erfc(-z) / 2).to(x.dtype)


def _sine(x, w0, phase=0.0):
    """sin(w0 x + phase). float32 and half inputs in float64, where w0 x is exact for w0 up to 2^29 (in float32 its
    rounding alone is w0 ulps of x); past |w0 x| = 1e300 the argument is reduced first, so it stays finite (the
    phase there means nothing in any float type)."""
    if not isinstance(x, torch.Tensor):  # a tracer's proxy: the plain expression
        return torch.sin(w0 * x + phase)
    wide = torch.float64 if x.dtype in (torch.float32, torch.float16, torch.bfloat16) and x.device.type == "cpu" \
        else x.dtype
    xw = x.to(wide)
    far = xw.abs() > 1e300 / w0
    xs = torch.where(far, torch.remainder(xw, 2 * math.pi), xw)
    return torch.sin(w0 * xs + phase).to(x.dtype)


def _tanh_exp_derivative(x):
    """tanh(e^x) + x e^x sech^2(e^x); past x = 20, sech^2(e^x) < e^-9e8 and the derivative is 1."""
    e = torch.exp(x.clamp(max=20.0))
    t = torch.tanh(e)
    return torch.where(x > 20, torch.ones_like(x), t + x * e * (1 - t) * (1 + t))


tanh_exp = _spec(
    "tanh_exp", "x * tanh(exp(x))", r"f(x) = x \tanh(e^x)",
    _ref("Liu, X. & Di, X.", "TanhExp: A Smooth Activation Function with High Convergence Speed for Lightweight Neural "
         "Networks", 2020, "https://arxiv.org/abs/2003.09855"),
    "x times tanh of its exponential: near the identity above 1, a shallow dip below.", aliases=("telu",),
    torch_derivative=_tanh_exp_derivative)

phish = _spec(
    "phish", "x * tanh(x * erfc(-x / sqrt(2)) / 2)", r"f(x) = x \tanh(\mathrm{GELU}(x))",
    _ref("Naveen, P.", "Phish: A Novel Hyper-Optimizable Activation Function", 2022),
    "x times tanh of GELU (a preprint, not peer-reviewed).")


def _gish_derivative(x):
    """ln(2 - e^{-e^x}) + x e^{x - e^x} / (2 - e^{-e^x}), with e^{x - e^x} formed in one exponential (no 0 * inf)."""
    g = -torch.expm1(-torch.exp(x))  # 1 - e^{-e^x}
    return torch.log1p(g) + x * torch.exp(x - torch.exp(x)) / (1 + g)


gish = _spec(
    "gish", "x * log1p(-expm1(-exp(x)))", r"f(x) = x \ln(2 - e^{-e^x})",
    _ref("Kaytan, M., Aydilek, İ. B. & Yeroğlu, C.", "Gish: a novel activation function for image classification. "
         "Neural Computing and Applications 35", 2023),
    "x times the log of 2 - e^{-e^x}: ln 2 x above, a shallow dip below 0.", torch_derivative=_gish_derivative)

golu = _spec(
    "golu", "x * exp(-exp(-x))", r"f(x) = x\,e^{-e^{-x}}",
    _ref("Das, I., Safari, M., Adriaensen, S. & Hutter, F.", "Gompertz Linear Units: Leveraging Asymmetry for "
         "Enhanced Learning Dynamics", 2025, "https://arxiv.org/abs/2502.03654"),
    "x gated by the Gompertz curve (loglog): a right-skewed counterpart of GELU.",
    torch_derivative=lambda x: torch.exp(-torch.exp(-x)) + x * torch.exp(-x - torch.exp(-x)))


def _pflu_s(x):
    """sqrt(1 + x^2) scaled by max(|x|, 1), so x^2 never overflows."""
    m = x.abs().clamp(min=1.0)
    return m * torch.sqrt((x / m) ** 2 + (1 / m) ** 2)


def _pflu(x):
    s = _pflu_s(x)
    return torch.where(x >= 0, x * ((1 + x / s) / 2), x / (2 * s * (s - x)))  # below 0: no 1 - |x|/s cancellation


def _pflu_derivative(x):
    s = _pflu_s(x)
    gate = torch.where(x >= 0, (1 + x / s) / 2, 1 / (2 * s * (s - x)))
    return gate + x / (2 * s) / s / s


pflu = _spec(
    "pflu", "x * (1 + x / sqrt(1 + x**2)) / 2", r"f(x) = x \cdot \tfrac12 \left(1 + \frac{x}{\sqrt{1 + x^2}}\right)",
    _ref("Zhu, M., Min, W., Wang, Q., Zou, S. & Chen, X.", "PFLU and FPFLU: Two novel non-monotonic activation "
         "functions in convolutional neural networks. Neurocomputing 429", 2021),
    "Power function linear unit: x gated by an algebraic sigmoid.", torch_forward=_pflu,
    torch_derivative=_pflu_derivative)

smu = _spec(
    "smu", "((1 + alpha) * x + (1 - alpha) * x * erf(mu * (1 - alpha) * x)) / 2",
    r"f(x) = \tfrac12\left((1 + \alpha) x + (1 - \alpha) x \operatorname{erf}(\mu (1 - \alpha) x)\right)",
    _ref("Biswas, K., Kumar, S., Banerjee, S. & Pandey, A. K.", "SMU: smooth activation function for deep networks "
         "using smoothing maximum technique", 2021, "https://arxiv.org/abs/2111.04682"),
    "Smooth maximum unit: a smoothed leaky ReLU(alpha); mu is learned and starts at 1e6 (the authors' code), where "
    "it is leaky ReLU to within 1e-6.",
    params={"alpha": Param(0.25, low=0.0, high=1.0, doc="alpha, the leaky slope"),
            "mu": Param(1e6, low=0.0, low_open=True, trainable_allowed=True, doc="mu, the smoothing (learned)")},
    learned=("mu",),
    torch_forward=lambda x, alpha, mu: x * (((1 + alpha) + (1 - alpha) * torch.erf(mu * (1 - alpha) * x)) / 2),
    torch_derivative=lambda x, alpha, mu: _smu_derivative(x, alpha, mu))

tanhsoft1 = _spec(
    "tanhsoft1", "tanh(alpha * x) * softplus(x)", r"f(x) = \tanh(\alpha x) \ln(1 + e^x)",
    _ref("Biswas, K., Kumar, S., Banerjee, S. & Pandey, A. K.", "TanhSoft: Dynamic Trainable Activation Functions for "
         "Faster Learning and Better Performance. IEEE Access 9", 2021, "https://arxiv.org/abs/2009.03863"),
    "TanhSoft-1: softplus gated by tanh(alpha x) (alpha = 0.87 as in the paper's abstract).",
    params={"alpha": Param(0.87, low=0.0, trainable_allowed=True, doc="alpha")})


def _tanhsoft2_derivative(x, beta, gamma):
    e = torch.exp((gamma * x).clamp(max=20.0))
    u = beta * e
    t = torch.tanh(u)
    # past gamma x = 20 the sech^2 term is below e^{-1e8 beta}: the derivative is tanh(beta e^{gamma x}) = 1
    return torch.where(gamma * x > 20, torch.ones_like(x), t + x * gamma * u * (1 - t) * (1 + t))


tanhsoft2 = _spec(
    "tanhsoft2", "x * tanh(beta * exp(gamma * x))", r"f(x) = x \tanh(\beta e^{\gamma x})",
    _ref("Biswas, K., Kumar, S., Banerjee, S. & Pandey, A. K.", "TanhSoft: Dynamic Trainable Activation Functions for "
         "Faster Learning and Better Performance. IEEE Access 9", 2021, "https://arxiv.org/abs/2009.03863"),
    "TanhSoft-2: x gated by tanh(beta e^{gamma x}) (beta = 0.6, gamma = 1 as in the paper's abstract).",
    params={"beta": Param(0.6, low=0.0, low_open=True, doc="beta"),
            "gamma": Param(1.0, low=0.0, low_open=True, doc="gamma")},
    torch_derivative=_tanhsoft2_derivative)

sinlu = _spec(
    "sinlu", "(x + a * sin(b * x)) * sigmoid(x)", r"f(x) = (x + a \sin(b x))\,\sigma(x)",
    _ref("Paul, A., Bandyopadhyay, R., Yoon, J. H., Geem, Z. W. & Sarkar, R.", "SinLU: Sinu-Sigmoidal Linear Unit. "
         "Mathematics 10", 2022),
    "SiLU with a learned sinusoid added to the gated input.",
    params={"a": Param(1.0, trainable_allowed=True, doc="a, the sinusoid's amplitude (learned)"),
            "b": Param(1.0, trainable_allowed=True, doc="b, its frequency (learned)")},
    learned=("a", "b"))

# ----- exponential-linear -----------------------------------------------------------------------------------------

_BASIRAT = _ref("Basirat, M. & Roth, P. M.", "The Quest for the Golden Activation Function", 2018,
                "https://arxiv.org/abs/1808.00783")

elish = _spec(
    "elish", "Piecewise((x * sigmoid(x), x >= 0), (expm1(Min(x, 0)) * sigmoid(x), True))",
    r"f(x) = \begin{cases} x\,\sigma(x) & x \ge 0 \\ (e^x - 1)\,\sigma(x) & x < 0 \end{cases}", _BASIRAT,
    "Exponential linear squashing: SiLU above 0, an ELU gated by the sigmoid below.", breakpoints=lambda: (0.0,))

hard_elish = _spec(
    "hard_elish",
    "Piecewise((x * Min(Max((x + 1) / 2, 0), 1), x >= 0), (expm1(Min(x, 0)) * Min(Max((x + 1) / 2, 0), 1), True))",
    r"f(x) = \begin{cases} x \max(0, \min(1, \frac{x+1}{2})) & x \ge 0 \\ (e^x - 1)\max(0, \min(1, \frac{x+1}{2})) "
    r"& x < 0 \end{cases}", _BASIRAT,
    "ELiSH with the hard sigmoid as its gate.", breakpoints=lambda: (-1.0, 0.0, 1.0))

pelu = _spec(
    "pelu", "Piecewise((a / b * x, x >= 0), (a * expm1(Min(x, 0) / b), True))",
    r"f(x) = \begin{cases} \frac{a}{b} x & x \ge 0 \\ a (e^{x/b} - 1) & x < 0 \end{cases}",
    _ref("Trottier, L., Giguère, P. & Chaib-draa, B.", "Parametric Exponential Linear Unit for Deep Convolutional "
         "Neural Networks. ICMLA", 2017, "https://arxiv.org/abs/1605.09332"),
    "Parametric ELU: a and b learned, one pair per layer, both starting at 1 (the paper keeps them above 0.1).",
    params={"a": Param(1.0, low=0.0, low_open=True, trainable_allowed=True, doc="a > 0 (learned)"),
            "b": Param(1.0, low=0.0, low_open=True, trainable_allowed=True, doc="b > 0 (learned)")},
    learned=("a", "b"), breakpoints=lambda a, b: (0.0,))

ptelu = _spec(
    "ptelu", "Piecewise((x, x >= 0), (alpha * tanh(beta * Min(x, 0)), True))",
    r"f(x) = \begin{cases} x & x \ge 0 \\ \alpha \tanh(\beta x) & x < 0 \end{cases}",
    _ref("Duggal, R. & Gupta, A.", "P-TELU: Parametric Tan Hyperbolic Linear Unit Activation for Deep Neural Networks. "
         "ICCV Workshops", 2017),
    "Parametric tanh linear unit: a learned tanh below 0 (alpha, beta >= 0, started at 1 here: the paper's values "
    "were not confirmed).",
    params={"alpha": Param(1.0, low=0.0, trainable_allowed=True, doc="alpha >= 0 (learned)"),
            "beta": Param(1.0, low=0.0, trainable_allowed=True, doc="beta >= 0 (learned)")},
    learned=("alpha", "beta"), breakpoints=lambda alpha, beta: (0.0,),
    torch_derivative=lambda x, alpha, beta: torch.where(x >= 0, torch.ones_like(x),
                                                        alpha * beta * sech2(beta * x.clamp(max=0.0))))


def _srs(x, alpha, beta):
    """x / (x/alpha + e^{-x/beta}); below 0, multiplied through by E = e^{x/beta} <= 1 (no overflow)."""
    neg = x < 0
    e_neg = torch.exp(torch.where(neg, x, torch.zeros_like(x)) / beta)
    e_pos = torch.exp(-torch.where(neg, torch.zeros_like(x), x) / beta)
    return torch.where(neg, x * e_neg / (x * e_neg / alpha + 1), x / (x / alpha + e_pos))


def _srs_derivative(x, alpha, beta):
    neg = x < 0
    e_neg = torch.exp(torch.where(neg, x, torch.zeros_like(x)) / beta)
    e_pos = torch.exp(-torch.where(neg, torch.zeros_like(x), x) / beta)
    below = e_neg * (1 + x / beta) / (x * e_neg / alpha + 1) ** 2
    d = x / alpha + e_pos
    above = e_pos * (1 + x / beta) / d / d
    return torch.where(neg, below, above)


soft_root_sign = _spec(
    "soft_root_sign", "x / (x / alpha + exp(-x / beta))", r"f(x) = \frac{x}{\frac{x}{\alpha} + e^{-x/\beta}}",
    _ref("Zhou, Y., Li, D., Huo, S. & Kung, S.-Y.", "Soft-Root-Sign Activation Function", 2020,
         "https://arxiv.org/abs/2003.00547"),
    "Soft-root-sign: bounded above by alpha, non-monotonic below 0; alpha and beta learned.", aliases=("srs",),
    params={"alpha": Param(2.0, low=0.0, low_open=True, trainable_allowed=True, doc="alpha > 0 (learned)"),
            "beta": Param(3.0, low=0.0, low_open=True, trainable_allowed=True, doc="beta > 0 (learned)")},
    learned=("alpha", "beta"), torch_forward=_srs, torch_derivative=_srs_derivative)

shifted_softplus = _spec(
    "shifted_softplus", "Piecewise((log1p(expm1(Min(x, 1)) / 2), x < 1), (softplus(x) - log(2), True))",
    r"f(x) = \ln(\tfrac12 e^x + \tfrac12) = \mathrm{softplus}(x) - \ln 2",
    _ref("Schütt, K. T., Kindermans, P.-J., Sauceda, H. E., Chmiela, S., Tkatchenko, A. & Müller, K.-R.",
         "SchNet: A continuous-filter convolutional neural network for modeling quantum interactions. NeurIPS", 2017,
         "https://arxiv.org/abs/1706.08566"),
    "Softplus moved down so that f(0) = 0 (SchNet); near 0 as log1p(expm1(x)/2), which does not cancel.",
    torch_derivative=torch.sigmoid)


def _colu(x):
    """x / (1 - x e^{-(x + e^x)}); below 0 multiplied through by G = e^{x + e^x} <= e, which cannot overflow."""
    neg = x < 0
    xn = torch.where(neg, x, torch.zeros_like(x))
    xp = torch.where(neg, torch.zeros_like(x), x)
    g = torch.exp(xn + torch.exp(xn))
    return torch.where(neg, x * g / (g - x), x / (1 - xp * torch.exp(-xp - torch.exp(xp))))


def _colu_derivative(x):
    """(1 - x^2 (1 + e^x) E) / D^2, E = e^{-(x + e^x)}, D = 1 - x E; below 0 with G = 1/E:
    G (G - x^2 (1 + e^x)) / (G - x)^2."""
    neg = x < 0
    xn = torch.where(neg, x, torch.zeros_like(x))
    xp = torch.where(neg, torch.zeros_like(x), x)
    g = torch.exp(xn + torch.exp(xn))
    r = g / (g - xn)  # ~ 0 far below 0; each factor finite, so no 0 * inf
    below = r * (r - xn * (xn / (g - xn)) * (1 + torch.exp(xn)))
    e1 = torch.exp(-xp - torch.exp(xp))  # E
    e2 = torch.exp(-torch.exp(xp))  # E e^x, formed without inf * 0
    d = 1 - xp * e1
    above = (1 - xp * (xp * (e1 + e2))) / d / d
    return torch.where(neg, below, above)


colu = _spec(
    "colu", "x / (1 - x * exp(-(x + exp(x))))", r"f(x) = \frac{x}{1 - x e^{-(x + e^x)}}",
    _ref("Vagerwal, A.", "Deeper Learning with CoLU Activation", 2021, "https://arxiv.org/abs/2112.12078"),
    "Collapsing linear unit: near the identity above 0, decaying to 0 below.", torch_forward=_colu,
    torch_derivative=_colu_derivative)

# ----- polynomial and oscillating -----------------------------------------------------------------------------------

_NOEL = _ref("Noel, M. M., Bharadwaj, S., Muthiah-Nakarajan, V., Dutta, P. & Amali, G. B.", "Biologically Inspired "
             "Oscillating Activation Functions Can Bridge the Performance Gap between Biological and Artificial "
             "Neurons", 2021, "https://arxiv.org/abs/2111.04020")

cube = _spec(
    "cube", "x**3", r"f(x) = x^3",
    _ref("Chen, D. & Manning, C. D.", "A Fast and Accurate Dependency Parser using Neural Networks. EMNLP", 2014),
    "The cube: it multiplies every pair and triple of its inputs' features (Chen & Manning's parser).")

ncu = _spec("ncu", "x * (1 - x**2)", r"f(x) = x - x^3", _NOEL, "Non-monotonic cubic unit.",
            torch_forward=lambda x: x * (1 - x * x))  # factored: x - x^3 is inf - inf at the float max

squ = _spec("squ", "x * (x + 1)", r"f(x) = x^2 + x", _NOEL, "Shifted quadratic unit.",
            torch_forward=lambda x: x * (x + 1))

sqnl = _spec(
    "sqnl", "Min(Max(x, -2), 2) - Min(Max(x, -2), 2) * Abs(Min(Max(x, -2), 2)) / 4",
    r"f(x) = \begin{cases} 1 & x > 2 \\ x - \frac{x^2}{4} & 0 \le x \le 2 \\ x + \frac{x^2}{4} & -2 \le x < 0 \\ -1 "
    r"& x < -2 \end{cases}",
    _ref("Wuraola, A. & Patel, N.", "SQNL: A New Computationally Efficient Activation Function. IJCNN", 2018),
    "Square nonlinearity: tanh's shape from two parabolas.", init="xavier", breakpoints=lambda: (-2.0, 2.0),
    torch_forward=lambda x: _sqnl(x.clamp(-2.0, 2.0)))


def _sqnl(y):
    return y - y * y.abs() / 4

gcu = _spec(
    "gcu", "x * cos(x)", r"f(x) = x \cos x",
    _ref("Noel, M. M., Arunkumar, L., Trivedi, A. & Dutta, P.", "Growing Cosine Unit: A Novel Oscillatory Activation "
         "Function That Can Speedup Training and Reduce Parameters in Convolutional Neural Networks", 2021,
         "https://arxiv.org/abs/2108.12943"),
    "Growing cosine unit: oscillates with growing amplitude (no limit at +-inf).")

sine = _spec(
    "sine", "sin(w0 * x)", r"f(x) = \sin(\omega_0 x)",
    _ref("Sitzmann, V., Martel, J. N. P., Bergman, A. W., Lindell, D. B. & Wetzstein, G.", "Implicit Neural "
         "Representations with Periodic Activation Functions (SIREN). NeurIPS", 2020,
         "https://arxiv.org/abs/2006.09661"),
    "SIREN's periodic activation (no limit at +-inf); SIREN also needs its own weight initialisation.",
    aliases=("siren",), params={"w0": Param(30.0, low=0.0, low_open=True, doc="omega_0, the frequency")},
    init="xavier", torch_forward=lambda x, w0: _sine(x, w0),
    torch_derivative=lambda x, w0: w0 * _sine(x, w0, math.pi / 2))


gaussian = _spec(
    "gaussian", "exp(-x**2)", r"f(x) = e^{-x^2}",
    SURVEY,
    "The Gaussian bump, a classical activation (radial-basis style) with no single originating paper; the survey is "
    "cited for it.", init="xavier",
    exact=lambda x: mpmath.exp(-x * x),
    torch_derivative=lambda x: -2 * (x * torch.exp(-x * x)))

def _sinc(t):
    """sin(t) / t, 1 at 0 (unnormalised; torch.sinc is sin(pi t) / (pi t))."""
    zero = t == 0
    safe = torch.where(zero, torch.ones_like(t), t)
    return torch.where(zero, torch.ones_like(t), torch.sin(safe) / safe)


def _sinc_derivative(t):
    """(t cos t - sin t) / t^2; below |t| = 0.01, where that cancels, its series -t/3 + t^3/30 - t^5/840 + t^7/45360."""
    small = t.abs() < 0.01
    safe = torch.where(small, torch.ones_like(t), t)
    t2 = t * t
    series = t * (-1 / 3 + t2 * (1 / 30 + t2 * (-1 / 840 + t2 / 45360)))
    return torch.where(small, series, (safe * torch.cos(safe) - torch.sin(safe)) / (safe * safe))


def _bent_s(x):
    """sqrt(x^2 + 1), scaled by max(|x|, 1) so x^2 never overflows."""
    m = x.abs().clamp(min=1.0)
    return m * torch.sqrt((x / m) ** 2 + (1 / m) ** 2)


bent_identity = _spec(
    "bent_identity", "(sqrt(x**2 + 1) - 1) / 2 + x", r"f(x) = \frac{\sqrt{x^2 + 1} - 1}{2} + x", SURVEY,
    "The identity bent by half a hyperbola: slopes 1/2 and 3/2 far out (a classical activation; the survey is "
    "cited).",
    # (s - 1) as x^2 / (s + 1), which does not cancel near 0; x times x / (2 (s + 1)), which does not overflow
    torch_forward=lambda x: x * (x / (2 * (_bent_s(x) + 1))) + x,
    torch_derivative=lambda x: x / (2 * _bent_s(x)) + 1)

arctan = _spec(
    "arctan", "atan(x)", r"f(x) = \arctan x", SURVEY,
    "The arctangent, a classical sigmoid-shaped activation with no single originating paper (the survey is cited).",
    aliases=("atan",), init="xavier", torch_forward=torch.atan, torch_derivative=lambda x: 1 / (1 + x * x))

asinh = _spec(
    "asinh", "asinh(x)", r"f(x) = \sinh^{-1} x = \ln(x + \sqrt{x^2 + 1})", SURVEY,
    "The inverse hyperbolic sine: linear near 0, logarithmic far out (a classical activation; the survey is cited).",
    aliases=("arcsinh",), torch_forward=lambda x: _asinh(x),
    torch_derivative=lambda x: 1 / torch.where(x.abs() > 1, x.abs() * torch.sqrt(1 + 1 / (x * x)),
                                               torch.sqrt(1 + x * x)))

def _asinh(x):
    if torch.jit.is_tracing():  # the legacy ONNX exporter has no asinh: sign(x) ln(|x| + sqrt(x^2 + 1))
        return torch.sign(x) * torch.log(x.abs() + torch.sqrt(x * x + 1))
    return torch.asinh(x)


_BISWAS_ERF = _ref("Biswas, K., Banerjee, S. & Pandey, A. K.", "ErfAct and Pserf: Non-monotonic Smooth Trainable "
                   "Activation Functions. AAAI", 2022, "https://arxiv.org/abs/2109.04386")

erf_act = _spec(
    "erf_act", "x * erf(alpha * exp(beta * x))", r"f(x) = x \operatorname{erf}(\alpha e^{\beta x})", _BISWAS_ERF,
    "ErfAct: x gated by erf of an exponential; alpha and beta learned. Their starting values 0.75 and 0.75 are the "
    "authors' code's, not confirmed against the paper.",
    params={"alpha": Param(0.75, low=0.0, low_open=True, trainable_allowed=True, doc="alpha (learned)"),
            "beta": Param(0.75, low=0.0, low_open=True, trainable_allowed=True, doc="beta (learned)")},
    learned=("alpha", "beta"),
    # the exponentials combined, e^{beta x - alpha^2 e^{2 beta x}}, so no inf * 0 far out on either side
    torch_derivative=lambda x, alpha, beta: torch.erf(alpha * torch.exp(beta * x)) + x * (
        1.1283791670955126 * alpha * beta * torch.exp(beta * x - alpha * alpha * torch.exp(2 * beta * x))))

pserf = _spec(
    "pserf", "x * erf(gamma * softplus(delta * x))", r"f(x) = x \operatorname{erf}(\gamma \ln(1 + e^{\delta x}))",
    _BISWAS_ERF,
    "Pserf: a parametric Serf; gamma and delta learned. Their starting values 1.25 and 0.85 are from memory of the "
    "paper and one independent implementation, not confirmed.",
    params={"gamma": Param(1.25, low=0.0, low_open=True, trainable_allowed=True, doc="gamma (learned)"),
            "delta": Param(0.85, low=0.0, low_open=True, trainable_allowed=True, doc="delta (learned)")},
    learned=("gamma", "delta"),
    torch_derivative=lambda x, gamma, delta: _pserf_derivative(x, gamma, delta))


def _pserf_derivative(x, gamma, delta):
    sp = torch.nn.functional.softplus(delta * x, threshold=40.0)
    z = gamma * sp
    return torch.erf(z) + x * (1.1283791670955126 * gamma * delta * torch.sigmoid(delta * x) * torch.exp(-z * z))


flexible_relu = _spec(
    "flexible_relu", "relu(x) + b", r"f(x) = \max(0, x) + b",
    _ref("Qiu, S., Xu, X. & Cai, B.", "FReLU: Flexible Rectified Linear Units for Improving Convolutional Neural "
         "Networks. ICPR", 2018, "https://arxiv.org/abs/1706.08098"),
    "ReLU with a learned bias b, per channel (the paper's FReLU; not Funnel ReLU). b starts at 0 here: the paper "
    "reports it settling negative, and its starting value was not confirmed.",
    params={"num_parameters": Param(1, low=1, doc="number of channels (dim 1) with their own b; 1 shares it"),
            "b": Param(0.0, trainable_allowed=True, doc="b, the learned bias")},
    learned=("b",), per_channel="num_parameters", breakpoints=lambda num_parameters, b: (0.0,))


SPECS = (lecun_tanh, penalized_tanh, elliott, bipolar_sigmoid, lisht, isru, isrlu, cloglog, loglog, probit, laplace,
         absolute, shifted_relu, nlrelu, smelu, satlin, binary_step, reu, elu_plus_one, quick_gelu, e_swish, dsilu,
         logish, serf, smish, tanh_exp, phish, gish, golu, pflu, smu, tanhsoft1, tanhsoft2, sinlu, elish, hard_elish,
         pelu, ptelu, soft_root_sign, shifted_softplus, colu, cube, ncu, squ, sqnl, gcu, sine, gaussian, bent_identity,
         arctan, asinh, erf_act, pserf, flexible_relu)
