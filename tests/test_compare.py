"""The comparison pipeline end to end: store, resume (also after SIGKILL), determinism, tune-lr, config errors,
statistics and the CLI."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for_trials
from typer.testing import CliRunner

import actlab
from actlab.cli import app
from actlab.experiments import stats
from actlab.experiments.comparison.compare import run_comparison
from actlab.experiments.comparison.config import StudyConfig, load_study_file
from actlab.experiments.results.store import Store, StoreError
from actlab.experiments.workload.recipe import ConfigError, Recipe

QUICK = {"epochs": 2, "batch_size": 200, "lr": 1e-2}  # one lr pinned: tuning is tested on its own
runner = CliRunner()


def quick(store, *acts, seeds=3, **kw):
    return StudyConfig(activations=tuple(acts), seeds=seeds, store=str(store), recipe_overrides=QUICK, **kw)


def test_resume_skips_stored_trials_and_force_reruns(tmp_path):
    db = tmp_path / "r.db"
    first = run_comparison(quick(db, "relu", "tanh"), command="t")
    assert (first.ran, first.skipped) == (6, 0)
    again = run_comparison(quick(db, "relu", "tanh"), command="t")
    assert (again.ran, again.skipped) == (0, 6)
    assert [s.mean for s in again.summaries] == [s.mean for s in first.summaries]
    more = run_comparison(quick(db, "relu", "tanh", seeds=4), command="t")
    assert (more.ran, more.skipped) == (2, 6)
    forced = run_comparison(StudyConfig(**{**quick(db, "relu", "tanh").__dict__, "force": True}), command="t")
    assert forced.ran == 6
    with sqlite3.connect(db) as c:  # forcing trains the keys again under new ids; the older runs stay
        assert c.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 14
        assert c.execute("SELECT COUNT(DISTINCT trial_key) FROM trials").fetchone()[0] == 8
        assert c.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 28
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_command_twice_gives_identical_numbers(tmp_path):
    a = run_comparison(quick(tmp_path / "a.db", "swish", "leaky_relu"), command="t")
    b = run_comparison(quick(tmp_path / "b.db", "swish", "leaky_relu"), command="t")
    key = lambda t: (t["activation"], t["seed_index"])  # noqa: E731
    rows_a = sorted(a.trials, key=key)
    rows_b = sorted(b.trials, key=key)
    assert [(r["final_acc"], r["final_train_loss"]) for r in rows_a] == [(r["final_acc"], r["final_train_loss"])
                                                                         for r in rows_b]


def test_sigkill_mid_sweep_loses_only_trials_in_flight(tmp_path):
    db = tmp_path / "k.db"
    acts = ["relu", "tanh", "elu", "sigmoid", "softsign", "mish"]
    cmd = [sys.executable, "-m", "actlab.cli", "compare", *acts, "--seeds", "2", "--epochs", "3",
           "--batch-size", "200", "--lr", "0.01", "--store", str(db), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_trials(proc, db, 2)
    assert proc.poll() is None, f"the sweep finished before it could be killed: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        after_kill = c.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        orphans = c.execute("SELECT COUNT(*) FROM epochs WHERE trial_id NOT IN (SELECT trial_id FROM trials)"
                            ).fetchone()[0]
    assert 2 <= after_kill < 12 and orphans == 0
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 12
        assert c.execute("SELECT COUNT(DISTINCT trial_key) FROM trials").fetchone()[0] == 12
        assert c.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 36
        killed_rows = c.execute("SELECT activation, seed_index, final_acc FROM trials ORDER BY activation, seed_index"
                                ).fetchall()
    clean = run_comparison(StudyConfig(activations=tuple(acts), seeds=2, store=str(tmp_path / "clean.db"),
                                       recipe_overrides={"epochs": 3, "batch_size": 200, "lr": 0.01}), command="t")
    assert sorted((t["activation"], t["seed_index"], t["final_acc"]) for t in clean.trials) == killed_rows


def test_tune_lr_chooses_on_validation_and_stores_the_choice(tmp_path):
    db = tmp_path / "t.db"
    res = run_comparison(quick(db, "relu", "swish", seeds=2, tune_lr=(1e-4, 1e-2), tune_seeds=2), command="t")
    assert set(res.tuning) == {"relu", "swish"}
    for label, lr in res.chosen_lr.items():
        assert lr == max(res.tuning[label], key=res.tuning[label].get)
        assert all(t["lr"] == lr for t in res.trials if t["activation"] == label)
    frame = actlab.load_results(db)
    tune = frame[frame.phase == "tune"]
    assert len(tune) == 2 * 2 * 2 and set(tune.lr) == {1e-4, 1e-2}
    assert res.chosen_lr["relu"] == 1e-2  # 1e-4 barely moves in 2 epochs


def test_store_errors_leave_files_untouched(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("my precious notes")
    with pytest.raises(StoreError, match="not an actlab results database"):
        Store(text)
    assert text.read_text() == "my precious notes"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not an actlab results store.*customers"):
        Store(other)
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)


def test_unwritable_store_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(blocker / "sub" / "actlab.db")


@pytest.mark.parametrize("text,pattern", [
    ('activations = ["relu"]\nseed = 3\n', "unknown key 'seed'"),
    ('activations = ["relu"]\nseeds = "ten"\n', "'seeds' = 'ten' should be an integer"),
    ('activations = ["relu", 3]\n', "'activations': item 1 = 3 should be a string"),
    ('activations = ["relu"]\nseeds = true\nall_pairs = 1\n', "'seeds' = True should be an integer"),
    ('task = "digits"\n', "missing key 'activations'"),
    ('activations = ["relu"]\nvalidation_fraction = 0\n', "validation_fraction = 0.0"),
    ('activations = ["relu"]\n[recipe]\nepoch = 3\n', r"\[recipe\].*unknown key 'epoch'"),
    ('activations = ["relu"\n', "not valid TOML"),
])
def test_study_file_errors_name_the_key(tmp_path, text, pattern):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_study_file(f)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_study_file(tmp_path / "missing.toml")
    for kwargs, pattern in (({"seeds": 0}, "seeds = 0"), ({"jobs": -1}, "jobs = -1"), ({"tune_lr": (0.0,)}, "tune_lr")):
        with pytest.raises(ConfigError, match=pattern):
            StudyConfig(activations=("relu",), **kwargs)
    for kwargs, pattern in (({"lr": 0}, "lr = 0"), ({"epochs": 0}, "epochs = 0"), ({"batch_size": -5}, "batch_size"),
                            ({"optimizer": "lion"}, "optimizer = 'lion'")):
        with pytest.raises(ConfigError, match=pattern):
            Recipe(**kwargs)


def test_study_file_runs(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(f'activations = ["relu", "swish(trainable=True)"]\nseeds = 2\nstore = "{tmp_path / "s.db"}"\n'
                 '[recipe]\nepochs = 1\nbatch_size = 500\n')
    result = runner.invoke(app, ["compare", "--study", str(f), "-q"])
    assert result.exit_code == 0, result.output
    assert "swish(trainable=True)" not in result.output and "swish[trainable]" in result.output


def test_cli_compare_prints_table_verdicts_and_exports(tmp_path):
    db = tmp_path / "c.db"
    result = runner.invoke(app, ["compare", "swish", "leaky_relu", "--seeds", "3", "--epochs", "2", "--lr", "0.01",
                                 "--store", str(db)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "test acc % mean [95% CI over seeds]" in out and "Verdicts" in out and "leaky_relu" in out
    assert "pinned (not tuned): the verdicts hold at lr 0.01 only" in out.replace("\n", " ")
    assert "only 3 seeds" in out  # honest warning below 5 seeds
    csv = tmp_path / "t.csv"
    assert runner.invoke(app, ["export", "--store", str(db), "-o", str(csv)]).exit_code == 0
    import pandas as pd

    frame = pd.read_csv(csv)
    assert len(frame) == 6 and {"final_acc", "activation", "seed_index", "versions"} <= set(frame.columns)
    epochs = actlab.load_results(db, epochs=True)
    assert len(epochs) == 12 and {"test_acc", "dead_fraction", "activation"} <= set(epochs.columns)


@pytest.mark.parametrize("args,pattern", [
    (["compare", "swihs"], "did you mean 'swish'"),
    (["compare", "relu", "--task", "mnist2d"], "unknown task 'mnist2d'"),
    (["compare", "relu", "--seeds", "0"], "seeds = 0"),
    (["compare", "relu", "--epochs", "0"], "epochs = 0"),
    (["compare", "relu", "--lr", "-1"], "lr = -1"),
    (["compare", "relu", "--batch-size", "0"], "batch_size = 0"),
    (["compare", "relu", "--tune-lr", "1e-3,abc"], "--tune-lr"),
    (["compare", "relu(trainable=True)"], "relu has no parameter that can be trained"),
])
def test_cli_bad_input(args, pattern):
    proc = subprocess.run([sys.executable, "-m", "actlab.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert pattern in proc.stderr.replace("\n", " "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_process_pool_gives_the_same_numbers(tmp_path):
    import torch

    threads = torch.get_num_threads()
    # the two pool workers get cores // 2 threads each: the serial run uses as many, so float sums add up alike
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        serial = run_comparison(quick(tmp_path / "s.db", "relu", "tanh", seeds=2), command="t")
    finally:
        torch.set_num_threads(threads)
    pooled = run_comparison(quick(tmp_path / "p.db", "relu", "tanh", seeds=2, jobs=2), command="t")
    key = lambda t: (t["activation"], t["seed_index"])  # noqa: E731
    assert [t["final_acc"] for t in sorted(serial.trials, key=key)] == \
        [t["final_acc"] for t in sorted(pooled.trials, key=key)]


def test_statistics_with_scipy():
    rng = np.random.default_rng(0)
    a = dict(enumerate(0.70 + 0.005 * rng.standard_normal(10)))
    b = {i: v - 0.02 for i, v in a.items()}  # b is exactly 2 points worse on every seed
    c = dict(a)
    summaries = stats.summarize({"a": a, "b": b, "c": c})
    assert summaries[0].ci_low < summaries[0].mean < summaries[0].ci_high
    pairs = {(p.a, p.b): p for p in stats.pairwise({"a": a, "b": b, "c": c})}
    ab = pairs[("a", "b")]
    assert ab.mean_diff == pytest.approx(0.02) and ab.significant and ab.prob_improvement > 0.9
    assert ab.verdict().startswith("a beats b on accuracy by +2.00 points")
    ac = pairs[("a", "c")]
    assert not ac.significant and ac.p_value == 1.0 and "no significant difference" in ac.verdict()
    assert pairs[("b", "c")].verdict().startswith("c beats b")
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.seed_warning(3) and stats.seed_warning(5) is None


def test_python_api_with_own_tensors_and_model_factory(tmp_path):
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).long()
    data = (x[:200], y[:200], x[200:], y[200:])
    model = lambda make_act: nn.Sequential(nn.Linear(6, 32), make_act(), nn.Linear(32, 2))  # noqa: E731
    res = actlab.compare("relu", "swish(trainable=True)", data=data, model=model, seeds=3, store=str(tmp_path / "u.db"),
                         epochs=3, batch_size=50)
    assert {s.activation for s in res.summaries} == {"relu", "swish[trainable]"}
    assert all(0.5 < s.mean <= 1.0 for s in res.summaries)
    betas = [t["activation_params"] for t in res.trials if t["trainable"]]
    assert all("1.beta" in b for b in betas)
    with pytest.raises(actlab.ActlabError, match="both data= and model="):
        actlab.compare("relu", data=data)


def test_own_data_and_model_that_cannot_serve_a_comparison_fail_before_training(tmp_path):
    """Each failed in every trial group (or, for a factory that never called make_act, trained one network twice
    and compared it with itself) before these checks."""
    import torch
    from torch import nn

    x, xt = torch.randn(60, 6), torch.randn(20, 6)
    y, yt = (x[:, 0] > 0).long(), (xt[:, 0] > 0).long()
    good = lambda make_act: nn.Sequential(nn.Linear(6, 8), make_act(), nn.Linear(8, 2))  # noqa: E731
    cases = [
        ((x, y, xt, yt), lambda make_act: nn.Linear(6, 2), "never called make_act"),
        ((x, y, xt, yt), lambda make_act: nn.Sequential(nn.Linear(6, 8), make_act(), nn.Linear(8, 1)),
         r"output for two examples is \(2, 1\); expected \(2, C\) logits with C >= 2"),
        ((x, y, xt, yt), lambda: None, r"model\(make_act\) failed \(TypeError"),
        ((x, y, xt, yt), lambda make_act: 3, "returned int, not an nn.Module"),
        ((x, y, xt, yt), lambda make_act: nn.Sequential(nn.Linear(5, 8), make_act()), "forward pass on two"),
        ((x, y, xt[:, :5], yt), good, r"test inputs have shape \(20, 5\) and train inputs \(60, 6\)"),
        ((x, y - 5, xt, yt), good, "train labels must be one class index per example"),
        ((x, y.float() + 0.5, xt, yt), good, "train labels must be one class index per example"),
    ]
    for data, model, message in cases:
        with pytest.raises(actlab.ActlabError, match=message):
            actlab.compare("relu", "gelu", data=data, model=model, seeds=2, epochs=1, store=str(tmp_path / "x.db"))
    assert not (tmp_path / "x.db").exists()  # nothing was written
    with pytest.raises(actlab.ActlabError, match="unknown option 'report'; options: .*recipe keys: batch_size"):
        actlab.compare("relu", "gelu", data=(x, y, xt, yt), model=good, report=False)


def test_fallback_to_per_seed_training_is_reported(tmp_path):
    result = runner.invoke(app, ["compare", "relu", "--task", "mnist1d-mlp(depth=2, width=16, norm=batch)",
                                 "--seeds", "2", "--epochs", "1", "--lr", "3e-3", "--store", str(tmp_path / "b.db")])
    assert result.exit_code == 0, result.output
    assert "BatchNorm updates running statistics in place; trained seed by seed" in result.output


def test_json_output_of_compare_report_and_export(tmp_path):
    import json

    store = str(tmp_path / "j.db")
    result = runner.invoke(app, ["compare", "relu", "swish", "--task", "mnist1d-mlp(depth=2, width=16)",
                                 "--seeds", "3", "--epochs", "1", "--tune-lr", "1e-3,3e-3", "--no-cost",
                                 "--store", store, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # nothing but the JSON on standard output
    assert out["activations"] == ["relu", "swish"] and out["store"] == store
    assert set(out["chosen_lr"]) == {"relu", "swish"} and out["lr_grid"] == [1e-3, 3e-3]
    outcome = out["outcome"]
    assert outcome["metric"]["key"] == "accuracy" and outcome["baseline"] == "relu"
    assert [r["activation"] for r in outcome["rows"]] == ["relu", "swish"] and outcome["rows"][0]["n"] == 3
    (pair,) = outcome["pairs"]
    assert {pair["a"], pair["b"]} == {"relu", "swish"} and isinstance(pair["significant"], bool)
    assert pair["verdict"] and pair["n"] == 3
    assert out["trials_run"] > 0 and out["failures"] == [] and out["report"].endswith(".html")

    reported = runner.invoke(app, ["report", store, "--json"])
    assert reported.exit_code == 0, reported.output
    summary = json.loads(reported.stdout)
    assert summary["study"] == out["study"] and summary["outcome"]["rows"] == outcome["rows"]
    assert summary["chosen_lr"] == out["chosen_lr"]
    by_option = runner.invoke(app, ["report", "--store", store, "--json"])  # --store, as compare and export name it
    assert by_option.exit_code == 0 and json.loads(by_option.stdout) == summary
    both = runner.invoke(app, ["report", store, "--store", str(tmp_path / "other.db")])
    assert isinstance(both.exception, actlab.ActlabError) and "two stores given" in str(both.exception)

    exported = runner.invoke(app, ["export", "--store", store, "-o", "-", "--format", "json"])
    assert exported.exit_code == 0, exported.output
    rows = json.loads(exported.stdout)
    assert len([r for r in rows if r["phase"] == "test"]) == 6 and {r["activation"] for r in rows} == {"relu", "swish"}
    written = tmp_path / "trials.json"
    assert runner.invoke(app, ["export", "--store", store, "-o", str(written), "--format", "json"]).exit_code == 0
    assert json.loads(written.read_text()) == rows
    refused = runner.invoke(app, ["report", store, "--json", "-o", "-"])
    assert isinstance(refused.exception, actlab.ActlabError) and "standard output" in str(refused.exception)
    markdown = runner.invoke(app, ["report", store, "-o", "-"])
    assert markdown.exit_code == 0 and markdown.stdout.startswith("#") and "wrote" not in markdown.stdout


def test_the_study_file_has_a_json_schema():
    from actlab.experiments.comparison.config import StudyConfig, StudyFile

    schema = StudyFile.model_json_schema()
    assert schema["required"] == ["activations"] and schema["additionalProperties"] is False
    config_fields = {f for f in StudyConfig.__dataclass_fields__ if f not in ("force", "recipe_overrides")}
    assert set(schema["properties"]) == config_fields  # every study setting can be written in a file


def test_other_recipe_fields_are_tuned_with_the_lr_per_activation(tmp_path):
    import json

    from actlab.experiments.comparison.outcome import tuning_curves

    config = StudyConfig(activations=("relu", "swish"), task="mnist1d-mlp(depth=2, width=16)", seeds=3,
                         store=str(tmp_path / "t.db"), tune_lr=(1e-3, 3e-3), tune={"weight_decay": [0, 0.05]},
                         cost=False, recipe_overrides={"epochs": 2})
    assert config.tune == {"weight_decay": (0.0, 0.05)}  # 0 and 0.0 are one setting
    result = run_comparison(config)
    assert result.ran == 2 * 2 * 2 * 2 + 2 * 3  # (activations x settings x rates x tuning seeds) + final runs
    with Store(config.store) as store:
        rows = [t for t in store.trials(store.study(result.study)["members"].values()) if t["phase"] == "tune"]
    for label in ("relu", "swish"):
        by_setting = {wd: tuning_curves([t for t in rows if json.loads(t["recipe"])["weight_decay"] == wd])[label]
                      for wd in (0.0, 0.05)}
        best = max(((v, -wd_order, -lr), wd, lr) for wd_order, (wd, curve) in enumerate(by_setting.items())
                   for lr, v in curve.items())
        assert result.chosen_settings[label] == {"weight_decay": best[1]} and result.chosen_lr[label] == best[2]
        assert result.tuning[label] == by_setting[best[1]]
        best_by_setting = {f"weight_decay={wd:g}": max(c.values()) for wd, c in by_setting.items()}
        assert result.tuning_settings[label] == best_by_setting
    finals = result.trials
    assert all(json.loads(t["recipe"])["weight_decay"] == result.chosen_settings[t["activation"]]["weight_decay"]
               for t in finals) and len(finals) == 6
    from actlab.report.data import load_study
    from actlab.report.markdown import render_markdown

    text = render_markdown(load_study(config.store))
    assert "and its own weight_decay from {0, 0.05}, chosen together" in text
    assert f"relu at lr {result.chosen_lr['relu']:g}, weight_decay=" in text


def test_tune_settings_are_checked_before_anything_trains(tmp_path):
    for tune, pattern in (({"lr": [1e-3]}, "tune_lr"), ({"weightdecay": [0.0]}, "not a recipe field"),
                          ({"weight_decay": []}, "non-empty"), ({"weight_decay": [-1.0]}, "weight_decay = -1.0"),
                          ({"optimizer": ["lion"]}, "optimizer = 'lion'"), ({"epochs": [2, 2]}, "twice")):
        with pytest.raises(ConfigError, match=pattern):
            StudyConfig(activations=("relu",), tune=tune)
    f = tmp_path / "s.toml"
    f.write_text('activations = ["relu"]\n[tune]\nweight_decay = [0, 0.05]\noptimizer = ["adamw", "sgd"]\n')
    config = load_study_file(f)
    assert config.tune == {"weight_decay": (0.0, 0.05), "optimizer": ("adamw", "sgd")}
    assert len(config.settings_grid()) == 4
    result = runner.invoke(app, ["compare", "relu", "--tune", "weight_decay"])
    assert isinstance(result.exception, ConfigError) and "FIELD=V1,V2" in str(result.exception)


def test_the_lr_lines_read_as_the_readme_shows_when_only_the_lr_is_tuned():
    from actlab.experiments.comparison.wording import lr_lines

    lines = lr_lines([0.00333, 0.01, 0.03], {"swish": 0.01}, {"swish": {0.00333: 0.618, 0.01: 0.679, 0.03: 0.676}},
                     0.2, 2)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert lines[1] in readme.splitlines()  # "  swish: lr 0.01; validation accuracy 0.00333: 61.8%, ..."
    assert lines[0] in readme.replace("\n", " ")
