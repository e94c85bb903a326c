"""The language-modelling task: corpus split by file, parameter matching of gated MLPs, lower-is-better through the
engine, bad input before training, and a tiny end-to-end comparison."""

from __future__ import annotations

import math

import pytest
import torch

import actlab
from actlab.experiments import stats
from actlab.experiments.comparison.compare import run_comparison
from actlab.experiments.comparison.config import StudyConfig
from actlab.experiments.comparison.outcome import METRICS, tuning_curves
from actlab.experiments.training.trainer import train_group
from actlab.experiments.workload import text
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import resolve_task
from actlab.experiments.workload.transformer import TransformerLM, hidden_width, parameter_count
from actlab.nn import get

TINY = "lm(d_model=16, layers=1, heads=2, context=16, train_chars=6000, eval_chars=3000)"


def test_the_split_is_by_file_fixed_and_disjoint():
    files = text.corpus_files()
    names = {s: {p.relative_to(text.stdlib_root()).as_posix() for p in paths} for s, paths in files.items()}
    assert all(names.values())
    assert not (names["train"] & names["test"]) and not (names["train"] & names["validation"])
    assert not (names["validation"] & names["test"])
    for split, members in names.items():
        assert all(text.split_of(n) == split for n in members)
    assert not any("site-packages" in n or "/test/" in f"/{n}" for s in names.values() for n in s)
    share = len(names["train"]) / sum(len(v) for v in names.values())
    assert 0.7 < share < 0.9


def test_windows_are_next_byte_pairs_and_validation_is_its_own_files():
    data = resolve_task(TINY).load()
    assert data.x_train.shape[1] == 16 and data.y_train.shape == data.x_train.shape
    assert torch.equal(data.x_train[0, 1:], data.y_train[0, :-1])
    val = data.validation_split(0.2, 0)
    assert torch.equal(val.x_test, data.x_val) and torch.equal(val.x_train, data.x_train)
    assert not torch.equal(data.x_val[:4], data.x_test[:4])
    assert text.unigram_bits_per_char(data) > 3.0  # code is far from uniform over bytes, and far from trivial


@pytest.mark.parametrize("gated", ["glu", "reglu", "geglu", "swiglu"])
def test_gated_mlps_match_the_ungated_parameter_count(gated):
    for d_model in (48, 64, 256):
        dense = TransformerLM(256, 64, lambda: get("gelu"), d_model=d_model, layers=2, heads=4)
        glu = TransformerLM(256, 64, lambda: get(gated), d_model=d_model, layers=2, heads=4)
        assert glu.hidden % 8 == 0 and glu.hidden == hidden_width(d_model, 4.0, True)
        assert abs(parameter_count(glu) / parameter_count(dense) - 1) < 0.01
    for task in ("lm", "lm-large"):  # the presets themselves
        spec = resolve_task(task)
        ungated = TransformerLM(256, 8, lambda: get("relu"), d_model=spec.params["d_model"], heads=spec.params["heads"],
                                layers=spec.params["layers"])
        glu = TransformerLM(256, 8, lambda: get(gated), d_model=spec.params["d_model"], heads=spec.params["heads"],
                            layers=spec.params["layers"])
        assert abs(parameter_count(glu) / parameter_count(ungated) - 1) < 0.01, task


def test_bad_input_is_refused_before_training(tmp_path):
    with pytest.raises(actlab.ActlabError, match="heads = 3 does not divide d_model = 16"):
        task = resolve_task("lm(d_model=16, heads=3, context=16, train_chars=3000, eval_chars=2000)")
        task.build(task.load(), lambda: get("gelu"))
    with pytest.raises(text.CorpusError, match="context = 5000 is longer than the train text"):
        resolve_task("lm(context=5000, train_chars=3000, eval_chars=2000)").load()
    with pytest.raises(text.CorpusError, match="has no train files"):
        resolve_task(TINY, data_dir=str(tmp_path)).load()
    (tmp_path / "broken.py").mkdir()  # a folder named like a source file: unreadable as text
    for i in range(40):
        (tmp_path / f"m{i}.py").write_text("x = 1\n" * 50)
    with pytest.raises(text.CorpusError, match="broken.py.*cannot be read"):
        text.text_dataset(16, 100_000, 2000, str(tmp_path))
    with pytest.raises(actlab.ActlabError, match="train_chars"):
        resolve_task("lm(train_chars=0)")


def test_lower_is_better_runs_through_the_statistics():
    a = {i: 2.0 + 0.01 * i for i in range(8)}
    b = {i: v + 0.05 for i, v in a.items()}  # b is worse by 0.05 bits/char on every seed
    (pair,) = stats.pairwise({"a": a, "b": b}, higher_is_better=False)
    assert pair.mean_diff == pytest.approx(-0.05) and pair.significant and pair.prob_improvement == 1.0
    bpc = METRICS["bits_per_char"]
    assert bpc.verdict(pair).startswith("a beats b on bits per character (lower is better) by -0.050 bits/char")
    assert bpc.verdict(pair.flipped()).startswith("a beats b")
    assert bpc.best({1e-3: 2.1, 3e-3: 1.9, 1e-2: 2.4}) == 3e-3
    rows = [{"activation": "gelu", "trainable": 0, "lr": lr, "final_test_loss": v * math.log(2), "status": "ok"}
            for lr, v in ((1e-3, 2.1), (3e-3, 1.9))]
    assert tuning_curves(rows, "bits_per_char") == {"gelu": {1e-3: pytest.approx(2.1), 3e-3: pytest.approx(1.9)}}


def test_vectorized_lm_training_equals_the_per_seed_loop():
    task = resolve_task(TINY)
    data = task.load()
    recipe = Recipe(lr=3e-3, batch_size=32, epochs=1, weight_decay=0.1)
    vec = train_group(task, data, "swiglu", False, recipe, 0, [0, 1], mode="vectorized")
    loop = train_group(task, data, "swiglu", False, recipe, 0, [0, 1], mode="per-seed")
    for a, b in zip(vec, loop):
        assert a.epochs[-1].test_loss == pytest.approx(b.epochs[-1].test_loss, rel=1e-4)


def test_tiny_end_to_end_comparison_reports_bits_per_character(tmp_path):
    from actlab.report.data import load_study
    from actlab.report.html import render
    from actlab.report.markdown import render_markdown

    db = tmp_path / "lm.db"
    res = run_comparison(StudyConfig(activations=("gelu", "swiglu"), task=TINY, seeds=2, store=str(db),
                                     tune_lr=(3e-3, 1e-2), tune_seeds=1, cost=False,
                                     recipe_overrides={"epochs": 1}), command="t")
    assert res.outcome.metric.key == "bits_per_char"
    unigram = text.unigram_bits_per_char(resolve_task(TINY).load())
    for s in res.summaries:
        assert 0 < s.mean < 8.5 and s.n == 2
    assert res.chosen_lr["gelu"] in (3e-3, 1e-2)
    counts = [r["parameters"] for r in res.outcome.rows]  # printed in the table's parameters column
    assert all(counts) and abs(counts[1] / counts[0] - 1) < 0.01
    assert "bits per character" in res.outcome.metric.verdict(res.pairs[0])
    data = load_study(db)
    page, md = render(data), render_markdown(data)
    assert "test bits/char mean" in page and "test bits/char mean" in md
    assert unigram > 3.0
