"""The monitor's displays: a figure of its statistics by depth and an HTML table for notebooks."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from actlab.monitor.report import SiteReport

_LABELS = {"dead": "dead units (%)", "saturated": "saturated outputs (%)", "grad_norm": "gradient norm",
           "in_mean": "input mean", "in_std": "input std", "out_mean": "output mean", "out_std": "output std"}
_PERCENT = {"dead", "saturated"}


def plot_reports(reports: list[SiteReport], statistics: Sequence[str], steps: tuple[int, int, int]) -> Any:
    """One panel per statistic, sites along x in the order they ran; the gradient norm on a log axis."""
    unknown = [s for s in statistics if s not in _LABELS]
    if unknown or not statistics:
        raise ValueError(f"monitor.plot: statistics={list(statistics)!r}: each must be one of {sorted(_LABELS)}")
    import matplotlib.pyplot as plt  # the user's backend, as it is

    fig, axes = plt.subplots(len(statistics), 1, figsize=(max(5.0, 0.5 * len(reports) + 3), 1.9 * len(statistics)
                                                          + 0.8), sharex=True, layout="constrained", squeeze=False)
    x = list(range(len(reports)))
    names = [r.site.name for r in reports]
    for ax, stat in zip(axes[:, 0], statistics):
        scale = 100.0 if stat in _PERCENT else 1.0
        y = [math.nan if r.stats is None else scale * getattr(r.stats, stat) for r in reports]
        ax.plot(x, y, marker="o", lw=1.5)
        ax.set_ylabel(_LABELS[stat], fontsize=8)
        if stat in _PERCENT:
            ax.set_ylim(-3, 103)
        elif stat == "grad_norm" and any(v > 0 for v in y if math.isfinite(v)):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    first, count, sampled = steps
    axes[0, 0].set_title(f"activation sites by depth: steps {first}-{first + count - 1} ({sampled} sampled)",
                         fontsize=9)
    return fig


def _cell(value: Any, percent: bool = False) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{100 * value:.1f}%" if percent else f"{value:.4g}"
    return html.escape(str(value))


def reports_html(reports: list[SiteReport], steps: tuple[int, int, int], *, every: int, saturation: float,
                 limits: Mapping[str, float | None]) -> str:
    """A table of every site's statistics, the sites crossing a warning threshold marked."""
    first, count, sampled = steps
    columns = ["site", "role", "activation", "units", "dead", "saturated", "in_mean", "in_std", "out_mean",
               "out_std", "grad_norm"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    rows = []
    for report in reports:
        row = report.row()
        flagged = any(limit is not None and math.isfinite(row[k]) and row[k] > limit for k, limit in limits.items())
        style = ' style="background:#fde2e1"' if flagged else ""
        cells = "".join(f"<td>{_cell(row[c], c in _PERCENT)}</td>" for c in columns)
        rows.append(f"<tr{style}>{cells}</tr>")
    sites = f"{len(reports)} site{'' if len(reports) == 1 else 's'}"
    caption = (f"actlab monitor: {sites}, steps {first}-{first + count - 1} ({sampled} sampled, every {every}); "
               f"saturated: |f'| &lt; {saturation:g}")
    return (f'<table class="actlab-monitor"><caption style="text-align:left">{caption}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
