"""Decision rules on synthetic results: a clear win, a clear loss, noise and too few seeds, for each kind of rule
and for the declared rule of every study (so a declaration that cannot decide, or decides backwards, fails here)."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.experiments.studies import get_study, study_names
from actlab.experiments.studies.rules import CONTRADICTED, SUPPORTED, UNDECIDED, AllOf, Bound, Equivalent, Exact, Paired


def _seeds(values, n):
    return {i: float(v) for i, v in zip(range(n), values)}


def synthetic(rule, outcome: str, n: int, seed: int = 0) -> dict[str, dict[int, float]]:
    """Scores for ``rule``'s labels on n seeds: "win" (the claim holds clearly), "loss" (clearly the other way),
    "noise" (no effect: a spread of alternating sign, so the mean difference is about zero)."""
    rng = np.random.default_rng(seed)
    alt = np.array([(-1.0) ** i for i in range(n)]) * (1 + seed)  # a spread whose mean is (about) zero
    scores: dict[str, dict[int, float]] = {}
    if isinstance(rule, AllOf):
        for k, (_, part) in enumerate(rule.parts):
            scores.update(synthetic(part, outcome, n, seed + k))
        return scores
    if isinstance(rule, Paired):
        # each label sits one step (0.05) above every label it is claimed to beat; noise: no steps, large jitter
        sign = {"win": 1.0, "loss": -1.0, "noise": 0.0}[outcome] * (1 if rule.higher_is_better else -1)
        level: dict[str, int] = {}
        for _ in rule.hypotheses:
            for better, worse in rule.hypotheses:
                level.setdefault(worse, 0)
                level[better] = max(level.get(better, 0), level[worse] + 1)
        base = rng.normal(0.5, 0.02, n)
        for label, k in level.items():
            jitter = (0.05 * k * alt) if outcome == "noise" else rng.normal(0, 0.002, n)
            scores[label] = _seeds(base + sign * 0.05 * k + jitter, n)
        return scores
    if isinstance(rule, Equivalent):
        for a, b in rule.pairs:
            base = rng.normal(0.5, 0.02, n)
            gap = {"win": 0.0, "loss": 4 * rule.margin, "noise": rule.margin}[outcome]
            jitter = 3 * rule.margin * alt if outcome == "noise" else rng.normal(0, rule.margin / 20, n)
            scores.setdefault(b, _seeds(base, n))
            scores[a] = _seeds(base + gap + jitter, n)
        return scores
    if isinstance(rule, Bound):
        for label, side, value in rule.bounds:
            scale = max(abs(value), 1.0)
            shift = {"win": 1.0, "loss": -1.0, "noise": 0.0}[outcome] * (1 if side == "above" else -1) * scale
            jitter = 3.0 * scale * alt if outcome == "noise" else rng.normal(0, 0.05 * scale, n)
            scores[label] = _seeds(value + shift + jitter, n)
        return scores
    if isinstance(rule, Exact):
        for label, target, tol in rule.checks:
            scores[label] = {0: target if outcome == "win" else target + 10 * tol + 1.0}
        return scores
    raise TypeError(type(rule))


@pytest.mark.parametrize("name", study_names())
def test_every_declared_rule_decides_synthetic_results(name):
    study = get_study(name)
    rule = study.rule
    n = max(study.min_seeds, 3) + 2
    assert synthetic(rule, "win", n) and rule.decide(synthetic(rule, "win", n)).verdict == SUPPORTED
    assert rule.decide(synthetic(rule, "loss", n)).verdict == CONTRADICTED
    if isinstance(rule, Exact):
        return  # computed values have no noise and no seeds
    for seed in range(3):
        assert rule.decide(synthetic(rule, "noise", n, seed)).verdict != SUPPORTED
    too_few = rule.decide(synthetic(rule, "win", study.min_seeds - 1))
    assert too_few.verdict == UNDECIDED and "fewer than the rule's declared minimum" in too_few.why


@pytest.mark.parametrize("name", study_names())
def test_every_study_is_declared_in_full(name):
    s = get_study(name)
    assert s.claim and s.source and s.protocol and s.rule.describe() and s.quick
    assert s.kind in ("paper", "tutorial")
    if s.trains and not isinstance(s.rule, Exact):
        assert s.seeds >= s.min_seeds >= 5 and s.differences, name  # trained studies state how they differ
    if s.kind == "tutorial":
        assert "tutorial 00" in s.source and ".txt" in s.source  # the file the claim is quoted from


def test_paired_rule_verdicts():
    rule = Paired((("a", "b"),), min_seeds=6)
    n = 10
    base = np.linspace(0.4, 0.6, n)
    win = {"a": _seeds(base + 0.03, n), "b": _seeds(base, n)}
    assert rule.decide(win).verdict == SUPPORTED and rule.decide(win).seeds == n
    loss = {"a": _seeds(base - 0.03, n), "b": _seeds(base, n)}
    d = rule.decide(loss)
    assert d.verdict == CONTRADICTED and "b beats a" in d.why
    tie = {"a": _seeds(base + np.array([0.01, -0.01] * 5), n), "b": _seeds(base, n)}
    assert rule.decide(tie).verdict == UNDECIDED
    assert rule.decide({"a": _seeds(base + 0.03, 5), "b": _seeds(base, 5)}).verdict == UNDECIDED


def test_paired_rule_lower_is_better_and_holm():
    rule = Paired((("a", "b"), ("c", "b")), min_seeds=7, higher_is_better=False)
    n = 8
    base = np.linspace(3.0, 3.2, n)
    scores = {"a": _seeds(base - 0.1, n), "b": _seeds(base, n), "c": _seeds(base - 0.1, n)}
    assert rule.decide(scores).verdict == SUPPORTED  # lower is better: a and c beat b
    scores["c"] = _seeds(base + 0.1, n)
    assert rule.decide(scores).verdict == CONTRADICTED


def test_a_rule_that_can_never_decide_is_refused_when_declared():
    with pytest.raises(ValueError, match="declare at least 8"):
        Paired(tuple((f"a{i}", "b") for i in range(6)), min_seeds=5)  # Holm over 6 needs 8 seeds
    with pytest.raises(ValueError, match="declare at least 6"):
        Paired((("a", "b"),), min_seeds=5)  # one exact Wilcoxon test on 5 seeds: p >= 2/32 > 0.05
    with pytest.raises(ValueError):
        Equivalent((("a", "b"),), margin=0.0, min_seeds=5)
    with pytest.raises(ValueError):
        Bound((("a", "sideways", 1.0),), min_seeds=5)


def test_equivalence_rule():
    rule = Equivalent((("a", "b"),), margin=0.01, min_seeds=5)
    n = 10
    base = np.linspace(0.4, 0.6, n)
    close = {"a": _seeds(base + np.array([0.001, -0.001] * 5), n), "b": _seeds(base, n)}
    assert rule.decide(close).verdict == SUPPORTED
    far = {"a": _seeds(base + 0.03 + np.array([0.001, -0.001] * 5), n), "b": _seeds(base, n)}
    assert rule.decide(far).verdict == CONTRADICTED
    straddle = {"a": _seeds(base + 0.01 + np.array([0.01, -0.01] * 5), n), "b": _seeds(base, n)}
    assert rule.decide(straddle).verdict == UNDECIDED


def test_bound_and_exact_rules():
    rule = Bound((("r", "above", 1.0),), min_seeds=5)
    assert rule.decide({"r": _seeds([1.5, 1.6, 1.55, 1.52, 1.58], 5)}).verdict == SUPPORTED
    assert rule.decide({"r": _seeds([0.5, 0.6, 0.55, 0.52, 0.58], 5)}).verdict == CONTRADICTED
    assert rule.decide({"r": _seeds([0.5, 1.6, 0.9, 1.3, 1.0], 5)}).verdict == UNDECIDED
    exact = Exact((("x", 1.0, 1e-6),))
    assert exact.decide({"x": {0: 1.0 + 1e-7}}).verdict == SUPPORTED
    assert exact.decide({"x": {0: 1.0 + 1e-5}}).verdict == CONTRADICTED
    assert exact.decide({"x": {0: float("nan")}}).verdict == CONTRADICTED


def test_all_of_needs_every_part():
    win = Bound((("r", "above", 1.0),), min_seeds=5)
    rule = AllOf((("one", win), ("two", Bound((("s", "below", 0.0),), min_seeds=5))))
    good = {"r": _seeds([2, 2.1, 2.2, 2.1, 2], 5), "s": _seeds([-1, -1.1, -1.2, -1.1, -1], 5)}
    assert rule.decide(good).verdict == SUPPORTED and rule.min_seeds == 5
    half = {**good, "s": _seeds([-1, 1.1, -1.2, 1.1, 0], 5)}
    d = rule.decide(half)
    assert d.verdict == UNDECIDED and "two undecided" in d.why
    bad = {**good, "s": _seeds([1, 1.1, 1.2, 1.1, 1], 5)}
    assert rule.decide(bad).verdict == CONTRADICTED
