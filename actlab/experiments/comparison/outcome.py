"""Trials -> statistics: the one path from stored trial rows to the numbers every view shows (the terminal table,
the HTML report, the markdown summary, `actlab report`), so they cannot disagree."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from actlab.experiments import stats


@dataclass(frozen=True)
class Metric:
    """What a comparison ranks activations by, and how to show it."""

    key: str
    name: str
    higher_is_better: bool
    scale: float  # shown as value * scale
    unit: str  # of a difference
    digits: int
    column: str
    bounds: tuple[float, float]

    def score(self, trial: Mapping[str, Any]) -> float | None:
        """The trial's final test value: accuracy from the exact count (equal counts tie exactly), or bits per
        character from the test loss in nats."""
        if self.key == "bits_per_char":
            loss = trial.get("final_test_loss")
            return None if loss is None else loss / math.log(2)
        if trial.get("final_correct") is not None and trial.get("n_test"):
            return trial["final_correct"] / trial["n_test"]
        return trial.get("final_acc")

    def fmt(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "-"
        return f"{value * self.scale:.{self.digits}f}"

    def verdict(self, pair: stats.Pairwise) -> str:
        return pair.verdict(self.name, self.scale, self.unit, self.digits)

    def best_value(self, values: Mapping[float, float]) -> float:
        """The best finite value (NaN when there is none)."""
        finite = [v for v in values.values() if math.isfinite(v)]
        if not finite:
            return math.nan
        return max(finite) if self.higher_is_better else min(finite)

    def best(self, values: Mapping[float, float]) -> float:
        """The key of the best value; ties go to the smaller key (the smaller learning rate)."""
        sign = 1.0 if self.higher_is_better else -1.0
        return max(values, key=lambda k: (sign * values[k], -k))


METRICS = {
    "accuracy": Metric("accuracy", "accuracy", True, 100.0, " points", 2, "test acc % mean [95% CI over seeds]",
                       (0.0, 1.0)),
    "bits_per_char": Metric("bits_per_char", "bits per character", False, 1.0, " bits/char", 3,
                            "test bits/char mean [95% CI over seeds]", (0.0, math.inf)),
}


def label_of(trial: Mapping[str, Any]) -> str:
    return f"{trial['activation']}[trainable]" if trial["trainable"] else trial["activation"]


@dataclass
class Outcome:
    """What a comparison concluded, from its test-phase trials."""

    labels: list[str]
    baseline: str
    all_pairs: bool
    metric: Metric
    scores: dict[str, dict[int, float]]  # label -> seed index -> final test value (accuracy: correct / n_test)
    n_test: int | None
    summaries: list[stats.Summary]
    pairs: list[stats.Pairwise]
    friedman: stats.Friedman | None
    rows: list[dict[str, Any]]  # one per label: the summary table's numbers
    warning: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The statistics as plain values (``--json``): per-activation rows, each pair with its significance and
        the sentence the table prints, the Friedman test where there is one, warnings and notes."""
        return {
            "metric": {"key": self.metric.key, "name": self.metric.name,
                       "higher_is_better": self.metric.higher_is_better},
            "baseline": self.baseline,
            "all_pairs": self.all_pairs,
            "n_test": self.n_test,
            "rows": self.rows,
            "pairs": [{**asdict(p), "significant": p.significant, "verdict": self.metric.verdict(p)}
                      for p in self.pairs],
            "friedman": None if self.friedman is None else asdict(self.friedman),
            "warning": self.warning,
            "notes": self.notes,
        }


def analyze(trials: Sequence[Mapping[str, Any]], labels: Sequence[str], baseline: str | None = None,
            all_pairs: bool = False, chosen_lr: Mapping[str, float] | None = None,
            cost: Mapping[str, Any] | None = None, metric: str = "accuracy",
            parameters: Mapping[str, int] | None = None) -> Outcome:
    """Statistics over the test-phase ``trials`` of ``labels`` (in that order; the baseline defaults to the first).
    ``cost``: label -> Cost (or its dict) from the interleaved timing, shown in the rows. ``metric``: the task's
    (a key of METRICS)."""
    labels = list(labels)
    m = METRICS[metric]
    base = labels[0] if baseline is None else baseline
    scores: dict[str, dict[int, float]] = {lab: {} for lab in labels}
    by_label: dict[str, list[Mapping[str, Any]]] = {lab: [] for lab in labels}
    for t in trials:
        lab = label_of(t)
        if lab not in scores:
            continue
        by_label[lab].append(t)
        value = m.score(t)
        if value is not None and math.isfinite(value):
            scores[lab][t["seed_index"]] = value
    n_tests = {t["n_test"] for t in trials if t.get("n_test")}
    n_test = n_tests.pop() if len(n_tests) == 1 else None
    summaries = stats.summarize(scores, m.bounds)
    # accuracies are counts of n_test examples: the signed-rank test ranks integer differences
    resolution = 1.0 / n_test if m.key == "accuracy" and n_test else None
    pairs = stats.comparisons(scores, base, all_pairs, m.higher_is_better, resolution)
    n = min((len(v) for v in scores.values()), default=0)
    binomial = n_test if m.key == "accuracy" else None  # the binomial error is an accuracy's
    rows = [_row(s, by_label[s.activation], (chosen_lr or {}).get(s.activation), binomial,
                 (cost or {}).get(s.activation), (parameters or {}).get(s.activation)) for s in summaries]
    notes = sorted({t["note"] for t in trials if not t["vectorized"] and t["note"]})
    notes += _divergence_notes(by_label, scores, m) + _size_notes(labels, base, parameters or {})
    doubt = next((c.get("unreliable") if isinstance(c, Mapping) else getattr(c, "unreliable", None)
                  for c in (cost or {}).values()), None)
    if doubt:
        notes.append(f"the cost column (and any cost against accuracy figure) is unreliable: {doubt}; rerun on an "
                     "idle machine (or --no-cost) before reading it")
    warnings = [stats.seed_warning(n), stats.power_warning(n, stats.n_tests(len(labels), all_pairs))]
    return Outcome(labels, base, all_pairs, m, scores, binomial, summaries, pairs, stats.friedman(scores), rows,
                   " ".join(w for w in warnings if w) or None, notes)


