"""actlab report: HTML, markdown and static figures from a store; compare writes the report by default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import actlab
from actlab.cli import app
from actlab.report.data import cost_intervals, load_study, pareto_front
from actlab.report.html import render

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("rep") / "actlab.db"
    actlab.compare("relu", "mish", seeds=3, store=str(db), epochs=2, batch_size=200)
    return db


def test_report_command_writes_html_markdown_and_figures(store, tmp_path):
    html, md = tmp_path / "r.html", tmp_path / "s.md"
    result = runner.invoke(app, ["report", str(store), "-o", str(html), "-o", str(md), "--format", "pdf",
                                 "--figures-dir", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    page = html.read_text()
    assert page.count("class='plot'") == 8 and "Plotly.newPlot" in page
    own = page.split("<script>", 1)[0] + page.split("</head>", 1)[1]  # the page without the inlined plotly.js
    assert not re.search(r"""(src|href)=["']https?://""", own)  # nothing loaded from the network
    assert "Content-Security-Policy" in page
    text = md.read_text()
    assert "| relu |" in text and "| mish |" in text and "Verdicts" in text
    figs = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert figs == sorted(f"{n}.pdf" for n in ("learning-acc", "learning-loss", "dead-units", "final-by-seed",
                                               "improvement", "cost-accuracy", "lr-sensitivity", "shapes"))
    assert all((tmp_path / "figs" / f).read_bytes()[:4] == b"%PDF" for f in figs)


def test_report_numbers_match_the_store(store):
    data = load_study(store)
    frame = actlab.load_results(store)
    for row in data.rows:
        mean = frame[(frame.activation == row["activation"]) & (frame.phase == "test")].final_acc.mean()
        assert row["mean"] == pytest.approx(mean)
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_cost_against_accuracy_carries_both_intervals(store):
    """The Pareto plot's points are means; their 95% intervals (the interleaved timing's and over seeds) are drawn
    as error bars, so overlapping points are not read as ordered."""
    data = load_study(store)
    bars = cost_intervals(data)
    for row in data.rows:
        c_lo, c_hi, a_lo, a_hi = bars[row["activation"]]
        assert (c_lo, c_hi) == (row["cost"]["low"], row["cost"]["high"]) and c_lo <= row["cost"]["ratio"] <= c_hi
        assert (a_lo, a_hi) == (row["ci_low"], row["ci_high"])
    page = render(data)
    assert page.count('"error_y": {"type": "data"') == 2 and "where bars overlap, the order is not established" in page


def test_report_errors(store, tmp_path):
    result = runner.invoke(app, ["report", str(store), "--study", "nope"])
    assert result.exit_code != 0 and "no study 'nope'" in str(result.exception)
    result = runner.invoke(app, ["report", str(store), "--format", "gif"])
    assert "--format 'gif'" in str(result.exception)
    result = runner.invoke(app, ["report", str(tmp_path / "missing.db")])
    assert "no results store" in str(result.exception)


def test_compare_writes_the_report_by_default_and_no_report_skips_it(tmp_path):
    db = tmp_path / "c.db"
    result = runner.invoke(app, ["compare", "relu", "tanh", "--seeds", "2", "--epochs", "1", "--lr", "0.01", "--store",
                                 str(db)])
    assert result.exit_code == 0, result.output
    path = re.search(r"report: (\S+\.html)", result.output).group(1)
    assert path.startswith(str(tmp_path)) and "Plotly.newPlot" in open(path).read()
    db2 = tmp_path / "d.db"
    result = runner.invoke(app, ["compare", "relu", "--seeds", "2", "--epochs", "1", "--lr", "0.01", "--store",
                                 str(db2),
                                 "--no-report"])
    assert result.exit_code == 0 and "report:" not in result.output
    assert [p.name for p in tmp_path.glob("report-*.html")] == [Path(path).name]  # the first run's only


