"""What an activation is: its parameters, formula, papers and its implementations.

An :class:`ActivationSpec` is the single source of truth for one activation. The float64 NumPy reference,
the closed-form derivative, the mpmath value used by the tests, the PyTorch forward and derivative, the
measured properties, the docs and the plots all hang off the one spec.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from actlab.errors import InvalidParameterError

if TYPE_CHECKING:
    from actlab.catalog.properties import Properties

KINDS = ("elementwise", "gated", "normalizing")
INITS = ("kaiming", "lecun", "xavier")  # an activation's recommended weight initialisation


@dataclass(frozen=True)
class Param:
    """One parameter of an activation.

    ``low``/``high`` bound numeric parameters (``None``: unbounded); ``low_open``/``high_open`` make a
    bound strict. ``choices`` lists the allowed values of a string parameter. ``trainable_allowed`` marks
    parameters that may become ``nn.Parameter``s.
    """

    default: Any
    low: float | None = None
    high: float | None = None
    trainable_allowed: bool = False
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    doc: str = ""
    length: int | None = None  # a vector of this many numbers (a Padé unit's coefficients); default: a tuple
    # How a module draws a learned parameter's first value, ``sample(shape) -> tensor`` (a paper's random init,
    # ACON's p1 and p2); None: the default value. Functions and references always use the default.
    sample: Callable[[tuple[int, ...]], Any] | None = None

    @property
    def type(self) -> type:
        if self.length is not None:
            return tuple
        if self.choices is not None:
            return type(self.choices[0])
        return int if isinstance(self.default, int) and not isinstance(self.default, bool) else float

    def describe(self, name: str) -> str:
        """The allowed values in words, e.g. ``"beta >= 0"`` or ``"approximate in {'none', 'tanh'}"``."""
        if self.choices is not None:
            return f"{name} in {{{', '.join(repr(c) for c in self.choices)}}}"
        parts = []
        if self.low is not None:
            parts.append(f"{_fmt(self.low)} {'<' if self.low_open else '<='} ")
        parts.append(name)
        if self.high is not None:
            parts.append(f" {'<' if self.high_open else '<='} {_fmt(self.high)}")
        if self.length is not None:
            return f"{name} must be {self.length} finite numbers"
        kind = "an integer" if self.type is int else "a finite number"
        bounds = "".join(parts)
        return f"{name} must be {kind}" + (f" with {bounds}" if bounds != name else "")

    def validate(self, activation: str, name: str, value: Any, *, tensor_ok: bool = False) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`InvalidParameterError`."""
        if self.length is not None:
            return self._validate_vector(activation, name, value, tensor_ok)
        if self.choices is not None:
            if value not in self.choices or not isinstance(value, type(self.choices[0])):
                raise InvalidParameterError(activation, name, value, self.describe(name))
            return value
        if tensor_ok and _is_tensor(value):
            return value
        if _compiling() and not VALIDATE_WHILE_COMPILING[0]:  # a traced number may be a symbol (dynamic=True)
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidParameterError(activation, name, value, self.describe(name))
        if self.type is int:
            if not isinstance(value, numbers.Integral):
                if float(value).is_integer():
                    value = int(value)  # type: ignore[call-overload]
                else:
                    raise InvalidParameterError(activation, name, value, self.describe(name))
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise InvalidParameterError(activation, name, value, self.describe(name))
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise InvalidParameterError(activation, name, value, self.describe(name))
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise InvalidParameterError(activation, name, value, self.describe(name))
        return value


    def _validate_vector(self, activation: str, name: str, value: Any, tensor_ok: bool) -> Any:
        allowed = f"{name} must be {self.length} finite numbers (a tuple, or a tensor of shape ({self.length},))"
        if _is_tensor(value):
            if not tensor_ok or tuple(value.shape) != (self.length,):
                raise InvalidParameterError(activation, name, value, allowed)
            return value
        try:
            items = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise InvalidParameterError(activation, name, value, allowed) from None
        if len(items) != self.length or not all(math.isfinite(v) for v in items) or any(
                isinstance(v, bool) for v in value):
            raise InvalidParameterError(activation, name, value, allowed)
        return items


