"""The comparison engine's trust defects (issue 12), each with a reproducer: fair learning rates, baseline
comparisons, exact counts, trial identity, per-study reports, cost, a locked store and a full disk, and a null
comparison."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_data import write_idx_set
from torch import nn

import actlab
from actlab.experiments import stats
from actlab.experiments.comparison.compare import fingerprints, parse_contender, run_comparison
from actlab.experiments.comparison.config import StudyConfig
from actlab.experiments.comparison.wording import method_line, row_cells
from actlab.experiments.results.store import Store, StoreError
from actlab.experiments.training.trainer import train_group
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import resolve_task
from actlab.report.data import load_study
from actlab.report.html import render
from actlab.report.markdown import render_markdown

TINY = {"epochs": 2, "batch_size": 200}


def config(store, *acts, seeds=3, **kw) -> StudyConfig:
    recipe = {**TINY, **kw.pop("recipe", {})}
    return StudyConfig(activations=tuple(acts), seeds=seeds, store=str(store), recipe_overrides=recipe,
                       cost=kw.pop("cost", False), **kw)


# ----- fair learning rates ---------------------------------------------------------------------------------------

def test_a_grid_of_rates_trains_as_one_batch_with_the_numbers_of_separate_runs():
    task = resolve_task("mnist1d(width=32)")
    data = task.load()
    recipe = Recipe(epochs=2, batch_size=200)
    together = train_group(task, data, "swish", False, recipe, 0, [0, 1, 0, 1], lr=[3e-3, 3e-3, 3e-2, 3e-2])
    alone = [r for lr in (3e-3, 3e-2) for r in train_group(task, data, "swish", False, recipe, 0, [0, 1], lr=lr)]
    assert [r.lr for r in together] == [r.lr for r in alone]
    for a, b in zip(together, alone):
        assert a.epochs[-1].test_correct == b.epochs[-1].test_correct
        assert a.epochs[-1].train_loss == pytest.approx(b.epochs[-1].train_loss, rel=1e-4)
    assert together[0].epochs[-1].train_loss != together[2].epochs[-1].train_loss  # the rates did differ


def test_each_activation_gets_its_own_lr_chosen_on_validation_by_default(tmp_path):
    db = tmp_path / "t.db"
    res = run_comparison(config(db, "relu", "tanh", seeds=2, tune_seeds=2), command="t")
    assert res.lr_grid == (0.00333, 0.01, 0.03)  # the recipe's 1e-2 divided and multiplied by 3
    frame = actlab.load_results(db)
    tune, test = frame[frame.phase == "tune"], frame[frame.phase == "test"]
    assert len(tune) == 2 * 3 * 2 and set(tune.lr) == set(res.lr_grid)
    assert set(tune.n_test) == {800} and set(test.n_test) == {1000}  # validation carved from training data
    for label, lr in res.chosen_lr.items():
        curve = res.tuning[label]
        assert lr == max(curve, key=lambda r: (curve[r], -r))
        assert set(test[test.activation == label].lr) == {lr}


def test_pinned_lr_is_said_in_the_verdict_and_cannot_be_combined_with_a_grid(tmp_path):
    from typer.testing import CliRunner

    from actlab.cli import app

    out = CliRunner().invoke(app, ["compare", "relu", "tanh", "--seeds", "2", "--epochs", "1", "--lr", "0.02",
                                   "--no-cost", "--no-report", "--store", str(tmp_path / "p.db")]).output
    flat = " ".join(out.split())
    assert "pinned (not tuned): the verdicts hold at lr 0.02 only" in flat
    proc = subprocess.run([sys.executable, "-m", "actlab.cli", "compare", "relu", "--lr", "0.01", "--tune-lr",
                           "1e-3,1e-2"], capture_output=True, text=True)
    assert proc.returncode == 2 and "give one of them" in proc.stderr and "Traceback" not in proc.stderr


def test_grid_edge_is_flagged():
    from actlab.experiments.comparison.wording import lr_lines

    lines = lr_lines((1e-3, 1e-2), {"relu": 1e-2}, {"relu": {1e-3: 0.5, 1e-2: 0.6}}, 0.2, 3)
    assert "at the edge of the grid" in lines[1]


# ----- statistics ---------------------------------------------------------------------------------------------

def test_baseline_against_each_other_with_holm_over_k_minus_1_and_friedman(tmp_path):
    db = tmp_path / "b.db"
    res = run_comparison(config(db, "relu", "tanh", "sigmoid", seeds=3, recipe={"lr": 1e-2}), command="t")
    assert [(p.a, p.b) for p in res.pairs] == [("relu", "tanh"), ("relu", "sigmoid")]
    assert res.outcome.friedman is not None and res.outcome.friedman.k == 3
    every = run_comparison(config(db, "relu", "tanh", "sigmoid", seeds=3, recipe={"lr": 1e-2}, all_pairs=True,
                                  study="all"), command="t")
    assert len(every.pairs) == 3 and every.ran == 0  # the same trials, another family of tests
    other = run_comparison(config(db, "relu", "tanh", "sigmoid", seeds=3, recipe={"lr": 1e-2}, baseline="tanh",
                                  study="tanh"), command="t")
    assert [(p.a, p.b) for p in other.pairs] == [("tanh", "relu"), ("tanh", "sigmoid")]
    with pytest.raises(actlab.ActlabError, match="baseline = 'gelu' is not among"):
        run_comparison(config(db, "relu", "tanh", baseline="gelu"), command="t")


def test_power_warning_counts_the_baseline_family():
    assert stats.n_tests(8, all_pairs=False) == 7 and stats.n_tests(8, all_pairs=True) == 28
    assert stats.min_seeds_for_significance(7) < stats.min_seeds_for_significance(28)


def test_one_seed_gives_no_interval_and_no_verdict():
    """A t interval needs two values: one seed used to print a zero-width interval [m, m], and its verdict read
    "no significant difference" with that interval, as if the difference were known exactly."""
    assert all(math.isnan(v) for v in stats.mean_interval([0.7]))
    assert stats.mean_interval([0.7, 0.7]) == (0.7, 0.7)  # all equal: the t interval is the point itself
    (summary,) = stats.summarize({"relu": {0: 0.686}})
    assert math.isnan(summary.ci_low) and math.isnan(summary.ci_high)
    assert stats.interval_text(summary.mean, summary.ci_low, summary.ci_high, lambda v: f"{100 * v:.2f}") == \
        "68.60 (no interval)"
    (pair,) = stats.pairwise({"relu": {0: 0.686}, "gelu": {0: 0.745}})
    text = pair.verdict()
    assert not pair.significant and "undecided with 1 paired seed (no interval, no test)" in text
    assert "[" not in text and "no significant difference" not in text


def test_a_one_seed_comparison_says_so_in_every_output(tmp_path):
    db = tmp_path / "one.db"
    res = run_comparison(config(db, "relu", "gelu", seeds=1, recipe={"lr": 1e-2}), command="t")
    assert res.outcome.rows[0]["ci_low"] != res.outcome.rows[0]["ci_low"]  # NaN: no interval
    assert row_cells(res.outcome.rows[0])["accuracy"].endswith("(no interval)")
    # both warnings, each a sentence, in the terminal's outcome and in the report rebuilt from the store
    warning = res.outcome.warning
    assert "only 1 seed:" in warning and "conclusion. With 1 seed and 1 paired test," in warning
    assert load_study(db).warning == warning
    summary = render_markdown(load_study(db))
    assert "(no interval)" in summary and "undecided with 1 paired seed" in summary
    page = render(load_study(db))
    assert "(no interval)</td><td>-</td>" in page and "undecided with 1 paired seed" in page  # no test, no p


def test_diverged_runs_are_named_next_to_the_verdict(tmp_path):
    res = run_comparison(config(tmp_path / "d.db", "relu", "gelu", seeds=2, recipe={"lr": 1e300}), command="t")
    assert [r["diverged"] for r in res.outcome.rows] == [2, 2]
    assert "relu: 2 of 2 runs diverged (non-finite training loss); they count with the accuracy they ended at" \
        in res.outcome.notes


def test_models_of_different_sizes_are_named_next_to_the_verdict(tmp_path):
    """A gated activation doubles the MLP layer before it: swiglu's model is about twice relu's, which the verdicts
    must not pass off as the activation's doing."""
    db = tmp_path / "s.db"
    res = run_comparison(config(db, "relu", "swiglu", "prelu", seeds=2, recipe={"lr": 1e-2}), command="t")
    params = {r["activation"]: r["parameters"] for r in res.outcome.rows}
    (note,) = [n for n in res.outcome.notes if "parameters" in n]  # prelu's few slopes stay within 1%
    assert note.startswith(f"swiglu's model has {params['swiglu']:,} parameters") and f"relu's {params['relu']:,}" \
        in note
    assert load_study(db).outcome.notes == res.outcome.notes


