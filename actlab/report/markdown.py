"""A markdown summary of a comparison (table and verdicts), for pasting into an issue or a paper draft."""

from __future__ import annotations

from actlab.report.data import ReportData
from actlab.report.tables import row_cells


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(data: ReportData) -> str:
    target = f"{100 * data.target_accuracy:.0f}%"
    lines = [f"## actlab: {_md(data.study)}", "",
             f"Task `{data.task}`, {len(data.provenance['seeds'])} paired seeds, {data.recipe.get('epochs')} epochs "
             f"({data.provenance['versions'].get('actlab', '?')}, torch {data.provenance['versions'].get('torch', '?')}).",
             "", f"| activation | lr | test acc % [95% CI] | best % | epochs to {target} | s/epoch | dead units | diverged |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data.rows:
        lines.append("| " + " | ".join(_md(v) for v in row_cells(r).values()) + " |")
    lines += ["", "Verdicts (paired by seed; Wilcoxon signed-rank, Holm-corrected):", ""]
    lines += [f"- {_md(p.verdict())}" for p in data.pairs]
    if data.warning:
        lines += ["", f"> warning: {_md(data.warning)}"]
    lines += ["", f"Command: `{data.provenance['command']}`", ""]
    return "\n".join(lines)
