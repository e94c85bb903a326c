"""An activation spec as HTML for notebooks: formula, parameters, papers and a small inline SVG of f and f'.

The plot is drawn here from the float64 reference with NumPy alone (no matplotlib), so displaying a spec works on
the core install; gated kinds draw their gate, normalizing kinds have no 1-D curve.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

ActivationSpec = Any  # actlab.catalog.spec.ActivationSpec, which imports this module to display itself

_WIDTH, _HEIGHT, _PAD = 260.0, 170.0, 14.0


def _curve(spec: ActivationSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
    drawn, note = spec, ""
    if spec.kind == "gated" and spec.gate is not None:
        drawn, note = spec.gate, f" (gate: {spec.gate.name})"
    elif spec.kind != "elementwise":
        return None
    x = np.linspace(-5.0, 5.0, 241)
    params = drawn.resolve_params({})
    with np.errstate(all="ignore"):
        f = np.asarray(drawn.reference(x, **params), float)
        df = np.asarray(drawn.derivative(x, **params), float)
    return x, f, df, note


def _polyline(x: np.ndarray, y: np.ndarray, low: float, high: float, colour: str, dashed: bool) -> str:
    keep = np.isfinite(y)
    px = _PAD + (x[keep] + 5.0) / 10.0 * (_WIDTH - 2 * _PAD)
    py = _HEIGHT - _PAD - (np.clip(y[keep], low, high) - low) / (high - low) * (_HEIGHT - 2 * _PAD)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="{1.3 if dashed else 2}"{dash} points="{points}"/>'


def curve_svg(spec: ActivationSpec) -> str:
    """f (solid) and f' (dashed) on [-5, 5], an inline SVG; empty for kinds without a curve."""
    drawn = _curve(spec)
    if drawn is None:
        return ""
    x, f, df, note = drawn
    finite = np.concatenate([f[np.isfinite(f)], df[np.isfinite(df)]])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    low, high = max(low, -6.0), min(high, 6.0)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    span = high - low
    low, high = low - 0.05 * span, high + 0.05 * span
    axes = []
    if low < 0 < high:
        y0 = _HEIGHT - _PAD - (0 - low) / (high - low) * (_HEIGHT - 2 * _PAD)
        axes.append(f'<line x1="{_PAD}" y1="{y0:.1f}" x2="{_WIDTH - _PAD}" y2="{y0:.1f}" stroke="#bbb"/>')
    x0 = _PAD + 0.5 * (_WIDTH - 2 * _PAD)
    axes.append(f'<line x1="{x0:.1f}" y1="{_PAD}" x2="{x0:.1f}" y2="{_HEIGHT - _PAD}" stroke="#bbb"/>')
    label = html.escape(f"{spec.name}{note}: f solid, f' dashed, x in [-5, 5]")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH:.0f}" height="{_HEIGHT:.0f}" '
            f'viewBox="0 0 {_WIDTH:.0f} {_HEIGHT:.0f}" role="img" aria-label="{label}"><title>{label}</title>'
            + "".join(axes) + _polyline(x, f, low, high, "#1f77b4", False)
            + _polyline(x, df, low, high, "#ff7f0e", True) + "</svg>")


def spec_html(spec: ActivationSpec) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td><code>{e(name)}</code></td><td>{e(repr(p.default))}</td><td>{e(p.describe(name))}</td>"
        f"<td>{'yes' if p.trainable_allowed else 'no'}</td><td>{e(p.doc)}</td></tr>"
        for name, p in spec.params.items())
    params = ("<table><thead><tr><th>parameter</th><th>default</th><th>allowed</th><th>trainable</th><th></th></tr>"
              f"</thead><tbody>{rows}</tbody></table>") if rows else "<p>no parameters</p>"
    aliases = f" (aliases: {e(', '.join(spec.aliases))})" if spec.aliases else ""
    papers = "".join(f"<li>{e(str(r))}</li>" for r in spec.references)
    return (f'<div class="actlab-spec" style="display:flex;gap:1.5em;align-items:flex-start"><div>'
            f"<h4 style=\"margin:0\"><code>{e(spec.name)}</code> <small>{e(spec.kind)}{aliases}</small></h4>"
            f"<p>{e(spec.summary)}</p><p>$${e(spec.formula)}$$</p>{params}<ul>{papers}</ul></div>"
            f"<div>{curve_svg(spec)}</div></div>")
