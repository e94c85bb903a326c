"""The self-contained HTML report: one file, plotly.js inlined, no network request.

Every name and piece of user text is HTML-escaped, both in the page and inside the figures (plotly renders
entities as the characters they stand for), and the figures' JSON is embedded with <, > and & escaped so that
nothing in it can close the script element.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from actlab.atomic import write_text
from actlab.report.data import ReportData, cost_points, pareto_front
from actlab.report.tables import columns, lr_lines, method_line, row_cells, test_set_line, verdict_line

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _metric_axis(m) -> str:
    return "accuracy (%)" if m.key == "accuracy" else m.name


def _finite(values):
    return [v if v is not None and isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]


def _band_figure(data: ReportData, metric: str, title: str, ytitle: str, scale: float = 1.0) -> dict:
    traces = []
    for i, lab in enumerate(data.labels):
        c = data.curves.get(metric, {}).get(lab)
        if c is None:
            continue
        color = PALETTE[i % len(PALETTE)]
        x = c.epochs
        traces.append({"x": x + x[::-1], "y": _finite([v * scale for v in c.high] + [v * scale for v in c.low[::-1]]),
                       "fill": "toself", "fillcolor": _rgba(color, 0.18), "line": {"width": 0}, "hoverinfo": "skip",
                       "mode": "lines",
                       "showlegend": False, "type": "scatter", "name": _e(lab) + " 95%"})
        traces.append({"x": x, "y": _finite([v * scale for v in c.mean]), "type": "scatter", "mode": "lines+markers",
                       "name": _e(lab), "line": {"color": color, "width": 2}})
    return {"data": traces, "layout": {"title": {"text": title}, "xaxis": {"title": {"text": "epoch"}},
                                       "yaxis": {"title": {"text": ytitle}}, "height": 380}}


def figures(data: ReportData) -> list[tuple[str, str, dict]]:
    """(id, caption, plotly figure dict) for every figure in the report."""
    figs = []
    m = data.outcome.metric
    if m.key == "bits_per_char":
        figs.append(("learning-acc", "Test bits per character per epoch: mean over seeds with a 95% band "
                     "(t-interval).", _band_figure(data, "test_loss", "Test bits per character", "bits/char",
                                                   1 / math.log(2))))
    else:
        figs.append(("learning-acc", "Test accuracy per epoch: mean over seeds with a 95% band (t-interval).",
                     _band_figure(data, "test_acc", "Test accuracy", "accuracy (%)", 100.0)))
    figs.append(("learning-loss", "Training loss per epoch: mean over seeds with a 95% band.",
                 _band_figure(data, "train_loss", "Training loss", "cross-entropy")))
    box = []
    for i, lab in enumerate(data.labels):
        seeds = sorted(data.final_by_seed[lab])
        box.append({"type": "box", "name": _e(lab), "y": [m.scale * data.final_by_seed[lab][s] for s in seeds],
                    "boxpoints": "all", "jitter": 0.4, "pointpos": 0, "marker": {"color": PALETTE[i % len(PALETTE)]},
                    "text": [f"seed {s}" for s in seeds], "hovertemplate": "%{text}: %{y:.3f}<extra></extra>"})
    figs.append(("final-by-seed", f"Final test {m.name} of every seed.",
                 {"data": box, "layout": {"title": {"text": f"Final test {m.name} per seed"}, "height": 380,
                                          "yaxis": {"title": {"text": _metric_axis(m)}}, "showlegend": False}}))
    labels = data.labels
    matrix: list[list[float | None]] = [[None] * len(labels) for _ in labels]
    for p in data.pairs:
        i, j = labels.index(p.a), labels.index(p.b)
        matrix[i][j] = p.prob_improvement
        matrix[j][i] = 1.0 - p.prob_improvement
    figs.append(("improvement", "Probability of improvement: the share of seeds on which row beats column (paired by "
                 "seed; ties count 1/2).",
                 {"data": [{"type": "heatmap", "z": matrix, "x": [_e(v) for v in labels], "y": [_e(v) for v in labels],
                            "zmin": 0, "zmax": 1, "colorscale": "RdBu", "texttemplate": "%{z:.2f}",
                            "hovertemplate": "P(%{y} > %{x}) = %{z:.2f}<extra></extra>"}],
                  "layout": {"title": {"text": "Probability of improvement"}, "height": 380,
                             "yaxis": {"autorange": "reversed"}}}))
    points, cost_axis = cost_points(data)
    front = pareto_front(points, m.higher_is_better)
    scatter = [{"type": "scatter", "mode": "markers+text", "x": [points[lab][0]], "y": [m.scale * points[lab][1]],
                "text": [_e(lab)], "textposition": "top center", "name": _e(lab),
                "marker": {"size": 12, "color": PALETTE[i % len(PALETTE)],
                           "symbol": "star" if lab in front else "circle"}} for i, lab in enumerate(labels)]
    ordered = sorted(front, key=lambda lab: points[lab][0])
    scatter.append({"type": "scatter", "mode": "lines", "x": [points[lab][0] for lab in ordered],
                    "y": [m.scale * points[lab][1] for lab in ordered], "name": "Pareto front",
                    "line": {"dash": "dash", "color": "#444"}})
    figs.append(("cost-accuracy", f"Cost against accuracy: {cost_axis} and mean final test accuracy; stars and the "
                 "dashed line mark the Pareto front (nothing is both cheaper and better).",
                 {"data": scatter, "layout": {"title": {"text": "Cost vs accuracy"}, "height": 380,
                                              "xaxis": {"title": {"text": cost_axis}},
                                              "yaxis": {"title": {"text": _metric_axis(m)}}}}))
    figs.append(("dead-units", "Fraction of dead hidden units (derivative zero for every example of an evaluation "
                 "batch) per epoch.", _band_figure(data, "dead_fraction", "Dead units", "dead fraction (%)", 100.0)))
    tuning = _tuning_figure(data)
    if tuning is not None:
        figs.append(("lr-sensitivity", "Mean validation accuracy over the tuning seeds at each learning rate of the "
                     "grid; the chosen rate is each curve's maximum.", tuning))
    figs.append(("shapes", "The compared activations (solid) and their derivatives (dashed), from the float64 "
                 "references; gated kinds show their gate.", _shapes_figure(data)))
    return figs


def _shapes_figure(data: ReportData) -> dict:
    import numpy as np

    from actlab import catalog
    from actlab.analysis.plots import curve

    x = np.linspace(-5, 5, 401)
    traces = []
    for i, lab in enumerate(data.labels):
        try:
            f, df, _ = curve(catalog.resolve(data.activations[lab]), x)
        except Exception:  # an activation no longer registered in this process: nothing to draw
            continue
        color = PALETTE[i % len(PALETTE)]
        traces.append({"type": "scatter", "x": x.tolist(), "y": _finite(f.tolist()), "name": _e(lab),
                       "line": {"color": color, "width": 2}})
        traces.append({"type": "scatter", "x": x.tolist(), "y": _finite(df.tolist()), "name": _e(lab) + "'",
                       "line": {"color": color, "width": 1.3, "dash": "dash"}})
    return {"data": traces, "layout": {"title": {"text": "Activation shapes"}, "height": 380,
                                       "xaxis": {"title": {"text": "x"}},
                                       "yaxis": {"title": {"text": "f(x), f'(x)"}, "range": [-1.5, 5]}}}


def _json_for_script(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, default=str).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")


def summary_table(data: ReportData) -> str:
    cols = columns(data.target_accuracy, data.outcome.baseline, data.outcome.metric)
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for _, h in cols) + "</tr>"
    body = []
    css = {"activation": "name", "accuracy": "acc"}
    for r in data.rows:
        cells = "".join(f"<td class='{css[k]}'>{_e(v)}</td>" if k in css else f"<td>{_e(v)}</td>"
                        for k, v in row_cells(r, data.outcome.metric).items())
        body.append(f"<tr>{cells}</tr>")
    return f"<table id='summary'>{head}{''.join(body)}</table>"


def pairs_table(data: ReportData) -> str:
    m = data.outcome.metric
    head = (f"<tr><th>pair</th><th>difference ({_e(m.unit.strip())}) [95% CI]</th><th>p (Wilcoxon, Holm)</th>"
            "<th>P(first better on a seed)</th><th>verdict</th></tr>")
    body = []
    for p in data.pairs:
        body.append(
            f"<tr><td class='name'>{_e(p.a)} vs {_e(p.b)}</td>"
            f"<td>{m.fmt(p.mean_diff)} [{m.fmt(p.ci_low)}, {m.fmt(p.ci_high)}]</td>"
            f"<td>{p.p_holm:.3g}</td><td>{p.prob_improvement:.2f}</td>"
            f"<td>{_e(verdict_line(p, data.chosen_lr, data.lr_grid is None, data.outcome.metric))}</td></tr>"
        )
    friedman = f"<p>{_e(data.outcome.friedman.sentence())}</p>" if data.outcome.friedman else ""
    return (f"<p>{_e(method_line(data.outcome.baseline, data.outcome.all_pairs, len(data.labels)))}</p>"
            f"<table id='pairs'>{head}{''.join(body)}</table>{friedman}")


def lr_block(data: ReportData) -> str:
    lines = lr_lines(data.lr_grid, data.chosen_lr, data.tuning, data.validation_fraction, data.tune_seeds,
                     data.outcome.metric)
    items = "".join(f"<li>{_e(line.strip())}</li>" for line in lines[1:])
    return f"<p id='lr'>{_e(lines[0])}</p>" + (f"<ul>{items}</ul>" if items else "")


def _tuning_figure(data: ReportData) -> dict | None:
    """Validation accuracy against lr for each activation: how much the verdict leans on the lr."""
    if not data.tuning:
        return None
    traces = []
    for i, lab in enumerate(data.labels):
        curve = data.tuning.get(lab, {})
        xs = [lr for lr, v in sorted(curve.items()) if math.isfinite(v)]
        m = data.outcome.metric
        traces.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": [m.scale * curve[lr] for lr in xs],
                       "name": _e(lab), "line": {"color": PALETTE[i % len(PALETTE)]}})
    return {"data": traces, "layout": {"title": {"text": "Validation score vs learning rate"}, "height": 360,
                                       "xaxis": {"title": {"text": "learning rate"}, "type": "log"},
                                       "yaxis": {"title": {"text": "mean validation " + _metric_axis(m)}}}}


def provenance_block(data: ReportData) -> str:
    p = data.provenance
    items = {
        "study": data.study, "store": data.store, "task": data.task,
        "recipe": ", ".join(f"{k}={v}" for k, v in data.recipe.items()),
        "command": p["command"], "date": p["date"], "seed indices": ", ".join(map(str, p["seeds"])),
        "base seed": ", ".join(map(str, p["base_seed"])), "trials": p["trials"],
        "training": "seed-vectorized" if p["vectorized"] else "per-seed for some groups",
        **{k: v for k, v in p["versions"].items()},
        **{f"hardware {k}": v for k, v in p["hardware"].items() if v is not None},
    }
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items.items())
    return f"<table id='provenance'>{rows}</table>"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem} h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:0.5rem 0;font-size:0.9rem} td,th{border:1px solid #ddd;padding:4px 8px;
text-align:right} td.name,th{text-align:left} .figure{margin:1rem 0} .caption{color:#555;font-size:0.85rem}
#provenance td,#pairs td:last-child{text-align:left} .warning{background:#fff4d6;border:1px solid #e6c35c;padding:0.5rem 1rem} code{background:#f4f4f4;padding:1px 3px}
"""


