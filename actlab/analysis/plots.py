"""The one place that draws an activation: f and f' on one pair of axes, several activations overlaid.

Used by ``actlab show``, the generated docs and (later) the HTML report's shape panel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from actlab import catalog
from actlab.catalog.registry import Resolved


def _resolve_all(items: Iterable[str | Resolved | catalog.ActivationSpec]) -> list[Resolved]:
    out = []
    for item in items:
        out.append(item if isinstance(item, Resolved) else catalog.resolve(item))
    return out


def curve(resolved: Resolved, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(f(x), f'(x), label) from the float64 reference. Gated kinds draw their gate; softmax cannot be drawn."""
    spec, params = resolved.spec, resolved.params
    label = resolved.text
    if spec.kind == "gated":
        gate = spec.gate
        assert gate is not None  # every gated spec has one
        gate_params = {k: v for k, v in params.items() if k in gate.params}
        spec, params = gate, gate.resolve_params(gate_params)
        label = f"{label} (gate: {spec.signature(params)})"
    elif spec.kind != "elementwise":
        raise ValueError(f"{spec.name} is a {spec.kind} activation over a whole dimension; it has no 1-D curve to plot")
    return spec.reference(x, **params), spec.derivative(x, **params), label


def plot_activations(items: Sequence[Any], ax: Any = None, x_range: tuple[float, float] = (-5.0, 5.0),
                     derivative: bool = True, points: int = 2001) -> Any:
    """Draw each activation (solid) and its derivative (dashed, same colour) on one pair of axes.

    ``items``: names, string forms (``"swish(beta=1.5)"``) or resolved activations. Returns the Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    resolved = _resolve_all(items)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    else:
        fig = ax.figure
    x = np.linspace(*x_range, points)
    for i, r in enumerate(resolved):
        f, df, label = curve(r, x)
        color = f"C{i % 10}"
        ax.plot(x, f, color=color, lw=2, label=f"{label}")
        if derivative:
            ax.plot(x, df, color=color, lw=1.3, ls="--", label=f"{label}'")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x) (solid), f'(x) (dashed)" if derivative else "f(x)")
    ax.set_xlim(*x_range)
    finite = [curve(r, x)[0] for r in resolved]
    lo = min(float(np.nanmin(f)) for f in finite)
    hi = max(float(np.nanmax(f)) for f in finite)
    span = max(hi - lo, 1.0)
    ax.set_ylim(max(lo, -span) - 0.1 * span, min(hi, x_range[1] * 1.2) + 0.1 * span)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig
