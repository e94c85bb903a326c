"""actlab study: every study runs in --quick form with real assertions; findings are stored and rendered."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

import actlab
from actlab.cli import app
from actlab.experiments.results.store import Store
from actlab.experiments.studies import get_study, run_study, study_names

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("studies") / "s.db")


def test_study_list():
    result = runner.invoke(app, ["study", "--list"])
    assert result.exit_code == 0
    for name in ("selu-fixed-point", "edge-of-chaos", "depth", "ranking", "swish-beta", "noise", "glu-variants"):
        assert name in result.output and name in study_names()


def test_selu_fixed_point(store):
    f = run_study("selu-fixed-point", quick=True, store=store)
    assert f.reproduced is True
    assert f.numbers["norm"] == pytest.approx(0.7877, abs=5e-4)
    assert all(abs(m) < 1e-3 and abs(v - 1) < 1e-3 for m, v in f.numbers["ends"])
    assert abs(f.numbers["mc_mean"]) < 0.1 and f.numbers["mc_variance"] == pytest.approx(1.0, abs=0.25)


def test_edge_of_chaos(store):
    f = run_study("edge-of-chaos", quick=True, store=store)
    assert f.reproduced is True
    assert f.numbers["relu"] == pytest.approx(2**0.5, abs=1e-9)
    assert f.numbers["elu"] == pytest.approx(1.22, abs=0.02)
    assert f.numbers["ratios"][1000] == pytest.approx(1.0, abs=0.05)


def test_swish_beta(store):
    f = run_study("swish-beta", quick=True, store=store)
    sup = f.numbers["sup"]
    assert sup[0.0] > sup[1.0] > sup[10.0] > sup[100.0] and sup[100.0] < 3e-3
    betas = f.numbers["trained_betas"]
    assert set(betas) == {"2.beta", "4.beta"} and all(len(v) == 2 for v in betas.values())
    assert f.reproduced is True


def test_depth_structure(store):
    f = run_study("depth", quick=True, store=store)
    table = f.numbers["table"]
    assert set(table) == {"relu", "swish", "mish", "leaky_relu"}
    assert all(set(v) == {"2", "6"} for v in table.values())
    for by_depth in table.values():
        for mean, lo, hi in by_depth.values():
            assert 0.0 <= lo <= mean <= hi <= 1.0
    assert f.reproduced in (True, False, None)
    trials = actlab.load_results(store)
    deep = trials[trials.study == "study:depth:6"]
    assert len(deep) == 8 and not deep.vectorized.any()  # batch norm: trained seed by seed, and recorded so


def test_ranking_structure(store):
    f = run_study("ranking", quick=True, store=store)
    ranks = f.numbers["ranks"]
    assert set(ranks) == {"relu", "swish", "sigmoid"}
    assert sum(ranks.values()) == pytest.approx(6.0)  # average ranks of 3 activations sum to 1 + 2 + 3
    assert f.numbers["cd"] > 0 and f.numbers["order"][0] in ranks
    assert f.reproduced is None  # 2 seeds cannot separate 3 activations by the critical difference


def test_findings_are_stored_and_rendered(store, tmp_path):
    run_study("selu-fixed-point", quick=True, store=store)  # ~1 s each: this test does not rely on test order
    run_study("edge-of-chaos", quick=True, store=store)
    with Store(store) as st:
        rows = st.findings()
    assert {r["study"] for r in rows} >= {"selu-fixed-point", "edge-of-chaos"}
    out = tmp_path / "findings.md"
    result = runner.invoke(app, ["findings", "--store", store, "-o", str(out), "--include-quick"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## selu-fixed-point" in text and "Klambauer" in text and "actlab study selu-fixed-point --quick" in text
    result = runner.invoke(app, ["findings", "--store", store, "-o", str(out)])
    assert "no full study findings" in str(result.exception)


def test_study_cli_prints_claim_source_and_verdict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "actlab.cli", "study", "edge-of-chaos", "--quick", "--store",
                           str(tmp_path / "e.db")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "claim:" in out and "Hayou" in out and "verdict:" in out and "reproduced" in out
    bad = subprocess.run([sys.executable, "-m", "actlab.cli", "study", "selu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "did you mean 'selu-fixed-point'" in bad.stderr
    assert get_study("depth").trains and not get_study("edge-of-chaos").trains


def test_findings_appear_in_the_html_report(store):
    from actlab.report.data import load_study
    from actlab.report.html import render

    run_study("selu-fixed-point", quick=True, store=store)
    run_study("ranking", quick=True, store=store)
    page = render(load_study(store, "study:ranking"))
    assert "Published claims checked in this store" in page and "selu-fixed-point" in page


def test_noise_structure(store):
    f = run_study("noise", quick=True, store=store)
    acc = f.numbers["accuracy"]
    assert set(acc) == {"gelu", "relu", "elu"}
    for by_amp in acc.values():
        assert list(by_amp) == ["0.0", "0.5", "1.0", "2.0", "3.0"] and all(len(v) == 2 for v in by_amp.values())
        assert sum(by_amp["3.0"]) < sum(by_amp["0.0"])  # heavy noise hurts every activation
    assert f.reproduced is None and "too few seeds" in f.summary  # 2 seeds cannot decide


def test_docs_findings_hold_every_study_from_a_full_run():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "findings.md").read_text(encoding="utf-8")
    assert "## Selection guide" in text
    for name in study_names():
        assert f"## {name}" in text, name
        assert f"(`actlab study {name}" in text, name
    assert "quick version" not in text  # docs hold the full versions only


def _pair(a, b, diff, significant):
    from actlab.experiments.stats import Pairwise

    p = 0.001 if significant else 0.5
    lo, hi = (diff - 0.01, diff + 0.01) if significant else (diff - 1, diff + 1)
    return Pairwise(a, b, 10, diff, lo, hi, p, p, 0.5, higher_is_better=False)


def test_glu_rule_on_synthetic_results():
    from actlab.experiments.studies import GLU_RULE, glu_verdict

    names = [(c, b) for c in GLU_RULE["challengers"] for b in GLU_RULE["baselines"]]
    win = [_pair(c, b, -0.05, True) for c, b in names]
    assert glu_verdict(win, 10) == (True, "every challenger beats every baseline")
    loss = win[:-1] + [_pair("squared_relu", "gelu", +0.05, True)]
    assert glu_verdict(loss, 10)[0] is False and "squared_relu vs gelu" in glu_verdict(loss, 10)[1]
    noise = win[:-1] + [_pair("squared_relu", "gelu", -0.01, False)]
    assert glu_verdict(noise, 10)[0] is None
    assert glu_verdict(win, 7)[0] is None and "minimum of 8" in glu_verdict(win, 7)[1]


def test_glu_variants_quick(store):
    f = run_study("glu-variants", quick=True, store=store)
    assert set(f.numbers["bits_per_char"]) == {"relu", "gelu", "swiglu", "geglu", "squared_relu"}
    assert f.reproduced is None and "fewer than the rule's minimum" in f.summary  # 2 seeds never decide
    assert any("rule (declared before the first run)" in line for line in f.lines)
