"""The terminal's printing of a comparison; what its tables and sentences say lives in
actlab.experiments.comparison.wording (shared with the HTML report, the markdown summary and the notebook)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from actlab.experiments.comparison.wording import columns, lr_lines, method_line, row_cells, test_set_line, verdict_line
from actlab.report.text import plural, terminal_safe


def comparison_table(result) -> Table:
    target = result.task.spec.target_accuracy
    table = Table(title=terminal_safe(f"{result.study}  ({result.config.seeds} seeds, {result.recipe.epochs} "
                                      "epochs)"), header_style="bold")
    for key, header in columns(target, result.outcome.baseline, result.outcome.metric):
        table.add_column(header, justify="left" if key == "activation" else "right")
    for r in result.outcome.rows:
        table.add_row(*(terminal_safe(v) for v in row_cells(r, result.outcome.metric).values()))
    return table


def print_comparison(result, console: Console | None = None) -> None:
    console = console or Console()
    out = result.outcome
    console.print(comparison_table(result))
    for line in filter(None, [test_set_line(out.n_test)]):
        console.print(terminal_safe(line), highlight=False)
    for line in lr_lines(result.lr_grid, result.chosen_lr, result.tuning, result.config.validation_fraction,
                         result.config.tune_seeds, out.metric, result.config.tune, result.chosen_settings,
                         result.tuning_settings):
        console.print(terminal_safe(line), highlight=False)
    console.print(f"[bold]{terminal_safe(method_line(out.baseline, out.all_pairs, len(out.labels)))}[/bold]")
    for p in out.pairs:
        console.print("  " + terminal_safe(verdict_line(p, result.chosen_lr, result.lr_grid is None, out.metric,
                                                        result.chosen_settings)), highlight=False)
    if out.friedman is not None:
        console.print("  " + terminal_safe(out.friedman.sentence()), highlight=False)
    if out.warning:
        console.print(f"[yellow]warning:[/yellow] {terminal_safe(out.warning)}")
    for note in out.notes:
        console.print(f"[yellow]note:[/yellow] {terminal_safe(note)}")
    for f in result.failures:
        console.print(f"[red]failed group[/red] {terminal_safe(f.job.label)}: {terminal_safe(f.error or '')}")
    console.print(terminal_safe(f"{plural(result.ran, 'trial')} trained, {result.skipped} taken from the store "
                                f"{result.config.store} in {result.wall_seconds:.1f} s"), highlight=False)