def ordered(activation: str, low: str, high: str, strict: bool = True) -> Callable[[Mapping[str, Any]], None]:
    """A spec's ``check`` that parameter ``low`` stays below ``high`` (at or below where not ``strict``), refused with
    an :class:`InvalidParameterError` naming both."""
    def check(p: Mapping[str, Any]) -> None:
        if not (p[low] < p[high] if strict else p[low] <= p[high]):
            raise InvalidParameterError(activation, low, p[low],
                                        f"{low} must be {'<' if strict else '<='} {high} ({high} = {p[high]!r})")

    return check


def _fmt(v: float) -> str:
    return repr(v) if not float(v).is_integer() else str(int(v)) if abs(v) < 1e15 else repr(v)


# Set while code that runs eagerly during tracing (a constant-folded parse) resolves parameters: it sees numbers.
VALIDATE_WHILE_COMPILING = [False]


def _compiling() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.compiler.is_compiling())


def _is_tensor(value: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(value, torch.Tensor)


@dataclass(frozen=True)
class Reference:
    """A paper (or the documentation) that defines an activation."""

    authors: str
    title: str
    year: int
    url: str = ""

    def __str__(self) -> str:
        return f"{self.authors} ({self.year}). {self.title}." + (f" {self.url}" if self.url else "")


@dataclass(frozen=True, eq=False)
class ActivationSpec:
    """One activation, defined once.

    Required: ``name`` (canonical snake_case), ``formula`` (LaTeX), ``references``, and either ``expression`` or
    ``torch_forward``:

    - ``expression``: the formula as data, a SymPy string of ``x`` and the numeric parameters (see
      :mod:`actlab.catalog.expression`). From it come ``torch_forward``, the closed-form ``torch_derivative`` and
      parameter derivatives, the mpmath ``exact`` function and the float64 reference's limits at +-inf. Any of them
      given by hand (a better-conditioned form) is used instead, and the tests hold it to the expression's mpmath.
    - ``torch_forward``: the PyTorch expression in the input's floating type (half types are handed to it already
      in float32). It is what torch.compile, export and torch.func see, so it is written with traceable torch ops.

    Optional, derived when left out (an activation registered with only an expression or a torch expression works
    everywhere): ``reference`` (NumPy float64 forward; derived: ``torch_forward`` run in float64),
    ``derivative`` (NumPy closed form; derived: ``torch_derivative`` in float64) and ``torch_derivative`` (derived
    from the expression, else by forward-mode AD of ``torch_forward``). Built-ins give all three in closed form.

    Parameter functions all take the activation's parameters as keyword arguments.

    ``exact``: optional mpmath function of one ``mpf`` (gated: of the two halves) used by the tests as the
    high-precision truth. ``native``: optional PyTorch native op with the same semantics everywhere
    on finite inputs (at +-inf it may give NaN where the limit is finite, as PyTorch's own ops do), used whenever
    ``native_covers(**params)`` holds; by default, when no parameter is a tensor. ``native_inplace``: the native
    op's in-place form (what modules built with ``inplace=True`` run). ``native_traced=False``: the native op runs in
    eager mode only, and tracers (fx, torch.jit.trace, torch.export, torch.compile) record the expression instead, for
    an op some exporter cannot handle. ``breakpoints``: the points
    where the function or its derivative has a kink or jump. ``claims``: properties asserted at the default
    parameters; the tests check them against the measured ones. ``alias_presets`` fixes parameters for an
    alias (``silu`` is swish with beta = 1). ``check`` validates a combination of parameters. ``weight``:
    ``(parameter, size parameter)`` that modules always learn as ``weight``, a vector as long as the size
    parameter says (PReLU's slopes: ``("init", "num_parameters")``). ``init``: the weight initialisation this
    activation is meant to train with (a recipe's ``init="recommended"`` uses it): ``"kaiming"`` (He et al. 2015,
    normal with the activation's measured gain 1/sqrt(E[f(z)^2]), so the forward variance is kept), ``"lecun"``
    (LeCun normal, SELU's condition for self-normalisation) or ``"xavier"`` (Glorot & Bengio 2010, for sigmoid and
    tanh).

    ``train_forward``: the forward in training mode where it differs (RReLU's random slopes); such a spec is
    ``stochastic``. ``learned``: parameters that modules always learn as ``nn.Parameter``s (StarReLU's scale and
    bias, a Padé unit's coefficients); with ``per_channel`` (the name of an integer parameter, ``num_parameters``),
    scalar ones hold one value per channel of dim 1, as PReLU's slopes do.
    """

    name: str
    formula: str
    references: Sequence[Reference]
    torch_forward: Callable[..., Any] = None  # type: ignore[assignment]  # derived from ``expression`` when left out
    # reference, derivative, torch_derivative and native_covers are derived in __post_init__ when left out, so
    # after construction they are always set (elementwise kinds) and typed as such.
    reference: Callable[..., Any] = None  # type: ignore[assignment]
    kind: str = "elementwise"
    summary: str = ""
    aliases: Sequence[str] = ()
    alias_presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    derivative: Callable[..., Any] = None  # type: ignore[assignment]
    torch_derivative: Callable[..., Any] = None  # type: ignore[assignment]
    torch_param_derivatives: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    exact: Callable[..., Any] | None = None
    native: Callable[..., Any] | None = None
    native_covers: Callable[..., bool] = None  # type: ignore[assignment]
    native_inplace: Callable[..., Any] | None = None
    native_traced: bool = True
    breakpoints: Callable[..., Sequence[float]] = lambda **_: ()
    check: Callable[[Mapping[str, Any]], None] | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    gate: ActivationSpec | None = None
    weight: tuple[str, str] | None = None
    train_forward: Callable[..., Any] | None = None
    init: str = "kaiming"
    expression: str | None = None
    learned: tuple[str, ...] = ()
    per_channel: str | None = None

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"ActivationSpec {self.name!r}: init {self.init!r} is not one of {INITS}")
        if self.kind not in KINDS:
            raise ValueError(f"ActivationSpec {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if not _safe_name(self.name):
            raise ValueError(f"ActivationSpec name {self.name!r}: use a non-empty printable string")
        expr = self._expression()
        if self.torch_forward is None and expr is not None:
            object.__setattr__(self, "torch_forward", _deferred(expr, "torch"))
        if not callable(self.torch_forward):
            raise ValueError(f"ActivationSpec {self.name!r}: torch_forward = {self.torch_forward!r}; it is required "
                             "unless an expression is given: a function of a tensor (and the parameters as keywords) "
                             "that returns a tensor")
        self._check_learned()
        missing = {pname: (_deferred_param(expr, pname) if expr is not None and pname in expr.params
                           else _derived_param_derivative(self.torch_forward, pname))
                   for pname, p in self.params.items()
                   if (p.trainable_allowed or pname in self.learned) and p.length is None
                   and self.kind == "elementwise" and pname not in self.torch_param_derivatives}
        if missing:
            object.__setattr__(self, "torch_param_derivatives", {**self.torch_param_derivatives, **missing})
        if self.kind == "elementwise" and self.torch_derivative is None:
            derived = _deferred(expr, "torch_derivative") if expr is not None else \
                _derived_torch_derivative(self.torch_forward)
            object.__setattr__(self, "torch_derivative", derived)
        if self.exact is None and expr is not None:
            object.__setattr__(self, "exact", _deferred(expr, "mpmath"))
        if self.reference is None:
            object.__setattr__(self, "reference", _derived_reference(
                self.torch_forward, expr.limits if expr is not None and self.kind == "elementwise" else None))
        if self.kind == "elementwise" and self.derivative is None:
            object.__setattr__(self, "derivative", _derived_reference(self.torch_derivative))
        if self.native_covers is None:
            object.__setattr__(self, "native_covers", _no_tensor_params)
        # The public NumPy/mpmath functions fill in default parameters: spec("swish").reference(x) works.
        for attr in ("reference", "derivative", "exact", "breakpoints"):
            fn = getattr(self, attr)
            if fn is not None and not getattr(fn, "_fills_defaults", False):
                object.__setattr__(self, attr, _with_defaults(fn, self))

    def _expression(self) -> Any:
        """The parsed-on-demand :class:`~actlab.catalog.expression.Expression`, or None."""
        if self.expression is None:
            return None
        from actlab.catalog.expression import Expression

        numeric = [k for k, p in self.params.items() if p.choices is None and p.length is None]
        expr = Expression(self.expression, numeric)
        object.__setattr__(self, "_parsed", expr)
        return expr

    def _check_learned(self) -> None:
        for pname in self.learned:
            if pname not in self.params or not self.params[pname].trainable_allowed:
                raise ValueError(f"ActivationSpec {self.name!r}: learned names {pname!r}, which is not a parameter "
                                 "with trainable_allowed=True")
        if self.per_channel is not None:
            size = self.params.get(self.per_channel)
            if size is None or size.type is not int or not self.learned:
                raise ValueError(f"ActivationSpec {self.name!r}: per_channel = {self.per_channel!r} must name an "
                                 "integer parameter (the channel count) of a spec with learned parameters")

    @property
    def stochastic(self) -> bool:
        """Whether training mode draws random numbers (``train_forward`` is set)."""
        return self.train_forward is not None

    @property
    def parsed_expression(self) -> Any:
        """The :class:`~actlab.catalog.expression.Expression` of a spec written as one, else None."""
        return getattr(self, "_parsed", None)

    # ----- parameters -------------------------------------------------------------------------------

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}

    @property
    def trainable_params(self) -> tuple[str, ...]:
        return tuple(k for k, p in self.params.items() if p.trainable_allowed)

    def resolve_params(self, params: Mapping[str, Any], *, tensor_ok: bool = False) -> dict[str, Any]:
        """Defaults filled in, each value validated; raises :class:`InvalidParameterError` naming the problem."""
        out = self.defaults
        for key, value in params.items():
            if key not in self.params:
                allowed = (
                    f"its parameters are: {', '.join(self.params)}" if self.params else "it takes no parameters"
                )
                raise InvalidParameterError(self.name, key, value, f"{self.name} has no parameter {key!r}; {allowed}")
            p = self.params[key]
            out[key] = p.validate(self.name, key, value, tensor_ok=tensor_ok and p.trainable_allowed)
        if self.check is not None:
            self.check(out)
        return out

    def _repr_html_(self) -> str:
        """Formula, parameters, papers and a small plot of f and f' (Jupyter's display)."""
        from actlab.catalog.display import spec_html

        return spec_html(self)

    def signature(self, params: Mapping[str, Any] | None = None) -> str:
        """``name(p=v, ...)``, listing only the parameters that differ from the defaults."""
        params = params or {}
        shown = [f"{k}={params[k]!r}" for k in self.params if k in params and params[k] != self.params[k].default]
        return f"{self.name}({', '.join(shown)})" if shown else self.name

    # ----- measured properties ----------------------------------------------------------------------

    @cached_property
    def properties(self) -> Properties:
        """Properties measured numerically from the float64 reference at the default parameters."""
        from actlab.catalog.properties import measure

        return measure(self)

    def measure(self, **params: Any) -> Properties:
        """Properties measured at the given parameters."""
        from actlab.catalog.properties import measure

        return measure(self, **params)


