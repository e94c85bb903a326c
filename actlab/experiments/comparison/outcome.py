"""Trials -> statistics: the one path from stored trial rows to the numbers every view shows (the terminal table,
the HTML report, the markdown summary, `actlab report`), so they cannot disagree."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from actlab.experiments import stats


def label_of(trial: Mapping[str, Any]) -> str:
    return f"{trial['activation']}[trainable]" if trial["trainable"] else trial["activation"]


@dataclass
class Outcome:
    """What a comparison concluded, from its test-phase trials."""

    labels: list[str]
    baseline: str
    all_pairs: bool
    scores: dict[str, dict[int, float]]  # label -> seed index -> final test accuracy (correct / n_test)
    n_test: int | None
    summaries: list[stats.Summary]
    pairs: list[stats.Pairwise]
    friedman: stats.Friedman | None
    rows: list[dict[str, Any]]  # one per label: the summary table's numbers
    warning: str | None = None
    notes: list[str] = field(default_factory=list)


def _accuracy(t: Mapping[str, Any]) -> float | None:
    """Final test accuracy from the exact count (so equal counts tie exactly)."""
    if t.get("final_correct") is not None and t.get("n_test"):
        return t["final_correct"] / t["n_test"]
    return t.get("final_acc")


def analyze(trials: Sequence[Mapping[str, Any]], labels: Sequence[str], baseline: str | None = None,
            all_pairs: bool = False, chosen_lr: Mapping[str, float] | None = None,
            cost: Mapping[str, Any] | None = None) -> Outcome:
    """Statistics over the test-phase ``trials`` of ``labels`` (in that order; the baseline defaults to the first).
    ``cost``: label -> Cost (or its dict) from the interleaved timing, shown in the rows."""
    labels = list(labels)
    base = labels[0] if baseline is None else baseline
    scores: dict[str, dict[int, float]] = {lab: {} for lab in labels}
    by_label: dict[str, list[Mapping[str, Any]]] = {lab: [] for lab in labels}
    for t in trials:
        lab = label_of(t)
        if lab not in scores:
            continue
        by_label[lab].append(t)
        acc = _accuracy(t)
        if acc is not None and math.isfinite(acc):
            scores[lab][t["seed_index"]] = acc
    n_tests = {t["n_test"] for t in trials if t.get("n_test")}
    n_test = n_tests.pop() if len(n_tests) == 1 else None
    summaries = stats.summarize(scores)
    pairs = stats.comparisons(scores, base, all_pairs)
    n = min((len(v) for v in scores.values()), default=0)
    rows = [_row(s, by_label[s.activation], (chosen_lr or {}).get(s.activation), n_test,
                 (cost or {}).get(s.activation)) for s in summaries]
    notes = sorted({t["note"] for t in trials if not t["vectorized"] and t["note"]})
    return Outcome(labels, base, all_pairs, scores, n_test, summaries, pairs, stats.friedman(scores), rows,
                   stats.seed_warning(n), notes)


def _row(s: stats.Summary, trials: Sequence[Mapping[str, Any]], lr: float | None, n_test: int | None,
         cost: Any) -> dict[str, Any]:
    reached = [t["epochs_to_target"] for t in trials if t["epochs_to_target"] is not None]
    finite = lambda key: [t[key] for t in trials if t[key] is not None]  # noqa: E731
    if cost is not None and not isinstance(cost, Mapping):
        cost = vars(cost)
    return {
        "activation": s.activation,
        "lr": lr,
        "n": s.n,
        "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high,
        "test_set_pm": stats.test_set_halfwidth(s.mean, n_test) if n_test else None,
        "epochs_to_target": (sum(reached) / len(reached)) if reached else None,
        "reached": len(reached),
        "cost": cost,
        "s_per_epoch": (sum(finite("s_per_epoch")) / len(finite("s_per_epoch"))) if finite("s_per_epoch") else None,
        "dead": (sum(finite("dead_final")) / len(finite("dead_final"))) if finite("dead_final") else None,
        "diverged": sum(1 for t in trials if t["status"] == "diverged"),
    }


def tuning_curves(trials: Sequence[Mapping[str, Any]]) -> dict[str, dict[float, float]]:
    """label -> lr -> mean validation accuracy over the tuning seeds (tune-phase trials)."""
    sums: dict[str, dict[float, list[float]]] = {}
    for t in trials:
        acc = _accuracy(t)
        sums.setdefault(label_of(t), {}).setdefault(t["lr"], [])
        if acc is not None and math.isfinite(acc):  # a diverged run counts with the accuracy it ended at
            sums[label_of(t)][t["lr"]].append(acc)
    return {lab: {lr: (sum(v) / len(v) if v else -math.inf) for lr, v in sorted(by_lr.items())}
            for lab, by_lr in sums.items()}


def choose_lr(curve: Mapping[float, float]) -> float:
    """The rate with the best mean validation accuracy; ties go to the smaller rate."""
    return max(curve, key=lambda lr: (curve[lr], -lr))
