"""The built-in activations, grouped by family. Each module exposes ``SPECS``."""

from actlab.catalog.definitions import (
    classic,
    exponential,
    frameworks,
    gated,
    learnable,
    rectifiers,
    smooth,
    survey,
)

BUILTIN_SPECS = (*classic.SPECS, *rectifiers.SPECS, *exponential.SPECS, *smooth.SPECS, *gated.SPECS,
                 *frameworks.SPECS, *learnable.SPECS, *survey.SPECS)