def _no_tensor_params(**params: Any) -> bool:
    return not any(_is_tensor(v) for v in params.values())


def _deferred(expr: Any, attr: str) -> Callable[..., Any]:
    """``expr.<attr>``, built on the first call (SymPy parses and differentiates then, not at import)."""
    def call(*args: Any, **params: Any) -> Any:
        return getattr(expr, attr)(*args, **params)

    return call


def _deferred_param(expr: Any, name: str) -> Callable[..., Any]:
    built: list[Callable[..., Any]] = []

    def call(x: Any, **params: Any) -> Any:
        if not built:
            built.append(expr.param_derivative(name))
        return built[0](x, **params)

    return call


def _derived_torch_derivative(forward: Callable[..., Any]) -> Callable[..., Any]:
    """df/dx of an elementwise torch expression, by forward-mode AD (one jvp with a unit tangent: traceable by
    torch.compile and vmap-able, no graph kept). Inside a forward-mode level (the Function's own jvp rule, where a
    nested jvp is refused), by reverse mode on a detached copy instead."""
    def derivative(x: Any, **params: Any) -> Any:
        import torch
        import torch.autograd.forward_ad as fwAD

        if fwAD._current_level >= 0 and not torch.compiler.is_compiling() and \
                not torch._C._are_functorch_transforms_active():
            with torch.enable_grad():
                leaf = x.detach().requires_grad_()
                y = forward(leaf, **params)
                return torch.autograd.grad(y, leaf, torch.ones_like(y))[0]
        return torch.func.jvp(lambda t: forward(t, **params), (x,), (torch.ones_like(x),))[1]

    return derivative


