"""What a report shows, gathered from the results store: one study's test trials, their epochs, the statistics
(recomputed from the stored numbers, exactly as `actlab compare` computes them) and the provenance."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actlab.errors import ActlabError
from actlab.experiments import stats
from actlab.experiments.comparison.outcome import Outcome, OutcomeView, analyze, label_of
from actlab.experiments.results.store import Store


@dataclass
class Curve:
    epochs: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]


@dataclass
class ReportData(OutcomeView):
    study: str
    store: str
    task: str
    recipe: dict[str, Any]
    target_accuracy: float
    labels: list[str]
    activations: dict[str, str]  # label -> activation text (for drawing its shape)
    trials: list[dict[str, Any]]
    outcome: Outcome
    curves: dict[str, dict[str, Curve]]  # metric -> label -> curve
    lr_grid: list[float] | None  # None: one lr pinned for all
    chosen_lr: dict[str, float]
    tuning: dict[str, dict[float, float]]
    validation_fraction: float
    tune_seeds: int
    provenance: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # failed groups whose trials are still missing
    tune: dict[str, list[Any]] = field(default_factory=dict)  # other recipe fields tuned with the lr (older: none)
    chosen_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning_settings: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """What ``actlab report --json`` prints: the study's summary without its trials and curves."""
        return {
            "study": self.study, "store": self.store, "task": self.task, "recipe": self.recipe,
            "activations": self.activations, "lr_grid": self.lr_grid, "chosen_lr": self.chosen_lr,
            "tuning": self.tuning, "tune": self.tune, "chosen_settings": self.chosen_settings,
            "tuning_settings": self.tuning_settings,
            "validation_fraction": self.validation_fraction, "tune_seeds": self.tune_seeds,
            "outcome": self.outcome.as_dict(), "findings": self.findings, "failures": self.failures,
            "provenance": self.provenance,
        }


