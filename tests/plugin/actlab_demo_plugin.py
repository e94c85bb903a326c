"""A tiny third-party package for the plug-in test: one activation, declared by an ``actlab.activations`` entry
point in its (test-made) distribution metadata."""

from actlab.catalog.spec import ActivationSpec, Reference

bent_identity = ActivationSpec(
    name="demo_bent_identity",
    formula=r"\frac{\sqrt{x^2 + 1} - 1}{2} + x",
    summary="A plug-in's activation.",
    references=(Reference("actlab tests", "an activation from an installed plug-in", 2026),),
    expression="(sqrt(x**2 + 1) - 1) / 2 + x",
)

SPECS = [bent_identity]
