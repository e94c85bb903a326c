"""Formulas as data: an activation written once as a SymPy expression, from which actlab derives its PyTorch forward,
its closed-form derivative (and each parameter's), and the mpmath function the tests hold everything to.

The expression uses ``x`` and the activation's numeric parameters by name, SymPy's functions (``exp``, ``tanh``,
``erf``, ``sqrt``, ``Piecewise``, ``Min``/``Max``...) and the well-conditioned pieces below, which keep a float
computation accurate where the textbook form cancels or overflows, and which SymPy differentiates in closed form:

- ``softplus(u)`` = log(1 + e^u), derivative ``sigmoid(u)``;
- ``sigmoid(u)`` = 1 / (1 + e^-u), derivative ``sigmoid(u) * sigmoid(-u)`` (no 1 - s cancellation);
- ``log1p(u)``, ``expm1(u)`` and ``relu(u)`` = max(u, 0) (derivative ``step(u)``: 1 above 0, else 0).

In a ``Piecewise``, both branches are computed and one is selected, so a branch that overflows where it is not
selected (``expm1`` of a large positive input) must be written on a clamped input (``expm1(Min(x, 0))``), or its
gradient is 0 * inf. The mpmath function evaluates the same expression with 40+ digits and an unbounded exponent,
so it is the truth the float forms are measured against.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Expression", "ExpressionError"]


class ExpressionError(ValueError):
    """An expression that does not parse, names an unknown symbol, or uses a function no backend has."""


@functools.cache
def _pieces() -> dict[str, Any]:
    """The well-conditioned pieces as SymPy functions with their closed-form derivatives (built on first use: SymPy
    is imported only when an expression is parsed, not when actlab is)."""
    import sympy as sp

    class softplus(sp.Function):  # noqa: N801 - SymPy's function names are lower case
        def fdiff(self, argindex: int = 1) -> Any:
            return sigmoid(self.args[0])

    class sigmoid(sp.Function):  # noqa: N801
        def fdiff(self, argindex: int = 1) -> Any:
            return sigmoid(self.args[0]) * sigmoid(-self.args[0])

    class log1p(sp.Function):  # noqa: N801
        def fdiff(self, argindex: int = 1) -> Any:
            return 1 / (1 + self.args[0])

    class expm1(sp.Function):  # noqa: N801
        def fdiff(self, argindex: int = 1) -> Any:
            return sp.exp(self.args[0])

    class step(sp.Function):  # noqa: N801 - 1 above 0, else 0; its derivative is 0 wherever it is defined
        def fdiff(self, argindex: int = 1) -> Any:
            return sp.Integer(0)

    class relu(sp.Function):  # noqa: N801
        def fdiff(self, argindex: int = 1) -> Any:
            return step(self.args[0])

    return {"softplus": softplus, "sigmoid": sigmoid, "log1p": log1p, "expm1": expm1, "relu": relu, "step": step}


PIECE_NAMES = ("softplus", "sigmoid", "log1p", "expm1", "relu", "step")


def _torch_functions(dtype: Any) -> dict[str, Callable[..., Any]]:
    import torch
    import torch.nn.functional as F

    from actlab.catalog.numerics import erfc

    def minimum(*args: Any) -> Any:
        return _fold(args, torch.minimum, "max")

    def maximum(*args: Any) -> Any:
        return _fold(args, torch.maximum, "min")

    def _fold(args: Sequence[Any], op: Callable[..., Any], bound: str) -> Any:
        numbers = [float(a) for a in args if isinstance(a, (int, float))]
        tensors = [a for a in args if not isinstance(a, (int, float))]  # tensors, or a tracer's proxies
        if not tensors:
            return (min if bound == "max" else max)(numbers)
        out = functools.reduce(op, tensors)
        if numbers:
            limit = (min if bound == "max" else max)(numbers)
            out = out.clamp(max=limit) if bound == "max" else out.clamp(min=limit)
        return out

    def where(cond: Any, a: Any, b: Any) -> Any:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):  # else torch makes a float32 tensor
            a = torch.tensor(float(a), dtype=dtype)
        return torch.where(cond, a, b)

    def expm1_exportable(u: Any) -> Any:
        """e^u - 1 to full precision from exp and log (Kahan's (w - 1) u / log w, w = e^u), which every exporter
        has (the legacy ONNX exporter lacks expm1); the second where keeps log(1) = 0 out of any gradient."""
        w = torch.exp(u)
        near = (u.abs() < 0.5) & (w != 1)  # only near 0 does w - 1 cancel; far out (subnormal w) it is exact
        safe = torch.where(near, w, torch.full_like(w, 2.0))
        kahan = (safe - 1) * torch.where(near, u, torch.ones_like(u)) / torch.log(safe)
        return torch.where(near, kahan, torch.where(w == 1, u, w - 1))

    def step_fn(u: Any) -> Any:
        return (u > 0).to(u.dtype) if isinstance(u, torch.Tensor) else float(u > 0)

    def softplus_fn(u: Any) -> Any:  # PyTorch's default threshold 20 returns u there: 2e-9 off in float64
        return F.softplus(u, threshold=40.0)

    def softplus_math(u: float) -> float:
        return math.log1p(math.exp(u)) if u < 0 else u + math.log1p(math.exp(-u))

    tensor_fns: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "softplus": (softplus_fn, softplus_math), "sigmoid": (torch.sigmoid, lambda u: 1 / (1 + math.exp(-u))),
        "log1p": (torch.log1p, math.log1p), "expm1": (expm1_exportable, math.expm1),
        "relu": (torch.relu, lambda u: max(u, 0.0)), "erfc": (erfc, math.erfc),
        "exp": (torch.exp, math.exp), "log": (torch.log, math.log), "sqrt": (torch.sqrt, math.sqrt),
        "sin": (torch.sin, math.sin), "cos": (torch.cos, math.cos), "tanh": (torch.tanh, math.tanh),
        "erf": (torch.erf, math.erf), "atan": (torch.atan, math.atan), "asinh": (torch.asinh, math.asinh),
        "sinh": (torch.sinh, math.sinh), "cosh": (torch.cosh, math.cosh), "sign": (torch.sign, _sign),
    }
    # A function of the parameters alone (xIELU's softplus(alpha_p)) is a Python number when they are numbers.
    lifted = {name: _lift(t, m) for name, (t, m) in tensor_fns.items()}
    # Comparisons through Python's operators: either side may be a number (SReLU's x > t_left prints as
    # lt(t_left, x)), and tracers' proxies take them too.
    compare = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "pow": operator.pow}
    return {**lifted, **compare, "where": where, "step": step_fn, "Min": minimum, "Max": maximum, "Heaviside": step_fn,
            "DiracDelta": lambda u: u * 0}


def _sign(u: float) -> float:
    return math.copysign(1.0, u) if u else 0.0


def _lift(tensor_fn: Callable[..., Any], math_fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(u: Any) -> Any:
        return math_fn(float(u)) if isinstance(u, (int, float)) else tensor_fn(u)

    return call


def _mpmath_functions() -> dict[str, Callable[..., Any]]:
    import mpmath

    def softplus_mp(u: Any) -> Any:
        return mpmath.log1p(mpmath.exp(u)) if u < 0 else u + mpmath.log1p(mpmath.exp(-u))

    return {
        "softplus": softplus_mp, "sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)), "log1p": mpmath.log1p,
        "expm1": mpmath.expm1, "relu": lambda u: u if u > 0 else 0 * u, "step": lambda u: mpmath.mpf(u > 0),
        "Heaviside": lambda u, *_: mpmath.mpf(u > 0), "Min": min, "Max": max, "DiracDelta": lambda u: 0 * u,
        "sign": mpmath.sign,
    }


def _printer_class() -> type:
    from sympy.printing.pytorch import TorchPrinter

    class Printer(TorchPrinter):
        """SymPy's torch printer, with the functions it lacks printed as plain calls (looked up in lambdify's
        namespace, where :func:`_torch_functions` puts them)."""

        def _print_Function(self, expr: Any) -> str:
            name = type(expr).__name__
            if name in PIECE_NAMES or name in ("erfc", "Heaviside", "DiracDelta", "sign"):
                return f"{name}({', '.join(self._print(a) for a in expr.args)})"
            return super()._print_Function(expr)

        def _print_Heaviside(self, expr: Any) -> str:
            return f"Heaviside({self._print(expr.args[0])})"

        def _print_DiracDelta(self, expr: Any) -> str:
            return f"DiracDelta({self._print(expr.args[0])})"

        def _print_Min(self, expr: Any) -> str:
            return f"Min({', '.join(self._print(a) for a in expr.args)})"

        def _print_Max(self, expr: Any) -> str:
            return f"Max({', '.join(self._print(a) for a in expr.args)})"

    return Printer


class Expression:
    """A SymPy expression of ``x`` and the parameters ``params`` (numeric ones; string parameters cannot appear).

    ``torch``: ``f(x, **params)`` in torch ops; ``torch_derivative`` / ``param_derivative(name)``: closed forms from
    SymPy's derivative; ``mpmath``: ``f(mpf, **params)``. Everything is built on first use, so a catalogue of
    expressions costs nothing at import.
    """

    def __init__(self, text: str, params: Sequence[str] = ()) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"expression = {text!r}: give a SymPy formula of x, e.g. 'x * sigmoid(x)'")
        self.text = text
        self.params = tuple(params)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @functools.cached_property
    def symbols(self) -> tuple[Any, ...]:
        import sympy as sp

        return tuple(sp.Symbol(name, real=True) for name in ("x", *self.params))

    @functools.cached_property
    def sympy(self) -> Any:
        import sympy as sp

        names = {s.name: s for s in self.symbols}
        try:
            # evaluate=False keeps the form as written: SymPy would rewrite erfc(-z) as 2 - erfc(z), which cancels
            expr = sp.sympify(self.text, locals={**_pieces(), **names}, evaluate=False)
        except (sp.SympifyError, SyntaxError, TypeError) as error:
            raise ExpressionError(f"expression {self.text!r} does not parse: {error}") from error
        unknown = {s.name for s in expr.free_symbols} - set(names)
        if unknown:
            raise ExpressionError(f"expression {self.text!r} uses {', '.join(sorted(unknown))}, which is neither x "
                                  f"nor a parameter ({', '.join(self.params) or 'it has none'})")
        return expr

    def _lambdify(self, expr: Any, modules: list[Any]) -> Callable[..., Any]:
        import sympy as sp

        printer = None
        if modules[-1] == "torch":  # the pieces above and Min/Max print as calls of the namespace's functions
            from sympy.printing.pytorch import TorchPrinter

            printer = _printer_class()({"fully_qualified_modules": False, "allow_unknown_functions": True})
            del TorchPrinter
        try:
            return sp.lambdify(self.symbols, expr, modules=modules, printer=printer)
        except Exception as error:  # SymPy raises several types for a function a printer cannot write
            raise ExpressionError(f"expression {self.text!r}: {error}") from error

    def _keyword(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        names = self.params

        def call(x: Any, **params: Any) -> Any:
            return fn(x, *[params[name] for name in names])

        return call

    def _per_dtype(self, expr: Any) -> Callable[..., Any]:
        """One function per floating type of x (constants made in that type), looked up by x.dtype."""
        built: dict[Any, Callable[..., Any]] = {}
        numeric = _numeric(expr)

        def call(x: Any, *values: Any) -> Any:
            dtype = getattr(x, "dtype", None)
            fn = built.get(dtype)
            if fn is None:
                fn = built[dtype] = self._lambdify(numeric, [_torch_functions(dtype), "torch"])
            return fn(x, *values)

        return call

    @functools.cached_property
    def torch(self) -> Callable[..., Any]:
        return self._keyword(self._per_dtype(self.sympy))

    def derivative_expr(self, wrt: str = "x") -> Any:
        import sympy as sp

        symbol = {s.name: s for s in self.symbols}[wrt]
        return sp.diff(self.sympy, symbol)

    @functools.cached_property
    def torch_derivative(self) -> Callable[..., Any]:
        return self._keyword(self._broadcast(self._per_dtype(self.derivative_expr())))

    def param_derivative(self, name: str) -> Callable[..., Any]:
        return self._keyword(self._broadcast(self._per_dtype(self.derivative_expr(name))))

    @staticmethod
    def _broadcast(fn: Callable[..., Any]) -> Callable[..., Any]:
        """A derivative that SymPy simplified to a constant (squared ReLU's second half, a linear piece) still
        returns a tensor of x's shape."""
        def call(x: Any, *values: Any) -> Any:
            out = fn(x, *values)
            if isinstance(out, (int, float)) or getattr(out, "shape", None) != x.shape:
                import torch

                out = torch.as_tensor(out, dtype=x.dtype, device=x.device).expand(x.shape) + torch.zeros_like(x)
            return out

        return call

    @functools.cached_property
    def mpmath(self) -> Callable[..., Any]:
        fn = self._keyword(self._lambdify(self.sympy, [_mpmath_functions(), "mpmath"]))

        def exact(x: Any, **params: Any) -> Any:
            import mpmath

            return fn(x, **{k: (mpmath.mpf(v) if isinstance(v, (int, float)) else v) for k, v in params.items()})

        return exact

    @functools.cached_property
    def mpmath_derivative(self) -> Callable[..., Any]:
        """df/dx in closed form, evaluated by mpmath (what the tests compare the float derivatives with)."""
        fn = self._keyword(self._lambdify(self.derivative_expr(), [_mpmath_functions(), "mpmath"]))

        def exact(x: Any, **params: Any) -> Any:
            import mpmath

            return fn(x, **{k: (mpmath.mpf(v) if isinstance(v, (int, float)) else v) for k, v in params.items()})

        return exact

    def limits(self, **params: Any) -> tuple[float, float]:
        """f(-inf) and f(+inf) as float64, read from the values at -+10^200, 10^220, ..., 10^300 (:func:`limit_from`):
        by mpmath, or where its exponents explode (e^{-e^{-x}}), by the float64 torch form."""
        import mpmath

        out = []
        for sign in (-1, 1):
            try:
                with mpmath.workdps(30):
                    values = [float(self.mpmath(sign * mpmath.mpf(10) ** k, **params)) for k in FAR_EXPONENTS]
            except (OverflowError, ValueError, MemoryError, ZeroDivisionError):
                import torch

                x = torch.tensor([sign * 10.0**k for k in FAR_EXPONENTS], dtype=torch.float64)
                with torch.no_grad():
                    values = self.torch(x, **params).tolist()
            out.append(limit_from(values))
        return out[0], out[1]


FAR_EXPONENTS = (200, 220, 240, 260, 280, 300)


def limit_from(values: Sequence[float]) -> float:
    """The limit that f at far points (10^200, 10^220, ..., 10^300, in order) shows: their common value where they
    agree to 1e-12; +-inf where they grow in magnitude with one sign (log diverges slowly) or overflow; else NaN (an
    oscillation has no limit: x cos x changes sign among them)."""
    if any(math.isnan(v) for v in values):
        return math.nan
    last = values[-1]
    if all(abs(v) < 1e-100 for v in values):  # vanishing, even while it oscillates (sinc): the limit is 0
        return 0.0
    same_sign = all(v > 0 for v in values) or all(v < 0 for v in values)
    if math.isinf(last) and same_sign and all(math.isinf(v) for v in values):
        return last
    if all(abs(v - last) <= 1e-12 * max(abs(last), 1e-300) for v in values):
        return last
    growing = all(abs(a) <= abs(b) for a, b in zip(values, values[1:])) and abs(values[0]) < abs(last)
    if same_sign and growing:
        return math.copysign(math.inf, last)
    return math.nan


def _numeric(expr: Any) -> Any:
    """Constants such as sqrt(pi) as floats: torch's functions take tensors, not SymPy's numbers."""
    import sympy as sp

    return expr.xreplace({c: sp.Float(c, 20) for c in expr.atoms(sp.NumberSymbol)})
