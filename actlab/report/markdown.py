"""A markdown summary of a comparison (table and verdicts), for pasting into an issue or a paper draft."""

from __future__ import annotations

from actlab.report.data import ReportData


def _pct(v) -> str:
    return "-" if v is None or v != v else f"{100 * v:.2f}"


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
        ett = "-" if r["epochs_to_target"] is None else f"{r['epochs_to_target']:.1f} ({r['reached']}/{r['n']})"
        lines.append(f"| {_md(r['activation'])} | {r['lr']:.3g} | {_pct(r['mean'])} [{_pct(r['ci_low'])}, "
                     f"{_pct(r['ci_high'])}] | {_pct(r['best'])} | {ett} | "
                     f"{'-' if r['s_per_epoch'] is None else format(r['s_per_epoch'], '.3f')} | "
                     f"{'-' if r['dead'] is None else format(100 * r['dead'], '.1f') + '%'} | {r['diverged']} |")
    lines += ["", "Verdicts (paired by seed; Wilcoxon signed-rank, Holm-corrected):", ""]
    lines += [f"- {_md(p.verdict())}" for p in data.pairs]
    if data.warning:
        lines += ["", f"> warning: {_md(data.warning)}"]
    lines += ["", f"Command: `{data.provenance['command']}`", ""]
    return "\n".join(lines)