def _band(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% interval over seeds (t, skewness-corrected; NaN-free values only)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    lo, hi = stats.mean_interval(v)
    return float(v.mean()), lo, hi


def load_study(store_path: str | Path, study: str | None = None) -> ReportData:
    """The study ``study`` (default: the most recent one) from the store: exactly the trials its latest run
    showed, reused from other studies or not, with the same statistics `actlab compare` printed."""
    if not Path(store_path).exists():
        raise ActlabError(f"no results store at {str(store_path)!r}")
    with Store(store_path) as store:
        studies = store.studies()
        if not studies:
            raise ActlabError(f"the store {str(store_path)!r} holds no finished comparison")
        if study is None:
            study = studies[-1]
        elif study not in studies:
            raise ActlabError(f"no study {study!r} in {str(store_path)!r}; studies there: "
                              + ", ".join(repr(s) for s in studies))
        record = store.study(study)
        assert record is not None
        rows = store.trials(record["members"].values())
        trials = [t for t in rows if t["phase"] == "test"]
        epochs = store.epochs([t["trial_id"] for t in trials])
        findings = store.findings()
        failures = []
        for f in store.failures():
            if f["study"] == study:
                missing = set(f["trial_keys"]) - store.existing(f["trial_keys"])
                if missing:
                    failures.append({**f, "missing": len(missing)})
    from actlab.experiments.workload.tasks import task_spec

    config, saved = record["config"], record["outcome"]
    try:
        target = task_spec(config["task"].split("(")[0]).target_accuracy
    except ActlabError:
        target = 0.5
    labels = list(config["activations"])
    # The store keeps JSON with sorted keys: put the labels back in the study's order.
    chosen = {lab: saved["chosen_lr"][lab] for lab in labels if lab in saved["chosen_lr"]}
    tuning = {lab: dict(sorted((float(lr), v) for lr, v in saved["tuning"][lab].items()))
              for lab in labels if lab in saved["tuning"]}
    outcome = analyze(trials, labels, config["baseline"], config["all_pairs"], chosen, saved["cost"],
                      config.get("metric", "accuracy"), saved.get("parameters"))
    by_id = {t["trial_id"]: t for t in trials}
    per_label_epoch: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for e in epochs:
        lab = label_of(by_id[e["trial_id"]])
        for metric in ("test_acc", "train_loss", "test_loss", "dead_fraction"):
            value = e[metric]
            per_label_epoch[metric][lab][e["epoch"]].append(math.nan if value is None else value)
    curves: dict[str, dict[str, Curve]] = {}
    for metric, by_label in per_label_epoch.items():
        curves[metric] = {}
        for lab in labels:
            eps = sorted(by_label[lab])
            bands = [_band(np.asarray(by_label[lab][e], dtype=float)) for e in eps]
            curves[metric][lab] = Curve(eps, [b[0] for b in bands], [b[1] for b in bands], [b[2] for b in bands])
    activations: dict[str, Any] = {}
    for t in trials:
        activations.setdefault(label_of(t), t["activation"])
    return ReportData(
        study=study, store=str(store_path), task=config["task"], recipe=config["recipe"], target_accuracy=target,
        labels=labels, activations=activations, trials=trials, outcome=outcome, curves=curves,
        lr_grid=config["lr_grid"], chosen_lr=chosen, tuning=tuning,
        validation_fraction=config["validation_fraction"], tune_seeds=config["tune_seeds"],
        provenance=_provenance(trials, config["command"]), findings=findings, failures=failures,
        tune=config.get("tune", {}), chosen_settings=saved.get("chosen_settings", {}),
        tuning_settings=saved.get("tuning_settings", {}),
    )


def _provenance(trials: list[dict[str, Any]], command: str) -> dict[str, Any]:
    if not trials:
        return {"versions": {}, "hardware": {}, "command": command, "date": "-", "seeds": [], "base_seed": [],
                "trials": 0, "vectorized": True, "load": None}
    first = min(trials, key=lambda t: t["created_at"])
    last = max(trials, key=lambda t: t["created_at"])
    return {
        "versions": json.loads(last["versions"] or "{}"),
        "hardware": json.loads(last["hardware"] or "{}"),
        "command": command,
        "date": f"{first['created_at']} .. {last['created_at']}",
        "seeds": sorted({t["seed_index"] for t in trials}),
        "base_seed": sorted({t["base_seed"] for t in trials}),
        "trials": len(trials),
        "vectorized": all(t["vectorized"] for t in trials),
        "load": _load_range(trials),
    }


def _load_range(trials: list[dict[str, Any]]) -> str | None:
    """The machine's 1-minute load average over the groups' starts and ends, as "low-high (N cores)"."""
    values, cores = [], None
    for t in trials:
        hardware = json.loads(t["hardware"] or "{}")
        values += [v for v in hardware.get("load_1min") or [] if isinstance(v, (int, float))]
        cores = hardware.get("cpus") or cores
    if not values:
        return None
    return f"{min(values):.2f}-{max(values):.2f}" + (f" ({cores} cores)" if cores else "")


def cost_points(data: ReportData) -> tuple[dict[str, tuple[float, float]], str]:
    """label -> (cost, mean accuracy) and the cost's axis label: the interleaved step-time ratio to the baseline
    when it was measured, else the seconds per epoch the training runs took."""
    timed = bool(data.rows) and all(r.get("cost") for r in data.rows)
    points = {r["activation"]: (r["cost"]["ratio"] if timed else
                                r["s_per_epoch"] if r["s_per_epoch"] is not None else math.nan, r["mean"])
              for r in data.rows}
    doubt = timed and any(r["cost"].get("unreliable") for r in data.rows)
    axis = f"training step time / {data.outcome.baseline}'s" if timed else "s / epoch (per seed)"
    return points, axis + (" (UNRELIABLE timing: see the notes)" if doubt else "")


def cost_intervals(data: ReportData) -> dict[str, tuple[float, float, float, float]]:
    """label -> (cost low, cost high, score low, score high): the 95% intervals drawn as error bars around
    :func:`cost_points` (NaN where there is none: seconds per epoch, one seed)."""
    timed = bool(data.rows) and all(r.get("cost") for r in data.rows)
    nan = math.nan
    return {r["activation"]: (r["cost"]["low"] if timed else nan, r["cost"]["high"] if timed else nan,
                              r["ci_low"], r["ci_high"]) for r in data.rows}


def error_bar(centre: float, low: float, high: float, scale: float = 1.0) -> tuple[float, float] | None:
    """(below, above) lengths of an error bar from ``centre`` to an interval, scaled; None where there is none."""
    if not all(math.isfinite(v) for v in (centre, low, high)):
        return None
    return scale * (centre - low), scale * (high - centre)


def pareto_front(points: dict[str, tuple[float, float]], higher_is_better: bool = True) -> list[str]:
    """Labels not dominated in (lower cost, better score)."""
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for a, (ca, xa) in points.items():
        dominated = any((cb <= ca and sign * xb >= sign * xa) and (cb < ca or sign * xb > sign * xa)
                        for b, (cb, xb) in points.items() if b != a)
        if not dominated and math.isfinite(ca) and math.isfinite(xa):
            front.append(a)
    return front