def test_a_learning_rate_grid_that_lists_a_rate_twice_is_refused(tmp_path):
    with pytest.raises(actlab.ActlabError, match=r"tune_lr = \[0.01, 0.01\] lists a value twice"):
        config(tmp_path / "g.db", "relu", "gelu", tune_lr=(0.01, 0.01))


def test_one_activation_gets_no_verdict_header_over_nothing():
    assert method_line("relu", False, 1).startswith("Verdicts: none; one activation")


def test_accuracies_are_exact_counts_and_best_is_gone(tmp_path):
    db = tmp_path / "c.db"
    res = run_comparison(config(db, "relu", "leaky_relu(negative_slope=0.0)", seeds=3, recipe={"lr": 1e-2}),
                         command="t")
    for t in res.trials:
        assert isinstance(t["final_correct"], int) and t["n_test"] == 1000
        assert t["final_acc"] == t["final_correct"] / 1000
        assert "best_acc" not in t
    assert all("best" not in key for key in res.outcome.rows[0])


def test_test_set_error_is_binomial():
    assert stats.test_set_halfwidth(0.7, 1000) == pytest.approx(0.0284, abs=2e-4)
    assert stats.test_set_halfwidth(0.7, 100) > 3 * stats.test_set_halfwidth(0.7, 1000)


