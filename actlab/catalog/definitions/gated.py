"""The GLU family: the last dimension is split into a value half ``a`` and a gate half ``b``, and the output
is ``a * g(b)`` with half the size. The order follows ``torch.nn.functional.glu`` (value first, gate second).

Each member is built from its gate's own spec, so the gate is defined once (Shazeer 2020, "GLU Variants").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from actlab.catalog.definitions import papers
from actlab.catalog.definitions.classic import identity, sigmoid
from actlab.catalog.definitions.rectifiers import relu
from actlab.catalog.definitions.smooth import gelu, swish
from actlab.catalog.spec import ActivationSpec, Param
from actlab.errors import ShapeError


def check_halves(x, name: str) -> None:
    """An odd (or missing) last dimension is a :class:`ShapeError` (no views made: this runs on every call)."""
    size = x.shape[-1] if x.ndim else None
    if size is None or size % 2:
        raise ShapeError(
            f"{name}: the last dimension is split into value and gate halves, so it must be even; "
            f"got shape {tuple(x.shape)} (last dimension {size})"
        )


def split_halves(x, name: str):
    """Split the last dimension in two; an odd (or missing) last dimension is a :class:`ShapeError`."""
    check_halves(x, name)
    h = x.shape[-1] // 2
    if isinstance(x, torch.Tensor):
        return x.chunk(2, dim=-1)  # one call for both views: several us cheaper than indexing with ... twice
    return x[..., :h], x[..., h:]


def gated_from(
    gate: ActivationSpec,
    name: str,
    *,
    formula: str,
    summary: str,
    references,
    aliases=(),
    params: Mapping[str, Param] | None = None,
    native=None,
) -> ActivationSpec:
    params = dict(params or {})

    def reference(x, **p: Any):
        a, b = split_halves(np.asarray(x, dtype=np.float64), name)
        return a * gate.reference(b, **p)

    def torch_forward(x, **p: Any):
        a, b = x.chunk(2, dim=-1)  # traceable (fx, export); the callers check the shape first
        if gate.native is not None and gate.native_covers(**p):
            return a * gate.native(b, **p)  # what compile and the exporters know best
        return a * gate.torch_forward(b, **p)

    def exact(a, b, **p: Any):
        assert gate.exact is not None
        return a * gate.exact(b, **p)

    return ActivationSpec(
        name=name,
        kind="gated",
        formula=formula,
        summary=summary,
        references=references,
        aliases=aliases,
        params=params,
        reference=reference,
        torch_forward=torch_forward,
        exact=exact,
        native=native,
        gate=gate,
    )


glu = gated_from(
    sigmoid,
    "glu",
    formula=r"\mathrm{GLU}(a, b) = a \otimes \sigma(b),\quad [a, b] = x",
    summary="Gated linear unit: value half times the sigmoid of the gate half.",
    references=(papers.DAUPHIN_2017,),
    aliases=("gated_linear_unit",),
    native=lambda x: torch.nn.functional.glu(x, dim=-1),
)

reglu = gated_from(
    relu,
    "reglu",
    formula=r"\mathrm{ReGLU}(a, b) = a \otimes \max(0, b)",
    summary="GLU with a ReLU gate.",
    references=(papers.SHAZEER_2020,),
)

geglu = gated_from(
    gelu,
    "geglu",
    formula=r"\mathrm{GEGLU}(a, b) = a \otimes \mathrm{GELU}(b)",
    summary="GLU with a GELU gate (exact or tanh).",
    references=(papers.SHAZEER_2020,),
    params={"approximate": gelu.params["approximate"]},
)

swiglu = gated_from(
    swish,
    "swiglu",
    formula=r"\mathrm{SwiGLU}(a, b) = a \otimes \mathrm{swish}_\beta(b)",
    summary="GLU with a swish gate (the feed-forward of PaLM and LLaMA).",
    references=(papers.SHAZEER_2020,),
    params={"beta": Param(1.0, low=0.0, doc="gate sharpness")},
)

bilinear = gated_from(
    identity,
    "bilinear",
    formula=r"\mathrm{Bilinear}(a, b) = a \otimes b",
    summary="The GLU family's member without a nonlinearity: the product of the two halves.",
    references=(papers.SHAZEER_2020, papers.DAUPHIN_2017),
)

SPECS = (glu, reglu, geglu, swiglu, bilinear)
