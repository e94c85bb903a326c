"""The activation catalogue: one spec per activation, the registry, name parsing and measured properties."""

from actlab.catalog.definitions import BUILTIN_SPECS
from actlab.catalog.registry import (
    Resolved,
    all_names,
    is_name,
    load_plugins,
    lookup,
    names,
    normalize,
    register,
    resolve,
    spec,
    suggest,
    unregister,
)
from actlab.catalog.spec import KINDS, ActivationSpec, Param, Reference

for _spec in BUILTIN_SPECS:
    register(_spec, verify=False)
del _spec
load_plugins()

__all__ = [
    "KINDS", "ActivationSpec", "Param", "Reference", "Resolved", "all_names", "is_name", "load_plugins", "lookup",
    "names", "normalize",
    "register", "resolve", "spec", "suggest", "unregister",
]
