"""A markdown summary of a comparison (table and verdicts), for pasting into an issue or a paper draft."""

from __future__ import annotations

import re

from actlab.report.data import ReportData
from actlab.report.tables import row_cells


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
    target = f"{100 * data.target_accuracy:.0f}%"
    lines = [f"## actlab: {_md(data.study)}", "",
             f"Task {_code(data.task)}, {len(data.provenance['seeds'])} paired seeds, {data.recipe.get('epochs')} epochs "
             f"({data.provenance['versions'].get('actlab', '?')}, torch {data.provenance['versions'].get('torch', '?')}).",
             "", f"| activation | lr | test acc % [95% CI] | best % | epochs to {target} | s/epoch | dead units | diverged |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data.rows:
        lines.append("| " + " | ".join(_md(v) for v in row_cells(r).values()) + " |")
    lines += ["", "Verdicts (paired by seed; Wilcoxon signed-rank, Holm-corrected):", ""]
    lines += [f"- {_md(p.verdict())}" for p in data.pairs]
    if data.warning:
        lines += ["", f"> warning: {_md(data.warning)}"]
    lines += ["", f"Command: {_code(data.provenance['command'])}", ""]
    return "\n".join(lines)
