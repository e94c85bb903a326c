"""Exceptions raised by actlab.

Every error names what was wrong (the activation, the argument, the value) and what is allowed instead.
"""

from __future__ import annotations


class ActlabError(Exception):
    """Base class of every error actlab raises on purpose."""


class ActlabFailure(ActlabError):
    """Something failed that the user did not get wrong in what they typed (a corrupt or locked store, a full disk):
    the command line exits 1 for these, not 2 (a usage error)."""


class UnknownActivationError(ActlabError, LookupError):
    """An activation name that is not in the catalogue.

    ``suggestions`` holds the closest valid names, best first.
    """

    def __init__(self, name: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.name = name
        self.suggestions = tuple(suggestions)
        message = f"unknown activation {name!r}"
        if self.suggestions:
            quoted = " or ".join(repr(s) for s in self.suggestions)
            message += f"; did you mean {quoted}?"
        message += " (actlab.names() lists every activation)"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return self.args[0]


class InvalidParameterError(ActlabError, ValueError):
    """A parameter that an activation does not take, or a value outside its domain."""

    def __init__(self, activation: str, parameter: str | None, value: object, allowed: str):
        self.activation = activation
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        if parameter is None:
            message = f"{activation}: {allowed} (got {value!r})"
        else:
            message = f"{activation}: parameter {parameter!r} = {value!r} is not allowed; {allowed}"
        super().__init__(message)


class ActivationSyntaxError(InvalidParameterError):
    """A malformed activation string such as ``"swish(beta=)"``."""

    def __init__(self, text: str, problem: str):
        self.text = text
        ActlabError.__init__(
            self,
            f"cannot parse activation {text!r}: {problem}; "
            "expected NAME or NAME(param=value, ...), e.g. 'swish(beta=1.5)'",
        )
        self.activation, self.parameter, self.value, self.allowed = text, None, text, problem


class ShapeError(ActlabError, ValueError):
    """An input whose shape an activation cannot take (e.g. an odd last dimension for a gated kind)."""


# What the ``lab`` extra installs (import names): a ModuleNotFoundError for one of them means the extra is missing.
LAB_MODULES = frozenset({"typer", "rich", "click", "matplotlib", "scipy", "pandas", "sklearn", "mnist1d", "plotly",
                         "tomli", "jinja2", "pydantic", "platformdirs"})


def lab_hint(exc: ImportError, feature: str) -> ImportError:
    """``exc`` unchanged, or, when it names a module of the lab extra, a ModuleNotFoundError that says what to
    install (raise it ``from exc``)."""
    root = (exc.name or "").split(".")[0]
    if root not in LAB_MODULES:
        return exc
    return ModuleNotFoundError(f"{feature} needs the lab extra ({root} is not installed): pip install "
                               "'actlab[lab]'", name=exc.name)
