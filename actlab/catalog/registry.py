"""The registry: canonical names, aliases, lookup with did-you-mean, and the string form of an activation.

Names are matched case-, dash-, space- and underscore-insensitively, so "SiLU", "LeakyReLU", "leaky-relu" and
"leaky_relu" all resolve.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actlab.catalog.parsing import parse_activation
from actlab.catalog.spec import ActivationSpec
from actlab.errors import InvalidParameterError, UnknownActivationError

_SPECS: dict[str, ActivationSpec] = {}
_KEYS: dict[str, tuple[str, Mapping[str, Any]]] = {}  # normalized key -> (canonical name, fixed params)


def normalize(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


@dataclass(frozen=True)
class Resolved:
    """A looked-up activation: its spec, the parameters validated, the parameters an alias fixes, and whether the
    string asked for its parameters to be trained (``"swish(beta=1.5, trainable=True)"``)."""

    spec: ActivationSpec
    params: dict[str, Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    trainable: bool = False

    @property
    def text(self) -> str:
        return self.spec.signature(self.params)


def register(spec: ActivationSpec, *, replace: bool = False, verify: bool = True) -> ActivationSpec:
    """Add ``spec`` to the catalogue; it then appears in names(), get(), the CLI, docs and parametrized tests.

    A name or alias that collides with an existing entry raises ``ValueError`` unless ``replace=True``
    (which replaces the spec of the same canonical name). ``verify`` (the default; the built-ins, which the test
    suite holds to far more, skip it) runs the spec on a grid before accepting it: a forward or derivative that is
    not finite there, a derivative that disagrees with the forward's finite differences, or a forward that
    disagrees with the spec's mpmath function is refused with the point where it failed.
    """
    if not isinstance(spec, ActivationSpec):
        raise TypeError(f"register() takes an ActivationSpec, got {type(spec).__name__}")
    if verify:  # the built-ins skip it: the test suite holds them to far more, and an expression parses on first use
        _probe(spec)
        verify_spec(spec)
    keys: dict[str, tuple[str, dict[str, Any]]] = {normalize(spec.name): (spec.name, {})}
    for alias in spec.aliases:
        keys[normalize(alias)] = (spec.name, dict(spec.alias_presets.get(alias, {})))
    for alias, preset in spec.alias_presets.items():
        keys[normalize(alias)] = (spec.name, dict(preset))
    for key in keys:
        owner = _KEYS.get(key)
        if owner is not None and not (replace and owner[0] == spec.name):
            raise ValueError(
                f"cannot register {spec.name!r}: the name {key!r} already belongs to {owner[0]!r} "
                "(pass replace=True to replace a spec of the same name)"
            )
    if spec.name in _SPECS:
        if not replace:
            raise ValueError(f"{spec.name!r} is already registered (pass replace=True to replace it)")
        unregister(spec.name)
    _SPECS[spec.name] = spec
    _KEYS.update(keys)
    return spec


def _probe(spec: ActivationSpec) -> None:
    """Run ``torch_forward`` once at the defaults on a small float64 tensor: a function that fails or returns the
    wrong thing is refused here, not at a user's first call (or, for a scalar result, never)."""
    import torch

    shape = (2, 8) if spec.kind == "gated" else (2, 4)
    want = (2, 4)
    try:
        out = spec.torch_forward(torch.linspace(-3.0, 3.0, shape[0] * shape[1], dtype=torch.float64).reshape(shape),
                                 **spec.defaults)
    except Exception as error:
        raise ValueError(f"cannot register {spec.name!r}: torch_forward on a {shape} float64 tensor at the default "
                         f"parameters failed ({type(error).__name__}: {error})") from error
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want or out.dtype != torch.float64:
        got = f"a {out.dtype} tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else \
            type(out).__name__
        raise ValueError(f"cannot register {spec.name!r}: torch_forward on a {shape} float64 tensor returned {got}; "
                         f"expected a float64 tensor of shape {want}"
                         + (" (a gated kind halves the last dimension)" if spec.kind == "gated" else ""))


def verify_spec(spec: ActivationSpec) -> None:
    """Refuse a spec whose float64 forward or derivative is not finite on [-10, 10], whose derivative disagrees with
    central differences of its forward (away from its breakpoints), or whose forward disagrees with its mpmath
    ``exact`` function (an expression's, or one given by hand): at its default parameters, and again with each
    number moved to another allowed value."""

    if spec.kind != "elementwise":
        return
    for params in (spec.defaults, _moved_params(spec)):
        _verify_at(spec, params)