def test_null_comparison_finds_nothing(tmp_path):
    """relu and leaky_relu(negative_slope=0) are one function: same initial weights, same data order."""
    res = run_comparison(config(tmp_path / "n.db", "relu", "leaky_relu(negative_slope=0.0)", seeds=5,
                                recipe={"lr": 1e-2}), command="t")
    (pair,) = res.pairs
    assert not pair.significant and pair.ci_low <= 0 <= pair.ci_high
    assert pair.prob_improvement == pytest.approx(0.5, abs=0.2)
    assert "no significant difference" in pair.verdict()


def test_cost_is_an_interleaved_ratio_with_an_interval(tmp_path):
    res = run_comparison(config(tmp_path / "k.db", "relu", "swish", seeds=2, recipe={"lr": 1e-2}, cost=True),
                         command="t")
    assert res.cost["relu"].ratio == 1.0
    swish = res.cost["swish"]
    assert swish.low <= swish.ratio <= swish.high and swish.step_ms > 0
    data = load_study(tmp_path / "k.db")
    assert data.rows[1]["cost"]["ratio"] == swish.ratio  # the report shows the same measurement


# ----- trial identity -------------------------------------------------------------------------------------------

def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).long()
    return x[:200], y[:200], x[200:], y[200:]


def test_a_changed_custom_model_is_not_reused(tmp_path):
    db = str(tmp_path / "m.db")
    runs = []
    for width in (16, 256):
        model = lambda make_act, w=width: nn.Sequential(nn.Linear(6, w), make_act(), nn.Linear(w, 2))  # noqa: E731
        runs.append(actlab.compare("relu", "swish", data=_data(), model=model, seeds=2, store=db, epochs=2,
                                   batch_size=50, lr=1e-2, cost=False))
    assert runs[1].ran == 4 and runs[1].skipped == 0
    assert [t["final_train_loss"] for t in runs[0].trials] != [t["final_train_loss"] for t in runs[1].trials]