class OutcomeView:
    """The outcome's numbers as attributes of whatever holds an ``outcome`` (a comparison's result, a report)."""

    outcome: Outcome

    @property
    def summaries(self) -> list[stats.Summary]:
        return self.outcome.summaries

    @property
    def pairs(self) -> list[stats.Pairwise]:
        return self.outcome.pairs

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.outcome.rows

    @property
    def warning(self) -> str | None:
        return self.outcome.warning

    @property
    def notes(self) -> list[str]:
        return self.outcome.notes

    @property
    def final_by_seed(self) -> dict[str, dict[int, float]]:
        return self.outcome.scores


def _row(s: stats.Summary, trials: Sequence[Mapping[str, Any]], lr: float | None, n_test: int | None,
         cost: Any, parameters: int | None) -> dict[str, Any]:
    reached = [t["epochs_to_target"] for t in trials if t["epochs_to_target"] is not None]
    finite = lambda key: [t[key] for t in trials if t[key] is not None]  # noqa: E731
    if cost is not None and not isinstance(cost, Mapping):
        cost = vars(cost)
    return {
        "activation": s.activation,
        "parameters": parameters,
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


def _size_notes(labels: Sequence[str], baseline: str, parameters: Mapping[str, int]) -> list[str]:
    """Models that differ in size from the baseline's by more than 1% (a gated activation in a task that does not
    match widths doubles the layer before it): a verdict then compares sizes as well as activations."""
    base = parameters.get(baseline)
    if not base:
        return []
    notes = []
    for lab in labels:
        n = parameters.get(lab)
        if lab != baseline and n and abs(n - base) > 0.01 * base:
            notes.append(f"{lab}'s model has {n:,} parameters, {n / base:.2f}x {baseline}'s {base:,}: a difference "
                         "between them may come from the size as well as the activation")
    return notes


def _divergence_notes(by_label: Mapping[str, Sequence[Mapping[str, Any]]], scores: Mapping[str, Mapping[int, float]],
                      m: Metric) -> list[str]:
    """What the statistics did with diverged runs, per activation that had any: a verdict between runs that all
    diverged is a statement about divergence, and the reader should see that next to it."""
    notes = []
    for lab, trials in by_label.items():
        diverged = sum(1 for t in trials if t["status"] == "diverged")
        if not diverged:
            continue
        left_out = len(trials) - len(scores[lab])
        fate = (f"they count with the {m.name} they ended at" if not left_out else
                f"{left_out} without a finite {m.name} {'is' if left_out == 1 else 'are'} left out of the statistics")
        notes.append(f"{lab}: {diverged} of {len(trials)} runs diverged (non-finite training loss); {fate}")
    return notes


def tuning_curves(trials: Sequence[Mapping[str, Any]], metric: str = "accuracy") -> dict[str, dict[float, float]]:
    """label -> lr -> mean validation value over the tuning seeds (tune-phase trials); a rate whose every run
    diverged to no finite value gets the worst value there is."""
    m = METRICS[metric]
    worst = -math.inf if m.higher_is_better else math.inf
    sums: dict[str, dict[float, list[float]]] = {}
    for t in trials:
        value = m.score(t)
        sums.setdefault(label_of(t), {}).setdefault(t["lr"], [])
        if value is not None and math.isfinite(value):  # a diverged run counts with the value it ended at
            sums[label_of(t)][t["lr"]].append(value)
    return {lab: {lr: (sum(v) / len(v) if v else worst) for lr, v in sorted(by_lr.items())}
            for lab, by_lr in sums.items()}
