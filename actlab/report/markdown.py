"""A markdown summary of a comparison (table and verdicts), for pasting into an issue or a paper draft."""

from __future__ import annotations

import re

from actlab.experiments.comparison.wording import columns, lr_lines, method_line, row_cells, test_set_line, verdict_line
from actlab.report.data import ReportData


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """A markdown code span that ``text`` cannot close: fenced by one more backtick than its longest run of them."""
    text = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(data: ReportData) -> str:
    m = data.outcome.metric
    cols = columns(data.target_accuracy, data.outcome.baseline, m)
    lines = [f"## actlab: {_md(data.study)}", "",
             f"Task {_code(data.task)}, {len(data.provenance['seeds'])} paired seeds, "
             f"{data.recipe.get('epochs')} epochs "
             f"({data.provenance['versions'].get('actlab', '?')}, "
             f"torch {data.provenance['versions'].get('torch', '?')}).",
             "", "| " + " | ".join(_md(h) for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in data.rows:
        lines.append("| " + " | ".join(_md(v) for v in row_cells(r, m).values()) + " |")
    lines += [""] + [_md(line) for line in filter(None, [test_set_line(data.outcome.n_test)])]
    lr = lr_lines(data.lr_grid, data.chosen_lr, data.tuning, data.validation_fraction, data.tune_seeds, m, data.tune,
                  data.chosen_settings, data.tuning_settings)
    lines += ["", _md(lr[0])] + [f"- {_md(line.strip())}" for line in lr[1:]]
    lines += ["", _md(method_line(data.outcome.baseline, data.outcome.all_pairs, len(data.labels))), ""]
    lines += [f"- {_md(verdict_line(p, data.chosen_lr, data.lr_grid is None, m, data.chosen_settings))}"
              for p in data.pairs]
    if data.outcome.friedman is not None:
        lines += [f"- {_md(data.outcome.friedman.sentence())}"]
    if data.warning:
        lines += ["", f"> warning: {_md(data.warning)}"]
    lines += ["", f"Command: {_code(data.provenance['command'])}", ""]
    return "\n".join(lines)