def test_another_data_dir_is_not_reused(tmp_path):
    from actlab.experiments.workload import data as datasets

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write_idx_set(a, side=8)
    write_idx_set(b, side=8)
    (b / "train-labels-idx1-ubyte").write_bytes((a / "train-labels-idx1-ubyte").read_bytes()[:8] + bytes(60))
    datasets.idx_dataset.cache_clear()
    relu = [parse_contender("relu")]
    prints = []
    for folder in (a, b):
        task = resolve_task("mnist", data_dir=str(folder))
        prints.append(fingerprints(task, task.load(), relu)["relu"])
    assert prints[0]["data"] != prints[1]["data"] and prints[0]["model"] == prints[1]["model"]


# ----- per-study reports ----------------------------------------------------------------------------------------

def test_each_study_reports_exactly_its_trials_and_force_touches_only_its_own(tmp_path):
    db = tmp_path / "s.db"
    run_comparison(config(db, "relu", "swish", seeds=3, recipe={"lr": 1e-2}, study="A"), command="t")
    second = run_comparison(config(db, "relu", "gelu", seeds=3, recipe={"lr": 1e-2}, study="B"), command="t")
    assert second.skipped == 3  # relu reused
    a, b = load_study(db, "A"), load_study(db, "B")
    assert a.labels == ["relu", "swish"] and b.labels == ["relu", "gelu"]
    assert list(b.chosen_lr) == ["relu", "gelu"]  # the study's order, not the stored JSON's sorted keys
    assert [len(v) for v in b.final_by_seed.values()] == [3, 3]
    assert load_study(db).study == "B"
    before = {t["trial_id"] for t in a.trials}
    run_comparison(config(db, "relu", "gelu", seeds=3, recipe={"lr": 1e-2}, study="B", force=True), command="t")
    after_a = load_study(db, "A")
    assert {t["trial_id"] for t in after_a.trials} == before
    assert [s.mean for s in after_a.summaries] == [s.mean for s in a.summaries]
    fewer = run_comparison(config(db, "relu", "swish", seeds=2, recipe={"lr": 1e-2}, study="A"), command="t")
    shown = load_study(db, "A")
    assert [s.n for s in shown.summaries] == [2, 2]
    assert [s.mean for s in shown.summaries] == [s.mean for s in fewer.summaries]


# ----- the store under pressure ---------------------------------------------------------------------------------