def findings_block(data: ReportData) -> str:
    """Two sections: the published results checked (actlab study) and the tutorials' claims (actlab claims)."""
    out = []
    for kind, title in (("paper", "Published results checked in this store"),
                        ("tutorial", "The source tutorials' claims, fact-checked")):
        found = [f for f in data.findings if (f.get("declaration") or {}).get("kind", "paper") == kind]
        if not found:
            continue
        rows = "".join(
            f"<tr><td class='name'>{_e(f['study'])}{' (quick)' if f['quick'] else ''}</td>"
            f"<td class='name'>{_e(f['claim'])}<br><small>{_e(f['source'])}</small></td>"
            f"<td class='name verdict-{_e(f['verdict'])}'>{_e(f['verdict'])}</td>"
            f"<td class='name'>{_e(f.get('effect') or '')}<br><small>{_e(f['summary'])}</small></td>"
            f"<td class='name'><small>{_e((f.get('declaration') or {}).get('protocol', ''))}; "
            f"{_e(str(f.get('seeds', '')))} seeds</small></td>"
            f"<td class='name'><small>{_e(f.get('would_change') or '')}</small></td></tr>" for f in found)
        out.append(f"<h2>{title}</h2><table id='findings-{kind}'><tr><th>study</th><th>claim</th><th>verdict</th>"
                   f"<th>effect</th><th>protocol</th><th>what would change it</th></tr>{rows}</table>")
    return "".join(out)


