"""The self-contained HTML report: one file, plotly.js inlined, no network request.

The page is the Jinja2 template ``templates/report.html.j2`` with autoescaping, so every name and piece of user
text is HTML-escaped; inside the figures names are escaped here (plotly renders entities as the characters they
stand for), and the figures' JSON is embedded with <, > and & escaped so that nothing in it can close the script
element.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from actlab.atomic import write_text
from actlab.experiments.comparison.wording import columns, lr_lines, method_line, row_cells, test_set_line, verdict_line
from actlab.experiments.stats import interval_text
from actlab.report.data import ReportData, cost_intervals, cost_points, error_bar, pareto_front

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


def _band_figure(data: ReportData, metric: str, title: str, ytitle: str, scale: float = 1.0,
                 nonnegative: bool = False) -> dict:
    """Mean and 95% band per activation over epochs; ``nonnegative``: a share that cannot go below 0 (dead units),
    whose axis starts at 0 and spans at least 0-1 (an all-zero series would otherwise get plotly's -1 to 1)."""
    traces = []
    top = 0.0
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
        top = max([top, *(v * scale for v in c.high if v is not None and math.isfinite(v))])
    yaxis: dict[str, Any] = {"title": {"text": ytitle}}
    if nonnegative:
        yaxis["range"] = [0, max(1.0, 1.08 * top)]
    return {"data": traces, "layout": {"title": {"text": title}, "xaxis": {"title": {"text": "epoch"}},
                                       "yaxis": yaxis, "height": 380}}


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
    bars = cost_intervals(data)
    front = pareto_front(points, m.higher_is_better)

    def error(centre: float, low: float, high: float, scale: float = 1.0) -> dict:
        bar = error_bar(centre, low, high, scale)
        if bar is None:
            return {"visible": False}
        return {"type": "data", "symmetric": False, "array": [bar[1]], "arrayminus": [bar[0]], "thickness": 1}

    scatter = [{"type": "scatter", "mode": "markers+text", "x": [points[lab][0]], "y": [m.scale * points[lab][1]],
                "text": [_e(lab)], "textposition": "top center", "name": _e(lab),
                "error_x": error(points[lab][0], bars[lab][0], bars[lab][1]),
                "error_y": error(points[lab][1], bars[lab][2], bars[lab][3], m.scale),
                "marker": {"size": 12, "color": PALETTE[i % len(PALETTE)],
                           "symbol": "star" if lab in front else "circle"}} for i, lab in enumerate(labels)]
    ordered = sorted(front, key=lambda lab: points[lab][0])
    scatter.append({"type": "scatter", "mode": "lines", "x": [points[lab][0] for lab in ordered],
                    "y": [m.scale * points[lab][1] for lab in ordered], "name": "Pareto front",
                    "line": {"dash": "dash", "color": "#444"}})
    figs.append(("cost-accuracy", f"Cost against accuracy: {cost_axis} and mean final test accuracy, with 95% "
                 "intervals (the interleaved timing's; over seeds); stars and the dashed line mark the Pareto front "
                 "of the means (nothing is both cheaper and better); where bars overlap, the order is not "
                 "established.",
                 {"data": scatter, "layout": {"title": {"text": "Cost vs accuracy"}, "height": 380,
                                              "xaxis": {"title": {"text": cost_axis}},
                                              "yaxis": {"title": {"text": _metric_axis(m)}}}}))
    figs.append(("dead-units", "Fraction of dead hidden units (derivative zero for every example of an evaluation "
                 "batch) per epoch.", _band_figure(data, "dead_fraction", "Dead units", "dead fraction (%)", 100.0,
                                                nonnegative=True)))
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


def _tuning_figure(data: ReportData) -> dict | None:
    """Validation accuracy against lr for each activation: how much the verdict leans on the lr."""
    if not data.tuning:
        return None
    traces = []
    rates: set[float] = set()
    for i, lab in enumerate(data.labels):
        curve = data.tuning.get(lab, {})
        xs = [lr for lr, v in sorted(curve.items()) if math.isfinite(v)]
        rates.update(xs)
        m = data.outcome.metric
        traces.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": [m.scale * curve[lr] for lr in xs],
                       "name": _e(lab), "line": {"color": PALETTE[i % len(PALETTE)]}})
    return {"data": traces, "layout": {"title": {"text": "Validation score vs learning rate"}, "height": 360,
                                       "xaxis": {"title": {"text": "learning rate"}, "type": "log",
                                                 # ticks at the rates tried, not plotly's minor labels (2 3 4 ...)
                                                 "tickvals": sorted(rates), "ticktext": [f"{r:g}" for r in sorted(rates)]},
                                       "yaxis": {"title": {"text": "mean validation " + _metric_axis(m)}}}}