def _moved_params(spec: ActivationSpec) -> dict[str, Any]:
    """The defaults with each number moved to another allowed value (a derivative that ignores a parameter agrees
    with the forward at its default and nowhere else)."""
    out = spec.defaults
    for name, p in spec.params.items():
        if p.choices is not None or p.length is not None or isinstance(p.default, bool):
            continue
        for candidate in (p.default * 1.5 + 0.25, p.default * 0.5, p.default + 1):
            value = int(round(candidate)) if p.type is int else candidate
            try:
                spec.resolve_params({**out, name: value})
            except InvalidParameterError:
                continue
            out[name] = value
            break
    return out


def _verify_at(spec: ActivationSpec, params: dict[str, Any]) -> None:
    import numpy as np
    import torch

    x = torch.linspace(-10.0, 10.0, 401, dtype=torch.float64)
    where = f"cannot register {spec.name!r}"
    try:
        with torch.no_grad():
            y = spec.torch_forward(x, **params)
            d = spec.torch_derivative(x, **params)
    except Exception as error:
        raise ValueError(f"{where}: evaluating it at its default parameters failed ({type(error).__name__}: {error})"
                         ) from error
    for what, values in (("its forward", y), ("its derivative", d)):
        bad = ~torch.isfinite(values)
        if bad.any():
            raise ValueError(f"{where}: {what} is not finite at x = {x[bad][0].item():.6g} (of [-10, 10]), at the "
                             f"parameters {params}; an activation must be finite on the real line")
    kinks = np.asarray(list(spec.breakpoints(**params)) or [np.inf], dtype=np.float64)
    keep = np.min(np.abs(x.numpy()[:, None] - kinks[None, :]), axis=1) > 1e-2
    h = 1e-6
    with torch.no_grad():
        fd = (spec.torch_forward(x + h, **params) - spec.torch_forward(x - h, **params)) / (2 * h)
    off = (torch.abs(fd - d) > 1e-5 * (1 + torch.abs(fd))) & torch.from_numpy(keep)
    if off.any():
        i = int(torch.nonzero(off)[0])
        raise ValueError(f"{where}: its derivative disagrees with its forward at x = {x[i].item():.6g} ({params}): "
                         f"{d[i].item():.10g} against a finite difference of {fd[i].item():.10g} (if the function has "
                         "a kink there, declare it in breakpoints)")
    if spec.exact is not None:
        import mpmath

        for value in (-7.5, -2.0, -0.5, 0.25, 1.5, 6.0):
            got = float(spec.torch_forward(torch.tensor([value], dtype=torch.float64), **params)[0])
            with mpmath.workdps(30):
                want = float(spec.exact(mpmath.mpf(value), **params))
            if not abs(got - want) <= 1e-9 * abs(want) + 1e-12:
                raise ValueError(f"{where}: its torch forward gives {got!r} at x = {value} where its mpmath function "
                                 f"gives {want!r}")


def unregister(name: str) -> None:
    """Remove a registered activation (for tests and plugins that clean up after themselves)."""
    canonical = lookup(name)[0].name
    del _SPECS[canonical]
    for key in [k for k, (c, _) in _KEYS.items() if c == canonical]:
        del _KEYS[key]


def registered(spec: ActivationSpec) -> bool:
    """Whether this very spec object is the one registered under its name."""
    return _SPECS.get(spec.name) is spec


def is_name(text: str) -> bool:
    """Whether ``text`` is a registered name or alias as it stands (no parameters parsed)."""
    return isinstance(text, str) and normalize(text) in _KEYS


def names() -> list[str]:
    """Sorted canonical names of every registered activation."""
    return sorted(_SPECS)


def all_names() -> list[str]:
    """Canonical names and aliases, sorted."""
    out = set(_SPECS)
    for spec in _SPECS.values():
        out.update(spec.aliases)
        out.update(spec.alias_presets)
    return sorted(out)


def lookup(name: str) -> tuple[ActivationSpec, Mapping[str, Any]]:
    """(spec, parameters fixed by the alias) for a name or alias; raises UnknownActivationError."""
    if isinstance(name, ActivationSpec):
        return name, {}
    if not isinstance(name, str):
        raise UnknownActivationError(repr(name), ())
    hit = _KEYS.get(normalize(name))
    if hit is None:
        raise UnknownActivationError(name, suggest(name))
    return _SPECS[hit[0]], hit[1]


def spec(name: str) -> ActivationSpec:
    """The spec for a canonical name or alias, any case ("SiLU" -> swish)."""
    return lookup(name)[0]