def test_names_are_escaped_in_the_page(store):
    import dataclasses

    data = load_study(store)
    new = "<b>x</b>"
    ren = lambda lab: new if lab == "relu" else lab  # noqa: E731
    data.labels = [ren(lab) for lab in data.labels]
    out = data.outcome
    out.baseline = ren(out.baseline)
    out.rows = [{**r, "activation": ren(r["activation"])} for r in out.rows]
    out.scores = {ren(k): v for k, v in out.scores.items()}
    out.pairs = [dataclasses.replace(p, a=ren(p.a), b=ren(p.b)) for p in out.pairs]
    data.curves = {m: {ren(k): v for k, v in c.items()} for m, c in data.curves.items()}
    data.activations = {ren(k): v for k, v in data.activations.items()}
    data.chosen_lr = {ren(k): v for k, v in data.chosen_lr.items()}
    data.tuning = {ren(k): v for k, v in data.tuning.items()}
    page = render(data)
    body = page.split("</head>", 1)[1]
    assert "<b>x</b>" not in body and "&lt;b&gt;x&lt;/b&gt;" in body


def test_pareto_front():
    pts = {"a": (1.0, 0.7), "b": (2.0, 0.8), "c": (2.5, 0.75), "d": (0.5, 0.6)}
    assert sorted(pareto_front(pts)) == ["a", "b", "d"]


def test_failed_groups_still_missing_are_listed_escaped(tmp_path):
    import shutil

    from actlab.experiments.results.store import Store

    db = tmp_path / "f.db"
    actlab.compare("relu", seeds=2, store=str(db), epochs=1, batch_size=200, study="s")
    with Store(str(db)) as store:
        trained = [t["trial_key"] for t in store.trials()]
        store.write_failure("s", "test", "<i>bad</i>", "mnist1d", 0.01, ["missing-key"], "RuntimeError: <boom>")
        store.write_failure("s", "test", "relu", "mnist1d", 0.01, trained, "retried later and stored")
        store.write_failure("other", "test", "tanh", "mnist1d", 0.01, ["k2"], "another study")
    data = load_study(db, "s")
    assert [f["activation"] for f in data.failures] == ["<i>bad</i>"] and data.failures[0]["missing"] == 1
    body = render(data).split("</head>", 1)[1]
    assert "id='failures'" in body and "&lt;boom&gt;" in body and "<i>bad</i>" not in body
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_share_axes_start_at_zero_and_lr_ticks_are_the_rates_tried(store, tmp_path, monkeypatch):
    """Dead units are a share: the axis starts at 0 (an all-zero series got plotly's -1 to 1); the lr axis labels
    the rates tried instead of minor ticks (\"3 4 5 ... 0.01 2 3\")."""
    from actlab.report import html as report_html
    from actlab.report import static

    data = load_study(store)
    dead = report_html._band_figure(data, "dead_fraction", "Dead units", "dead fraction (%)", 100.0, nonnegative=True)
    assert dead["layout"]["yaxis"]["range"][0] == 0 and dead["layout"]["yaxis"]["range"][1] >= 1.0
    tuning = report_html._tuning_figure(data)
    rates = sorted({lr for curve in data.tuning.values() for lr in curve})
    assert tuning["layout"]["xaxis"]["tickvals"] == rates
    assert tuning["layout"]["xaxis"]["ticktext"] == [f"{r:g}" for r in rates]

    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    static.write_figures(data, tmp_path / "figs")
    by_name = {fig.axes[0].get_ylabel(): fig for fig in kept if fig is not None and fig.axes}
    assert by_name["dead units (%)"].axes[0].get_ylim()[0] == 0
    lr_axis = next(fig.axes[0] for fig in kept if fig is not None and fig.axes and
                   fig.axes[0].get_xlabel() == "learning rate")
    assert [t.get_text() for t in lr_axis.get_xticklabels()] == [f"{r:g}" for r in rates]
    assert not any(t.get_text() for t in lr_axis.get_xticklabels(minor=True))


def test_provenance_records_the_machine_load_during_the_run(store):
    data = load_study(store)
    assert re.fullmatch(r"\d+\.\d\d-\d+\.\d\d \(\d+ cores\)", data.provenance["load"])
    assert "machine load (1-min average" in render(data) and data.provenance["load"] in render(data)
