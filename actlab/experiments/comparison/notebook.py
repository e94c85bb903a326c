"""A comparison result as HTML for notebooks (``_repr_html_``): the summary table, how the rates were set, the
verdicts, warnings and notes, in the same words as the terminal and the report."""

from __future__ import annotations

import html
from typing import Any

from actlab.experiments.comparison.wording import columns, lr_lines, method_line, row_cells, test_set_line, verdict_line


def result_html(result: Any) -> str:
    out = result.outcome
    e = html.escape
    cols = columns(result.task.spec.target_accuracy, out.baseline, out.metric)
    head = "".join(f"<th>{e(header)}</th>" for _, header in cols)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row_cells(r, out.metric).values()) + "</tr>"
                   for r in out.rows)
    lines = [line for line in [test_set_line(out.n_test)] if line]
    lines += lr_lines(result.lr_grid, result.chosen_lr, result.tuning, result.config.validation_fraction,
                      result.config.tune_seeds, out.metric, result.config.tune, result.chosen_settings,
                      result.tuning_settings)
    verdicts = [verdict_line(p, result.chosen_lr, result.lr_grid is None, out.metric, result.chosen_settings)
                for p in out.pairs]
    if out.friedman is not None:
        verdicts.append(out.friedman.sentence())
    flags = ([f"warning: {out.warning}"] if out.warning else []) + [f"note: {n}" for n in out.notes]
    flags += [f"failed group {f.job.label}: {f.error or ''}" for f in result.failures]
    caption = f"{result.study} ({result.config.seeds} seeds, {result.recipe.epochs} epochs)"
    return (f'<div class="actlab-comparison"><table><caption style="text-align:left"><b>{e(caption)}</b></caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + "".join(f"<p>{e(line)}</p>" for line in lines)
            + f"<p><b>{e(method_line(out.baseline, out.all_pairs, len(out.labels)))}</b></p><ul>"
            + "".join(f"<li>{e(v)}</li>" for v in verdicts) + "</ul>"
            + "".join(f'<p style="color:#9a6700">{e(f)}</p>' for f in flags)
            + f"<p>{result.ran} trial{'' if result.ran == 1 else 's'} trained, {result.skipped} taken from the "
              f"store {e(str(result.config.store))} in {result.wall_seconds:.1f} s</p></div>")