def _derived_param_derivative(forward: Callable[..., Any], name: str) -> Callable[..., Any]:
    """df/d(parameter ``name``) elementwise, by forward-mode AD with a unit tangent on the parameter."""
    def derivative(x: Any, **params: Any) -> Any:
        import torch

        value = params.pop(name)
        p = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        return torch.func.jvp(lambda v: forward(x, **params, **{name: v}), (p,), (torch.ones_like(p),))[1]

    return derivative


def _derived_reference(fn: Callable[..., Any], limits: Callable[..., tuple[float, float]] | None = None
                       ) -> Callable[..., Any]:
    """A NumPy float64 function from a torch expression, evaluated in float64 on the CPU; with ``limits``
    (f(-inf), f(+inf) from an expression's mpmath), the infinities give those instead of what the float form
    gives there (often NaN: -inf * sigmoid(-inf))."""
    def reference(x: Any, **params: Any) -> Any:
        import torch

        arr = np.asarray(x, dtype=np.float64)
        t = torch.as_tensor(arr)
        with torch.no_grad():
            out = fn(t, **params).numpy()
        if np.isinf(arr).any():
            low, high = limits(**params) if limits is not None else _far_values(fn, params)
            out = np.where(arr == -np.inf, low, np.where(arr == np.inf, high, out))
        return out

    return reference


