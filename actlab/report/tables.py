"""Terminal tables for a comparison: per-activation results and the pairwise verdicts."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from actlab.report.text import terminal_safe


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.2f}"


def row_cells(r: dict[str, Any]) -> dict[str, str]:
    """The text of each summary-table cell (unescaped), shared by the terminal, HTML and markdown tables."""
    return {
        "activation": str(r["activation"]),
        "lr": "-" if r["lr"] is None else f"{r['lr']:.3g}",
        "accuracy": f"{_pct(r['mean'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]",
        "best": _pct(r["best"]),
        "epochs_to_target": "-" if r["epochs_to_target"] is None else
        f"{r['epochs_to_target']:.1f} ({r['reached']}/{r['n']})",
        "s_per_epoch": "-" if r["s_per_epoch"] is None else f"{r['s_per_epoch']:.3f}",
        "dead": "-" if r["dead"] is None else f"{100 * r['dead']:.1f}%",
        "diverged": str(r["diverged"]),
    }


def results_rows(result) -> list[dict[str, Any]]:
    """One plain row per activation: the numbers the table, the markdown summary and the report show."""
    return rows_from(result.summaries, result.trials, result.chosen_lr)


def rows_from(summaries, all_trials, chosen_lr) -> list[dict[str, Any]]:
    from actlab.experiments.compare import label_of

    by: dict[str, list[dict[str, Any]]] = {}
    for t in all_trials:
        by.setdefault(label_of(t), []).append(t)
    rows = []
    for s in summaries:
        trials = by.get(s.activation, [])
        reached = [t["epochs_to_target"] for t in trials if t["epochs_to_target"] is not None]
        finite = lambda key: [t[key] for t in trials if t[key] is not None]  # noqa: E731
        rows.append({
            "activation": s.activation,
            "lr": chosen_lr.get(s.activation),
            "n": s.n,
            "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high,
            "best": max(finite("best_acc"), default=math.nan),
            "epochs_to_target": (sum(reached) / len(reached)) if reached else None,
            "reached": len(reached),
            "s_per_epoch": (sum(finite("s_per_epoch")) / len(finite("s_per_epoch"))) if finite("s_per_epoch") else None,
            "dead": (sum(finite("dead_final")) / len(finite("dead_final"))) if finite("dead_final") else None,
            "diverged": sum(1 for t in trials if t["status"] == "diverged"),
        })
    return rows


def comparison_table(result) -> Table:
    target = result.task.spec.target_accuracy
    table = Table(title=terminal_safe(f"{result.study}  ({result.summaries[0].n if result.summaries else 0} seeds, "
                               f"{result.recipe.epochs} epochs)"), header_style="bold")
    for col, just in (("activation", "left"), ("lr", "right"), ("test acc % mean [95% CI]", "right"),
                      ("best %", "right"), (f"epochs to {100 * target:.0f}%", "right"), ("s/epoch", "right"),
                      ("dead units", "right"), ("diverged", "right")):
        table.add_column(col, justify=just)
    for r in results_rows(result):
        table.add_row(*(terminal_safe(v) for v in row_cells(r).values()))
    return table


def print_comparison(result, console: Console | None = None) -> None:
    console = console or Console()
    console.print(comparison_table(result))
    if result.tuning:
        for label, means in result.tuning.items():
            shown = ", ".join(f"{lr:g}: {100 * m:.1f}%" for lr, m in means.items() if m > -math.inf)
            console.print(terminal_safe(f"lr for {label} chosen on the validation split: {result.chosen_lr[label]:g} "
                                 f"(mean validation accuracy {shown})"))
    console.print("[bold]Verdicts[/bold] (paired by seed; 95% t interval of the difference in test accuracy over "
                  "seeds, on this test set; "
                  "Wilcoxon signed-rank, Holm-corrected):")
    for p in result.pairs:
        console.print("  " + terminal_safe(p.verdict()))
    if result.warning:
        console.print(f"[yellow]warning:[/yellow] {terminal_safe(result.warning)}")
    notes = sorted({t["note"] for t in result.trials if not t["vectorized"] and t["note"]})
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {terminal_safe(note)}")
    for f in result.failures:
        console.print(f"[red]failed group[/red] {terminal_safe(f.job.activation)} (lr {f.job.lr:g}): {terminal_safe(f.error or '')}")
    console.print(terminal_safe(f"{result.ran} trials trained, {result.skipped} taken from the store "
                         f"{result.config.store} in {result.wall_seconds:.1f} s"))