def failures_block(data: ReportData) -> str:
    if not data.failures:
        return ""
    items = "".join(
        f"<li>{_e(f['activation'])} on <code>{_e(f['task'])}</code> ({_e(f['phase'])}, lr {f['lr']:g}, "
        f"{f['missing']} trial(s) missing), {_e(f['created_at'])}: <code>{_e(f['error'])}</code></li>"
        for f in data.failures)
    return (f"<div class='warning' id='failures'><p>Trial groups that failed and are still missing from the store "
            f"(rerun the command to retry them):</p><ul>{items}</ul></div>")


def render(data: ReportData) -> str:
    from plotly.offline import get_plotlyjs

    figs = figures(data)
    fig_html = []
    scripts = []
    for fid, caption, fig in figs:
        fig_html.append(f"<div class='figure'><div id='{fid}' class='plot'></div>"
                        f"<div class='caption'>{_e(caption)}</div></div>")
        scripts.append(f"<script type='application/json' id='{fid}-data'>{_json_for_script(fig)}</script>")
    warning = f"<p class='warning'>{_e(data.warning)}</p>" if data.warning else ""
    notes = "".join(f"<p class='warning'>{_e(n)}</p>" for n in data.notes)
    loader = """
<script>
(function () {
  var plots = document.querySelectorAll('div.plot');
  for (var i = 0; i < plots.length; i++) {
    var div = plots[i];
    var fig = JSON.parse(document.getElementById(div.id + '-data').textContent);
    Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
  }
  document.body.setAttribute('data-rendered', String(plots.length));
})();
</script>"""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<title>actlab report: {_e(data.study)}</title><style>{CSS}</style>
<script>{get_plotlyjs()}</script></head>
<body>
<h1>actlab report: {_e(data.study)}</h1>
<p>Task <code>{_e(data.task)}</code>, {len(data.provenance['seeds'])} paired seeds per activation,
{_e(data.recipe.get('epochs'))} epochs. Accuracy is final test accuracy; intervals are 95% Student-t intervals over
seeds; differences are paired by seed. {_e(test_set_line(data.outcome.n_test) or '')}</p>
{warning}{notes}{failures_block(data)}
<h2>Summary</h2>{summary_table(data)}{lr_block(data)}
<h2>Verdicts</h2>{pairs_table(data)}
<h2>Figures</h2>{''.join(fig_html)}
{findings_block(data)}
<h2>Provenance</h2>{provenance_block(data)}
{''.join(scripts)}{loader}
</body></html>
"""


def write_html(data: ReportData, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, render(data))
    return path