def test_a_locked_store_waits_then_fails_clearly(tmp_path):
    db = tmp_path / "l.db"
    Store(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process .*waited 0.2 s"):
            with Store(db, timeout=0.2) as store:
                store.write_failure("s", "test", "relu", "mnist1d", 0.01, ["k"], "boom")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_full_disk_leaves_no_partial_trial(tmp_path):
    db = tmp_path / "f.db"
    res = run_comparison(config(db, "relu", seeds=2, recipe={"lr": 1e-2}), command="t")
    record = {**res.trials[0], "trial_id": None, "note": "x" * 200_000}
    epochs = [{"epoch": e, "train_loss": 1.0, "test_loss": 1.0, "test_acc": 0.5, "dead_fraction": 0.0,
               "train_seconds": 0.1} for e in range(1, 3)]
    with Store(db) as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is full two pages on
        with pytest.raises(StoreError, match="disk holding the store .* is full"):
            store.write_trial(record, epochs)
    with Store(db) as store:
        assert len(store.trials()) == 2 and len(store.epochs([t["trial_id"] for t in store.trials()])) == 4


def test_a_store_from_the_older_schema_is_refused_untouched(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute("INSERT INTO meta VALUES ('format', 'actlab-results'), ('schema_version', '1')")
    before = db.read_bytes()
    with pytest.raises(StoreError, match="older actlab .* new --store path"):
        Store(db)
    assert db.read_bytes() == before


# ----- study names --------------------------------------------------------------------------------------------------

def test_runs_with_other_settings_get_other_names_and_a_reused_name_is_refused(tmp_path):
    """A tuned run, --lr 3e-3 and --lr 3e-2 of the same pair all became "mnist1d: swish vs leaky_relu": the store kept
    the last record only and the tuned run's report was overwritten."""
    db = tmp_path / "n.db"
    tuned = run_comparison(config(db, "relu", "tanh", seeds=2, tune_lr=(3e-3, 1e-2), recipe={"lr": 1e-2}),
                           command="t")
    low = run_comparison(config(db, "relu", "tanh", seeds=2, recipe={"lr": 3e-3}), command="t")
    high = run_comparison(config(db, "relu", "tanh", seeds=2, recipe={"lr": 3e-2}), command="t")
    names = [tuned.study, low.study, high.study]
    assert len(set(names)) == 3
    assert "lr tuned from 0.003, 0.01" in tuned.study and "lr 0.003 pinned" in low.study
    assert "epochs=" in low.study  # a recipe field set away from the task's
    with Store(db) as store:
        assert set(names) <= set(store.studies())
    again = run_comparison(config(db, "relu", "tanh", seeds=3, recipe={"lr": 3e-3}), command="t")
    assert again.study == low.study and again.skipped == 4  # more seeds extend a study; the first two are reused
    with pytest.raises(actlab.ActlabError, match=r"already holds a run with other settings \(recipe lr: 0.003 stored"):
        run_comparison(config(db, "relu", "tanh", seeds=2, recipe={"lr": 1e-2}, study=low.study), command="t")


# ----- identity -------------------------------------------------------------------------------------------------------

def test_a_changed_custom_forward_or_init_is_not_reused(tmp_path):
    """The fingerprint covered a custom model's structure and the factory's own source, not the classes it calls:
    doubling the logits in a custom module's forward, or changing its init, reused all the old trials."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 6, generator=g)
    y = (x[:, 0] > 0).long()
    data = (x[:80], y[:80], x[80:], y[80:])

    class Head(nn.Module):
        scale, init_std = 1.0, None

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 2)
            if self.init_std is not None:
                nn.init.normal_(self.fc.weight, std=self.init_std)

        def forward(self, h):
            return self.fc(h) * self.scale

    def model(make_act):
        return nn.Sequential(nn.Linear(6, 16), make_act(), Head())

    db = str(tmp_path / "c.db")
    first = actlab.compare("relu", data=data, model=model, seeds=2, epochs=1, lr=0.01, store=db)
    assert first.ran == 2
    assert actlab.compare("relu", data=data, model=model, seeds=2, epochs=1, lr=0.01, store=db).skipped == 2
    Head.scale = 2.0  # the forward changed: logits x2; the same study, so the run says why nothing is reused
    with pytest.warns(UserWarning, match=r"cannot be reused for relu \(the model's initialisation, its forward"):
        again = actlab.compare("relu", data=data, model=model, seeds=2, epochs=1, lr=0.01, store=db)
    assert again.ran == 2 and again.skipped == 0
    Head.init_std = 0.5  # the init changed
    assert actlab.compare("relu", data=data, model=model, seeds=2, epochs=1, lr=0.01, store=db,
                          study="init").ran == 2


def test_reruns_that_only_change_the_analysis_or_force_are_not_refused(tmp_path):
    """The name check blocked --force, another baseline and all-pairs, which train the same trials; and a study's
    --quick run refused the full one (the same record name)."""
    db = tmp_path / "r.db"
    first = run_comparison(config(db, "relu", "tanh", seeds=2, recipe={"lr": 1e-2}), command="t")
    for extra in ({"baseline": "tanh"}, {"all_pairs": True}):
        again = run_comparison(config(db, "relu", "tanh", seeds=2, recipe={"lr": 1e-2}, **extra), command="t")
        assert again.study == first.study and again.ran == 0
    forced = run_comparison(config(db, "relu", "tanh", seeds=2, recipe={"lr": 3e-2}, study=first.study, force=True),
                            command="t")
    assert forced.ran == 4


def test_keys_do_not_move_with_threads_or_the_cpus_vector_width():
    """The probe hashed float32 bits: one thread against two, or AVX2 against none, changed every custom model's
    key and retrained stores moved to another machine."""
    import json
    import os
    import subprocess
    import sys

    code = ("import sys, json, torch; torch.set_num_threads(int(sys.argv[1])); from torch import nn; "
            "from actlab.experiments.workload.tasks import custom_task, resolve_task; "
            "from actlab.experiments.comparison.compare import fingerprints, parse_contender; "
            "g = torch.Generator().manual_seed(0); x = torch.randn(120, 1, 12, 12, generator=g); "
            "y = (x.mean((1, 2, 3)) > 0).long(); "
            "m = lambda a: nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), a(), nn.Flatten(), nn.Linear(800, 2)); "
            "t = resolve_task(custom_task((x[:80], y[:80], x[80:], y[80:]), m).text); "
            "print(json.dumps({k: v['probe'] for k, v in fingerprints(t, t.load(), "
            "[parse_contender('relu'), parse_contender('swish')]).items()}))")
    runs = []
    for threads, isa in (("1", None), ("2", None), ("2", "default")):
        env = {**os.environ, **({"ATEN_CPU_CAPABILITY": isa} if isa else {})}
        out = subprocess.run([sys.executable, "-c", code, threads], env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    assert runs[0] == runs[1] == runs[2]


# ----- cost ---------------------------------------------------------------------------------------------------------

def test_a_cost_measured_under_load_says_it_cannot_be_trusted(tmp_path, monkeypatch):
    """On a loaded machine the step-time ratio read 0.06x [0.04, 0.43] while s/epoch said the opposite, the report's
    Pareto front was built on it, and nothing warned."""
    from actlab.experiments.comparison import cost as cost_module
    from actlab.report.data import cost_points, load_study

    def noisy(steps, device, rounds, min_block_s):
        rng = np.random.default_rng(0)
        return {name: list(rng.uniform(0.001, 0.004, rounds)) for name in steps}  # a busy machine's spread

    monkeypatch.setattr(cost_module, "interleaved", noisy)
    res = run_comparison(config(tmp_path / "k.db", "relu", "tanh", seeds=2, recipe={"lr": 1e-2}, cost=True),
                         command="t")
    assert all(c.unreliable and "varied" in c.unreliable for c in res.cost.values())
    assert any("cost column" in n and "unreliable" in n for n in res.outcome.notes)
    assert row_cells(res.outcome.rows[1])["cost"].endswith("unreliable")
    assert "UNRELIABLE" in cost_points(load_study(tmp_path / "k.db"))[1]


def test_a_ratio_that_contradicts_the_training_runs_is_marked():
    from actlab.experiments.comparison.cost import Cost, check_against_epochs

    costs = {"relu": Cost(1.0, 1.0, 1.0, 1.0), "swish": Cost(0.1, 0.06, 0.04, 0.43)}
    marked = check_against_epochs(costs, {"relu": 0.020, "swish": 0.022}, "relu")
    assert "swish's 0.06x disagrees with the training runs' s/epoch ratio 1.10x" in marked["relu"].unreliable
    steady = check_against_epochs({"relu": Cost(1.0, 1.0, 1.0, 1.0), "swish": Cost(1.1, 1.1, 1.05, 1.15)},
                                  {"relu": 0.020, "swish": 0.022}, "relu")
    assert all(c.unreliable is None for c in steady.values())


def test_trials_stored_by_an_earlier_actlab_are_said_to_be_retrained():
    """Old identities lack the fields the new key holds: the warning compared only the fields both had and said
    nothing, and the first run after an upgrade retrained everything silently."""
    import json

    from actlab.experiments.comparison.compare import stale_reasons

    old = {"activation": "relu", "trainable": 0,
           "identity": json.dumps({"data": "d", "model": "m", "trainer": "t-python", "parameters": 10})}
    now = {"relu": {"data": "d", "model": "m", "code": "c", "route": "native", "trainer": "t-compiled",
                    "parameters": 10}}
    assert "relu (an earlier actlab stored them" in stale_reasons([old], now)
    same = {"activation": "relu", "trainable": 0, "identity": json.dumps(now["relu"])}
    assert stale_reasons([same], now) is None


def test_a_large_plan_is_announced_and_exports_say_which_studies_use_a_trial(tmp_path, monkeypatch):
    """200 activations planned 1,200 tuning trials without a word; export returned duplicates with no mark of
    which study used them."""
    from actlab.experiments.comparison import compare as comparison

    monkeypatch.setattr(comparison, "LARGE_PLAN", 10)
    said = []
    db = tmp_path / "p.db"
    run_comparison(config(db, "relu", "tanh", seeds=2, tune_lr=(3e-3, 1e-2), recipe={"lr": 1e-2}, study="A"),
                   progress=lambda event, payload: said.append(payload) if event == "warning" else None, command="t")
    assert any("this run plans 12 trials (8 to tune the rates of 2 activations, 4 to test them)" in s for s in said)
    run_comparison(config(db, "relu", seeds=2, recipe={"lr": 1e-2}, study="B"), command="t")
    frame = actlab.load_results(db)
    shared = frame[(frame.activation == "relu") & (frame.phase == "test")]
    assert set(shared["used_by"]) == {"A; B"} and set(shared["study"]) == {"A"}


def test_a_key_stored_by_a_concurrent_run_is_not_stored_twice(tmp_path):
    """Two compares sharing an activation both trained it and stored 36 rows for 27 keys."""
    db = tmp_path / "c.db"
    first = run_comparison(config(db, "relu", seeds=2, recipe={"lr": 1e-2}, study="A"), command="t")
    with Store(db) as store:
        trial = store.trials()[0]
        epochs = store.epochs([trial["trial_id"]])
        again = store.write_trial({**trial, "trial_id": None}, epochs, unless_stored=True)  # the other run's write
        assert again == trial["trial_id"] and len(store.trials()) == 2
        forced = store.write_trial({**trial, "trial_id": None}, epochs)  # --force trains and stores anew
        assert forced != trial["trial_id"] and len(store.trials()) == 3
    assert first.ran == 2


# ----- device -------------------------------------------------------------------------------------------------------

def test_a_device_that_is_not_there_is_refused_before_training(tmp_path):
    from actlab.experiments.workload.recipe import ConfigError

    with pytest.raises(ConfigError, match="device = 'gpu' is not allowed"):
        config(tmp_path / "d.db", "relu", device="gpu")
    with pytest.raises(ConfigError, match="for local runs"):
        config(tmp_path / "d.db", "relu", device="cuda", backend="ray")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device = 'cuda': this machine has no CUDA device"):
            config(tmp_path / "d.db", "relu", device="cuda")
    assert not (tmp_path / "d.db").exists()


def test_device_cpu_named_is_the_default_path(tmp_path):
    """--device goes through the planner, the jobs and the cost timing; on the CPU its keys and numbers are the
    default's."""
    a = run_comparison(config(tmp_path / "a.db", "relu", "tanh", seeds=2, recipe={"lr": 1e-2}, cost=True),
                       command="t")
    b = run_comparison(config(tmp_path / "b.db", "relu", "tanh", seeds=2, recipe={"lr": 1e-2}, cost=True,
                              device="cpu"), command="t")
    assert {t["trial_key"]: t["final_acc"] for t in a.trials} == {t["trial_key"]: t["final_acc"] for t in b.trials}
    assert set(b.cost) == {"relu", "tanh"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compare_on_one_gpu(tmp_path):  # pragma: no cover - CI has no GPU
    res = run_comparison(config(tmp_path / "g.db", "relu", "swish", seeds=3, recipe={"lr": 1e-2}, device="cuda"),
                         command="t")
    assert res.ran == 6 and all(t["status"] == "ok" for t in res.trials)
    cpu = run_comparison(config(tmp_path / "g.db", "relu", "swish", seeds=3, recipe={"lr": 1e-2}, study="cpu"),
                         command="t")
    assert cpu.skipped == 0  # a GPU's trials are other trials


def test_a_trial_keeps_its_lr_in_one_place(tmp_path):
    """The recipe JSON held the group's base lr while the lr column held the member's rate from the grid."""
    import json

    res = run_comparison(config(tmp_path / "l.db", "relu", seeds=1, tune_lr=(3e-3, 3e-2), recipe={"lr": 1e-2}),
                         command="t")
    with Store(tmp_path / "l.db") as store:
        rows = store.trials()
    assert {t["lr"] for t in rows if t["phase"] == "tune"} == {3e-3, 3e-2}
    assert all("lr" not in json.loads(t["recipe"]) for t in rows) and res.ran == 2 * 2 + 1  # tune_seeds 2
