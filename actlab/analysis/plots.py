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


def learned_sites(model: Any) -> list[tuple[str, Any]]:
    """(path, module) of every actlab activation in ``model`` that learns parameters (PAU, ACON, a trained swish
    beta, PReLU's slopes)."""
    from actlab.nn import Activation

    return [(name or type(m).__name__, m) for name, m in model.named_modules()
            if isinstance(m, Activation) and m.spec.kind == "elementwise" and any(True for _ in m.parameters())]


def plot_learned(model: Any, x_range: tuple[float, float] = (-5.0, 5.0), max_channels: int = 16,
                 points: int = 801) -> Any:
    """The shapes a model's learnable activations have learned: one panel per site, the curve at the module's current
    parameters (one line per channel, the first ``max_channels``, where they are learned per channel) over the curve
    at the spec's defaults (grey, dashed). Returns the Figure; a model without learnable activations is a
    ValueError."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import torch

    sites = learned_sites(model)
    if not sites:
        raise ValueError("the model has no actlab activation with learned parameters (get('pau'), "
                         "get('swish', trainable=True), ...)")
    cols = min(3, len(sites))
    rows = (len(sites) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), layout="constrained", squeeze=False)
    x = torch.linspace(*x_range, points)
    for ax, (path, module) in zip(axes.flat, sites):
        spec = module.spec
        # channels: the longest 1-D learned tensor that is not a coefficient vector (a Padé unit's)
        channels = max((p.numel() for name, p in module.named_parameters() if p.dim() == 1 and (
            spec.weight is not None or spec.params[name].length is None)), default=1)
        was_training = module.training
        module.eval()
        with torch.no_grad():  # the module itself, on a (points, C) grid: channel c sees its own parameters
            y = module(x[:, None].expand(points, channels).contiguous() if channels > 1 else x)
        module.train(was_training)
        base = spec.reference(x.double().numpy(), **spec.defaults)
        ax.plot(x.numpy(), base, color="0.6", ls="--", lw=1.2, label=f"{spec.name} at its defaults")
        ys = y.double().numpy().reshape(points, -1)
        for c in range(min(ys.shape[1], max_channels)):
            ax.plot(x.numpy(), ys[:, c], lw=1.2, color=f"C{c % 10}", label="learned" if c == 0 else None)
        shown = f", {min(ys.shape[1], max_channels)} of {ys.shape[1]} channels" if ys.shape[1] > 1 else ""
        ax.set_title(f"{path}: {spec.name}{shown}", fontsize=9)
        ax.axhline(0, color="0.8", lw=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(sites):]:
        ax.set_visible(False)
    return fig
