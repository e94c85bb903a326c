"""PyTorch functions, one per activation in the catalogue: ``actlab.functional.swish(x, beta=1.5)``.

Every function is generated from its spec, so a spec added with :func:`actlab.register` gets one too
(``actlab.functional.<name>``, or :func:`apply` for names that are not identifiers). Parameters are validated
(an :class:`actlab.InvalidParameterError` names the activation, the parameter, the value and what is allowed);
a trainable parameter may be passed as a tensor and receives its gradient.

``prelu`` takes ``weight`` (a float or a tensor of one slope per channel of dim 1), as
``torch.nn.functional.prelu`` does; ``rrelu`` takes ``training`` (random slopes when True).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import torch

from actlab import catalog
from actlab.catalog.spec import ActivationSpec
from actlab.errors import UnknownActivationError
from actlab.kernels import run

__all__ = ["apply", "function_for"]


def apply(activation: str | ActivationSpec, x: torch.Tensor, *, training: bool = False, **params: Any) -> torch.Tensor:
    """Apply an activation given by name or string form: ``apply("swish(beta=1.5)", x)``."""
    if isinstance(activation, str) and torch.compiler.is_compiling() and all(
            isinstance(v, (bool, int, float, str)) for v in params.values()):
        # dynamo cannot trace the parser (ast.parse): the name and number parameters resolve to a constant once
        name, items = _resolved_constant(activation, tuple(sorted(params.items())))
        return run(catalog.registry._SPECS[name], x, dict(items), training=training)
    resolved = catalog.resolve(activation, params, tensor_ok=True)
    return run(resolved.spec, x, resolved.params, training=training)


def _resolved_constant(text: str, items: tuple[tuple[str, Any], ...]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """(canonical name, parameters in the spec's order) of a string form with number parameters; a hashable
    constant, so torch.compile records the result instead of tracing the parser."""
    from actlab.catalog.spec import VALIDATE_WHILE_COMPILING

    VALIDATE_WHILE_COMPILING[0] = True  # this runs eagerly, on real numbers: they are checked
    try:
        resolved = catalog.resolve(text, dict(items))
    finally:
        VALIDATE_WHILE_COMPILING[0] = False
    return resolved.spec.name, tuple(resolved.params.items())


# What torch.compiler.assume_constant_result does, written out: calling it at import would import torch._dynamo
# (and SymPy) with actlab. The string-form test under torch.compile fails if a release renames the mark.
_resolved_constant._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _docstring(spec: ActivationSpec) -> str:
    lines = [spec.summary or spec.name, "", f"Formula: ${spec.formula}$", ""]
    if spec.params:
        lines.append("Parameters:")
        lines += [f"    {k} (default {p.default!r}): {p.doc} [{p.describe(k)}]" for k, p in spec.params.items()]
        lines.append("")
    lines.append("References:")
    lines += [f"    {r}" for r in spec.references]
    return "\n".join(lines)


def function_for(spec: ActivationSpec) -> Callable[..., torch.Tensor]:
    """Build the functional form of ``spec`` with a real signature (``help()`` shows its parameters)."""
    if spec.name == "prelu":
        return _prelu
    parameters = [inspect.Parameter("x", inspect.Parameter.POSITIONAL_ONLY, annotation=torch.Tensor)]
    parameters += [
        inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default) for k, p in spec.params.items()
    ]
    if spec.stochastic:
        parameters.append(inspect.Parameter("training", inspect.Parameter.KEYWORD_ONLY, default=False))
    signature = inspect.Signature(parameters, return_annotation=torch.Tensor)

    def activation(*args: Any, **kwargs: Any) -> torch.Tensor:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{spec.name}{signature}: {exc}") from None
        arguments = dict(bound.arguments)
        x = arguments.pop("x")
        training = arguments.pop("training", False)
        params = spec.resolve_params(arguments, tensor_ok=True)
        return run(spec, x, params, training=training)

    activation.__name__ = activation.__qualname__ = spec.name if spec.name.isidentifier() else "activation"
    activation.__signature__ = signature  # type: ignore[attr-defined]
    activation.__doc__ = _docstring(spec)
    activation.__module__ = __name__
    return activation


def _prelu(x: torch.Tensor, weight: float | torch.Tensor = 0.25) -> torch.Tensor:
    """Parametric ReLU: x for x > 0, weight * x otherwise; ``weight`` is a float, or a tensor holding one slope
    or one per channel (dim 1; dim 0 of a 1-D input), as in ``torch.nn.functional.prelu``."""
    spec = catalog.spec("prelu")
    if isinstance(weight, torch.Tensor):
        params = {"num_parameters": max(weight.numel(), 1), "init": weight}
    else:
        params = spec.resolve_params({"init": weight})
    return run(spec, x, params)


def __getattr__(name: str) -> Callable[..., torch.Tensor]:
    """Functions for activations registered after import (``actlab.functional.my_act``)."""
    try:
        found, fixed = catalog.lookup(name)
    except UnknownActivationError:
        raise AttributeError(f"module 'actlab.functional' has no attribute {name!r}") from None
    if fixed or found.name != name:
        raise AttributeError(f"actlab.functional.{name}: use actlab.functional.{found.name} (alias)")
    return function_for(found)


for _name in catalog.names():
    setattr(sys.modules[__name__], _name, function_for(catalog.spec(_name)))
    __all__.append(_name)
del _name


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU, x * sigmoid(x): swish with beta fixed at 1 (Elfwing et al. 2017; Hendrycks & Gimpel 2016)."""
    return swish(x, beta=1.0)  # type: ignore[name-defined]  # noqa: F821 - defined by the loop above


__all__.append("silu")
