"""actlab study / actlab claims: every study runs in --quick form with real assertions; findings are stored with
their declaration and rendered to docs; the docs hold full runs whose verdicts rest on enough seeds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import actlab
from actlab.cli import app
from actlab.experiments.results.store import Store
from actlab.experiments.studies import get_study, run_study, study_names

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("studies") / "s.db")


def test_study_list_shows_the_published_studies_and_claims_list_the_tutorials():
    result = runner.invoke(app, ["study", "--list"])
    assert result.exit_code == 0
    for name in ("selu-fixed-point", "edge-of-chaos", "depth", "ranking", "swish-beta", "noise", "glu-variants"):
        assert name in result.output and name in study_names("paper")
    result = runner.invoke(app, ["claims", "--list"])
    assert result.exit_code == 0
    for name in ("swish-deep", "relu-dies", "swish-gelu", "vanishing-gradients"):
        assert name in result.output and name in study_names("tutorial") and name not in study_names("paper")


def test_selu_fixed_point(store):
    f = run_study("selu-fixed-point", quick=True, store=store)
    assert f.verdict == "supported"
    assert f.numbers["norm"] == pytest.approx(0.78767, abs=5e-5)  # the paper prints 0.7877
    assert abs(f.numbers["mean"]) < 1e-6 and f.numbers["variance"] == pytest.approx(1.0, abs=1e-6)
    assert abs(f.numbers["mc_mean"]) < 0.1 and f.numbers["mc_variance"] == pytest.approx(1.0, abs=0.25)
    assert f.declaration["rule"].startswith("computed") and f.seeds == 0


def test_edge_of_chaos(store):
    f = run_study("edge-of-chaos", quick=True, store=store)
    assert f.verdict == "supported"
    assert f.numbers["relu"] == pytest.approx(2**0.5, abs=1e-9)
    assert f.numbers["elu"] == pytest.approx(1.22925, abs=2e-4)
    assert f.numbers["ratios"][100000] == pytest.approx(1.0, abs=0.01)


def test_swish_beta(store):
    f = run_study("swish-beta", quick=True, store=store)
    sup = f.numbers["sup"]
    assert sup[0.0] > sup[1.0] > sup[10.0] > sup[100.0] and sup[100.0] < 3e-3
    betas = f.numbers["trained_betas"]
    assert set(betas) == {"2.beta", "4.beta"} and all(len(v) == 2 for v in betas.values())
    assert f.verdict == "supported"


def test_depth_is_undecided_below_its_minimum_seeds(store):
    f = run_study("depth", quick=True, store=store)
    table = f.numbers["table"]
    assert set(table) == {"relu", "swish", "mish"} and all(set(v) == {"2", "6"} for v in table.values())
    for by_depth in table.values():
        for mean, lo, hi in by_depth.values():
            assert 0.0 <= lo <= mean <= hi <= 1.0
    assert f.verdict == "undecided" and "fewer than the rule's declared minimum of 8" in f.summary
    assert f.would_change == "run with at least 8 seeds (the rule's minimum)"
    trials = actlab.load_results(store)
    deep = trials[trials.study == "study:depth:6 (quick)"]  # a --quick run keeps its own record
    assert len(deep) and not deep.vectorized.any()  # batch norm: trained seed by seed, and recorded so


def test_a_study_decides_once_it_has_its_minimum_seeds(store):
    # glu-variants' quick model is tiny; 8 seeds reach the rule's minimum, so the verdict comes from the tests
    f = run_study("glu-variants", quick=True, seeds=8, store=store)
    assert f.seeds == 8 and "fewer than" not in f.summary
    assert f.verdict in ("supported", "contradicted", "undecided")
    assert sum(line.count("p(Holm)") for line in f.lines) == 6  # one line per declared hypothesis


def test_ranking_reports_equal_functions_once():
    from actlab.experiments.studies.papers import distinct_activations

    kept, same = distinct_activations()
    assert same in ({"elu": "celu"}, {"celu": "elu"}) and "rrelu" not in kept  # elu = celu(alpha=1)
    assert {"relu", "swish", "mish", "gelu", "sigmoid", "tanh", "selu"} <= set(kept)


def test_noise_structure(store):
    f = run_study("noise", quick=True, store=store)
    acc = f.numbers["accuracy"]
    assert set(acc) == {f"{a} @ noise {n}" for a in ("gelu", "relu", "elu") for n in ("0", "0.25", "0.5", "1")}
    assert all(len(v) == 2 for v in acc.values())
    assert f.verdict == "undecided" and "fewer than the rule's declared minimum" in f.summary


def test_findings_are_stored_with_their_declaration_and_rendered(store, tmp_path):
    run_study("selu-fixed-point", quick=True, store=store)  # ~1 s each: this test does not rely on test order
    run_study("edge-of-chaos", quick=True, store=store)
    with Store(store) as st:
        rows = {r["study"]: r for r in st.findings()}
    assert rows["selu-fixed-point"]["verdict"] == "supported"
    assert rows["selu-fixed-point"]["declaration"]["source"].startswith("Klambauer")
    out = tmp_path / "findings.md"
    result = runner.invoke(app, ["findings", "--store", store, "-o", str(out), "--include-quick"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## selu-fixed-point" in text and "Klambauer" in text and "actlab study selu-fixed-point --quick" in text
    assert "**Rule** (declared before the run" in text
    result = runner.invoke(app, ["findings", "--store", store, "-o", str(out)])
    assert "no full study findings" in str(result.exception)


def test_old_findings_tables_are_read_with_three_verdicts(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE findings")
    conn.execute("CREATE TABLE findings (study TEXT NOT NULL, quick INTEGER NOT NULL, claim TEXT NOT NULL, source "
                 "TEXT NOT NULL, reproduced INTEGER, summary TEXT NOT NULL, lines TEXT NOT NULL, numbers TEXT NOT "
                 "NULL, command TEXT, created_at TEXT NOT NULL, PRIMARY KEY (study, quick))")
    conn.execute("INSERT INTO findings VALUES ('depth', 0, 'c', 's', 1, 'x', '[]', '{}', 'cmd', 'now')")
    conn.commit()
    conn.close()
    with Store(path) as st:
        assert st.findings()[0]["verdict"] == "supported"


def test_study_cli_prints_claim_protocol_and_verdict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "actlab.cli", "study", "edge-of-chaos", "--quick", "--store",
                           str(tmp_path / "e.db")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "claim:" in out and "Hayou" in out and "protocol:" in out and "verdict:" in out and "supported" in out
    # a quick run says what it changed next to the full protocol, so its numbers are not read as the protocol's
    assert f"quick:    {get_study('edge-of-chaos').quick} (what --quick changes from the protocol above" in out
    bad = subprocess.run([sys.executable, "-m", "actlab.cli", "study", "selu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "did you mean 'selu-fixed-point'" in bad.stderr
    assert get_study("depth").trains and not get_study("edge-of-chaos").trains


def test_claims_quick_runs_every_claim_and_writes_the_page(tmp_path):
    """`actlab claims --quick`: what CI runs. Two seeds are below every trained rule's minimum, so those claims are
    undecided, and the table says why."""
    out = tmp_path / "claims.md"
    proc = subprocess.run([sys.executable, "-m", "actlab.cli", "claims", "--quick", "--store",
                           str(tmp_path / "c.db"), "-o", str(out)], capture_output=True, text=True,
                          env={**__import__("os").environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for name in study_names("tutorial"):
        assert f"## {name}" in text, name
        study = get_study(name)
        if study.trains:
            assert re.search(rf"\| \[{re.escape(name)}\]\(#{re.escape(name)}\) \| undecided \|", text), name
    assert "undecided" in proc.stdout and "seeds" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "actlab.cli", "claims", "swish-dep"], capture_output=True, text=True)
    assert bad.returncode == 2 and "did you mean 'swish-deep'" in bad.stderr


def test_findings_appear_in_the_html_report(store):
    from actlab.report.data import load_study
    from actlab.report.html import render

    run_study("selu-fixed-point", quick=True, store=store)
    run_study("vanishing-gradients", quick=True, store=store)
    run_study("ranking", quick=True, store=store)
    page = render(load_study(store, "study:ranking (quick)"))
    assert "Published results checked in this store" in page and "selu-fixed-point" in page
    assert "fact-checked" in page and "vanishing-gradients" in page


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## ", text, flags=re.M)
    return {p.split("\n", 1)[0].strip(): p for p in parts[1:]}


@pytest.mark.parametrize("page,kind,command", [("findings.md", "paper", "actlab study"),
                                               ("claims.md", "tutorial", "actlab claims")])
def test_docs_hold_full_runs_whose_verdicts_rest_on_enough_seeds(page, kind, command):
    text = (DOCS / page).read_text(encoding="utf-8")
    assert "quick version" not in text  # the docs hold the full versions only
    sections = _sections(text)
    for name in study_names(kind):
        assert name in sections, name
        body = sections[name]
        assert f"(`{command} {name}" in body, name
        seeds = int(re.search(r"`, (\d+) seeds, ", body).group(1))
        verdict = re.search(r"\*\*Verdict\.\*\* \**(\w+)", body).group(1)
        study = get_study(name)
        if verdict != "undecided":
            assert seeds >= study.min_seeds, (name, seeds, study.min_seeds)
        assert study.rule.describe() in body, f"{name}: the page's rule is not the declared one"


def test_dash_writes_the_page_to_standard_output(store):
    run_study("selu-fixed-point", quick=True, store=store)
    result = runner.invoke(app, ["findings", "--store", store, "--include-quick", "-o", "-"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Findings") and "## selu-fixed-point" in result.output
    assert "wrote" not in result.output and not Path("-").exists()
    csv = runner.invoke(app, ["export", "--store", store, "-o", "-"])
    assert csv.exit_code == 0, csv.output
    assert "trial_id" in csv.output.splitlines()[0].split(",")  # the CSV header, not a file named "-"