def _summary(data: ReportData) -> tuple[list[str], list[list[tuple[str, Any]]]]:
    cols = columns(data.target_accuracy, data.outcome.baseline, data.outcome.metric)
    css = {"activation": "name", "accuracy": "acc"}
    rows = [[(css.get(k, ""), v) for k, v in row_cells(r, data.outcome.metric).items()] for r in data.rows]
    return [h for _, h in cols], rows


def _pairs(data: ReportData) -> list[dict[str, Any]]:
    m = data.outcome.metric
    return [{"a": p.a, "b": p.b, "difference": interval_text(p.mean_diff, p.ci_low, p.ci_high, m.fmt),
             "p_holm": f"{p.p_holm:.3g}" if p.n >= 2 else "-", "prob": f"{p.prob_improvement:.2f}",
             "verdict": verdict_line(p, data.chosen_lr, data.lr_grid is None, m, data.chosen_settings)}
            for p in data.pairs]


def _provenance(data: ReportData) -> list[tuple[str, Any]]:
    p = data.provenance
    items = {
        "study": data.study, "store": data.store, "task": data.task,
        "recipe": ", ".join(f"{k}={v}" for k, v in data.recipe.items()),
        "command": p["command"], "date": p["date"], "seed indices": ", ".join(map(str, p["seeds"])),
        "base seed": ", ".join(map(str, p["base_seed"])), "trials": p["trials"],
        "training": "seed-vectorized" if p["vectorized"] else "per-seed for some groups",
        **{k: v for k, v in p["versions"].items()},
        **{f"hardware {k}": v for k, v in p["hardware"].items() if v is not None and k != "load_1min"},
    }
    if p.get("load"):
        items["machine load (1-min average, at group starts and ends)"] = p["load"]
    return list(items.items())


def _findings(data: ReportData) -> list[dict[str, Any]]:
    """Two sections: the published results checked (actlab study) and the tutorials' claims (actlab claims)."""
    sections = []
    for kind, title in (("paper", "Published results checked in this store"),
                        ("tutorial", "The source tutorials' claims, fact-checked")):
        found = [f for f in data.findings if (f.get("declaration") or {}).get("kind", "paper") == kind]
        if found:
            rows = [{"study": f["study"], "quick": f["quick"], "claim": f["claim"], "source": f["source"],
                     "verdict": f["verdict"], "effect": f.get("effect") or "", "summary": f["summary"],
                     "protocol": (f.get("declaration") or {}).get("protocol", ""), "seeds": f.get("seeds", ""),
                     "would_change": f.get("would_change") or ""} for f in found]
            sections.append({"kind": kind, "title": title, "rows": rows})
    return sections


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem} h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:0.5rem 0;font-size:0.9rem} td,th{border:1px solid #ddd;padding:4px 8px;
text-align:right} td.name,th{text-align:left} .figure{margin:1rem 0} .caption{color:#555;font-size:0.85rem}
#provenance td,#pairs td:last-child{text-align:left} .warning{background:#fff4d6;border:1px solid #e6c35c;padding:0.5rem 1rem} code{background:#f4f4f4;padding:1px 3px}
"""


_TEMPLATES = Environment(loader=PackageLoader("actlab.report", "templates"), autoescape=True, trim_blocks=True,
                         lstrip_blocks=True, undefined=StrictUndefined)


def render(data: ReportData) -> str:
    from plotly.offline import get_plotlyjs

    m = data.outcome.metric
    lines = lr_lines(data.lr_grid, data.chosen_lr, data.tuning, data.validation_fraction, data.tune_seeds, m,
                     data.tune, data.chosen_settings, data.tuning_settings)
    head, rows = _summary(data)
    failures = [{**f, "lr": f"{f['lr']:g}"} for f in data.failures]
    return _TEMPLATES.get_template("report.html.j2").render(
        study=data.study, task=data.task, n_seeds=len(data.provenance["seeds"]), epochs=data.recipe.get("epochs"),
        test_set_line=test_set_line(data.outcome.n_test) or "", warning=data.warning, notes=data.notes,
        failures=failures, summary_head=head, summary_rows=rows, lr_first=lines[0],
        lr_items=[line.strip() for line in lines[1:]],
        method=method_line(data.outcome.baseline, data.outcome.all_pairs, len(data.labels)),
        unit=m.unit.strip(), pairs=_pairs(data),
        friedman=data.outcome.friedman.sentence() if data.outcome.friedman else None,
        figures=[{"id": fid, "caption": caption, "json": _json_for_script(fig)} for fid, caption, fig in figures(data)],
        findings=_findings(data), provenance=_provenance(data), css=Markup(CSS), plotly_js=get_plotlyjs())


def write_html(data: ReportData, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, render(data))
    return path