def suggest(name: str, n: int = 3) -> list[str]:
    """Closest valid names to ``name``, best first."""
    candidates: dict[str, str] = {}
    for display in all_names():
        candidates.setdefault(normalize(display), display)
    key = normalize(name)
    close = difflib.get_close_matches(key, list(candidates), n=n, cutoff=0.6)
    if not close:  # a prefix or substring is often what was meant ("leaky" -> leaky_relu)
        close = [k for k in candidates if key and (k.startswith(key) or key in k)][:n]
    return [candidates[k] for k in close]


def resolve(activation: str | ActivationSpec, params: Mapping[str, Any] | None = None, *, tensor_ok: bool = False
            ) -> Resolved:
    """Turn ``"swish(beta=1.5)"`` (or a name plus ``params``) into a spec and validated parameters."""
    params = dict(params or {})
    fixed: Mapping[str, Any]
    positional: list[Any]
    inline: dict[str, Any]
    if isinstance(activation, ActivationSpec):
        found, fixed, positional, inline = activation, {}, [], {}
    elif is_name(activation):
        # a registered name used as is, even one that looks like a call ("<script>alert(1)</script>")
        found, fixed = lookup(activation)
        positional, inline = [], {}
    else:
        name, positional, inline = parse_activation(activation)
        found, fixed = lookup(name)
    trainable = inline.pop("trainable", False) if "trainable" not in found.params else False
    if isinstance(trainable, str) and trainable.lower() in ("true", "false"):
        trainable = trainable.lower() == "true"  # a bare word: tools that lower-case names (timm) pass "true"
    if not isinstance(trainable, bool):
        raise InvalidParameterError(found.name, "trainable", trainable, "trainable must be True or False")
    if trainable and not found.trainable_params:
        raise InvalidParameterError(found.name, "trainable", True, f"{found.name} has no parameter that can be trained")
    names_in_order = list(found.params)
    if len(positional) > len(names_in_order):
        raise InvalidParameterError(
            found.name, None, tuple(positional),
            f"{found.name} takes at most {len(names_in_order)} positional parameter(s) "
            f"({', '.join(names_in_order) or 'none'})",
        )
    merged: dict[str, Any] = dict(zip(names_in_order, positional))
    for source in (inline, params):
        for key, value in source.items():
            if key in merged:
                raise InvalidParameterError(found.name, key, value, f"parameter {key!r} is given twice")
            merged[key] = value
    for key, value in merged.items():
        if key in fixed and value != fixed[key]:
            raise InvalidParameterError(
                found.name, key, value,
                f"this alias fixes {key} = {fixed[key]!r}; use {found.name}({key}=...) to change it",
            )
    merged = {**fixed, **merged}
    return Resolved(found, found.resolve_params(merged, tensor_ok=tensor_ok), fixed, trainable)


def resolve_trainable(text: str) -> tuple[Resolved, bool]:
    """``"swish(beta=1.5)"`` with ``trainable=True`` allowed among the parameters (``swish(trainable=True)``):
    the resolved activation and whether its parameters are trained."""
    resolved = resolve(text)
    return resolved, resolved.trainable


ENTRY_POINT_GROUP = "actlab.activations"


class PluginError(ValueError):
    """A package's ``actlab.activations`` entry point failed to load, or collides with another's names."""


def load_plugins() -> list[str]:
    """Register the specs of every installed package that declares an ``actlab.activations`` entry point (its value:
    a spec, a list of specs, or a function returning either). Returns the names added. Each spec is verified as
    :func:`register` does; a failure or a name another package (or actlab) already uses raises
    :class:`PluginError` naming the package."""
    from importlib.metadata import entry_points

    added: list[str] = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        where = f"the {ENTRY_POINT_GROUP} entry point {point.name!r} ({point.value}" + (
            f", from {point.dist.name})" if point.dist is not None else ")")
        try:
            value = point.load()
            if callable(value) and not isinstance(value, ActivationSpec):
                value = value()
            specs = [value] if isinstance(value, ActivationSpec) else list(value)
        except Exception as error:
            raise PluginError(f"{where} failed to load: {type(error).__name__}: {error}") from error
        for item in specs:
            if not isinstance(item, ActivationSpec):
                raise PluginError(f"{where} gave a {type(item).__name__}; it must give ActivationSpecs")
            try:
                register(item)
            except ValueError as error:
                raise PluginError(f"{where}: {error}") from error
            _PLUGINS[item.name] = point.dist.name if point.dist is not None else point.name
            added.append(item.name)
    return added


_PLUGINS: dict[str, str] = {}  # activation name -> the distribution that provided it


def plugin_of(name: str) -> str | None:
    """The installed package that provided activation ``name``, or None for actlab's own and registered ones."""
    return _PLUGINS.get(spec(name).name)
