"""The report's figures as static files for papers (png, svg or pdf), drawn with matplotlib from the same data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from actlab.report.data import ReportData, cost_intervals, cost_points, error_bar, pareto_front

FORMATS = ("png", "svg", "pdf")


def write_figures(data: ReportData, folder: str | Path, fmt: str = "png") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from actlab.analysis.plots import plot_activations

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []

    def save(fig, name):
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=130, metadata={"Software": None} if fmt == "png" else None)
        plt.close(fig)
        out.append(path)

    m = data.outcome.metric
    first = ("test_loss", "learning-acc", "test bits per character", 1 / math.log(2)) if m.key == "bits_per_char" \
        else ("test_acc", "learning-acc", "test accuracy (%)", 100.0)
    for metric, name, ylabel, scale in (first,
                                        ("train_loss", "learning-loss", "training loss", 1.0),
                                        ("dead_fraction", "dead-units", "dead units (%)", 100.0)):
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        for i, lab in enumerate(data.labels):
            c = data.curves.get(metric, {}).get(lab)
            if c is None:
                continue
            color = f"C{i % 10}"
            ax.plot(c.epochs, np.asarray(c.mean) * scale, color=color, marker="o", ms=3, label=lab)
            ax.fill_between(c.epochs, np.asarray(c.low) * scale, np.asarray(c.high) * scale, color=color, alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if metric == "dead_fraction":  # a share: from 0, at least 0-1%, never matplotlib's band around an all-zero line
            ax.set_ylim(0, max(1.0, 1.08 * ax.get_ylim()[1]))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, name)

    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    axis = "accuracy (%)" if m.key == "accuracy" else m.name
    values = [[m.scale * v for v in data.final_by_seed[lab].values()] for lab in data.labels]
    ax.boxplot(values, tick_labels=data.labels, showfliers=False)
    rng = np.random.default_rng(0)
    for i, v in enumerate(values, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, s=14, color=f"C{(i - 1) % 10}", zorder=3)
    ax.set_ylabel(f"final test {axis}")
    ax.grid(alpha=0.3, axis="y")
    save(fig, "final-by-seed")

    labels = data.labels
    matrix = np.full((len(labels), len(labels)), np.nan)
    for p in data.pairs:
        i, j = labels.index(p.a), labels.index(p.b)
        matrix[i, j], matrix[j, i] = p.prob_improvement, 1 - p.prob_improvement
    fig, ax = plt.subplots(figsize=(4.8, 4.0), layout="constrained")
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if not math.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="P(row better than column on a seed)")
    save(fig, "improvement")

    points, cost_axis = cost_points(data)
    points = {lab: (cost, m.scale * score) for lab, (cost, score) in points.items()}
    front = pareto_front(points, m.higher_is_better)
    bars = cost_intervals(data)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for i, (lab, (cost, acc)) in enumerate(points.items()):
        ax.scatter([cost], [acc], s=80, marker="*" if lab in front else "o", color=f"C{i % 10}", label=lab)
        across = error_bar(cost, bars[lab][0], bars[lab][1])
        up = error_bar(acc, m.scale * bars[lab][2], m.scale * bars[lab][3])
        xerr = None if across is None else [[across[0]], [across[1]]]
        yerr = None if up is None else [[up[0]], [up[1]]]
        if xerr is not None or yerr is not None:  # 95% intervals: the timing's and over seeds
            ax.errorbar([cost], [acc], xerr=xerr, yerr=yerr, fmt="none", ecolor=f"C{i % 10}", elinewidth=1,
                        capsize=3)
    ordered = sorted(front, key=lambda lab: points[lab][0])
    ax.plot([points[lab][0] for lab in ordered], [points[lab][1] for lab in ordered], "k--", lw=1, label="Pareto front")
    ax.set_xlabel(cost_axis)
    ax.set_ylabel(f"mean final test {axis}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "cost-accuracy")

    if data.tuning:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        for i, lab in enumerate(data.labels):
            curve = {lr: v for lr, v in sorted(data.tuning.get(lab, {}).items()) if math.isfinite(v)}
            ax.plot(list(curve), [m.scale * v for v in curve.values()], marker="o", color=f"C{i % 10}", label=lab)
        ax.set_xscale("log")
        rates = sorted({lr for curve in data.tuning.values() for lr, v in curve.items() if math.isfinite(v)})
        ax.set_xticks(rates, [f"{r:g}" for r in rates])  # the rates tried, without minor-tick labels between them
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("learning rate")
        ax.set_ylabel(f"mean validation {axis}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "lr-sensitivity")

    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    try:
        plot_activations([data.activations[lab] for lab in data.labels], ax=ax)
        save(fig, "shapes")
    except Exception:  # an activation not registered in this process
        plt.close(fig)
    return out