def _far_values(fn: Callable[..., Any], params: dict[str, Any]) -> tuple[float, float]:
    """A torch-only spec's f(-inf) and f(+inf), read from its float64 values at -+1e200 ... 1e300 (an
    activation that has a limit has reached it there; without an expression there is nothing better to ask)."""
    import torch

    from actlab.catalog.expression import FAR_EXPONENTS, limit_from

    out = []
    for sign in (-1.0, 1.0):
        with torch.no_grad():
            far = fn(torch.tensor([sign * 10.0**k for k in FAR_EXPONENTS], dtype=torch.float64), **params)
        out.append(limit_from(far.tolist()))
    return out[0], out[1]


def _with_defaults(fn: Callable[..., Any], spec: ActivationSpec) -> Callable[..., Any]:
    def call(*args: Any, **params: Any) -> Any:
        # NaN in -> NaN out and overflow -> inf are the intended results, not warnings.
        with np.errstate(all="ignore"):
            return fn(*args, **{**spec.defaults, **params})

    call._fills_defaults = True  # type: ignore[attr-defined]
    call.__doc__ = fn.__doc__
    return call


def _safe_name(name: str) -> bool:
    """Third-party names may hold any printable text (the reports escape it); built-ins are snake_case."""
    return isinstance(name, str) and name.strip() != "" and name.isprintable()
