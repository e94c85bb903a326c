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


def register(spec: ActivationSpec, *, replace: bool = False) -> ActivationSpec:
    """Add ``spec`` to the catalogue; it then appears in names(), get(), the CLI, docs and parametrized tests.

    A name or alias that collides with an existing entry raises ``ValueError`` unless ``replace=True``
    (which replaces the spec of the same canonical name).
    """
    if not isinstance(spec, ActivationSpec):
        raise TypeError(f"register() takes an ActivationSpec, got {type(spec).__name__}")
    _probe(spec)
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
