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
from scipy import stats as sstats

from actlab.errors import ActlabError
from actlab.experiments import stats
from actlab.experiments.compare import label_of
from actlab.experiments.store import Store, StoreError


@dataclass
class Curve:
    epochs: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]


@dataclass
class ReportData:
    study: str
    store: str
    task: str
    recipe: dict[str, Any]
    target_accuracy: float
    labels: list[str]
    activations: dict[str, str]  # label -> activation text (for drawing its shape)
    trials: list[dict[str, Any]]
    summaries: list[stats.Summary]
    pairs: list[stats.Pairwise]
    rows: list[dict[str, Any]]  # the summary table
    curves: dict[str, dict[str, Curve]]  # metric -> label -> curve
    final_by_seed: dict[str, dict[int, float]]
    chosen_lr: dict[str, float]
    tuning: dict[str, dict[float, float]]
    provenance: dict[str, Any]
    warning: str | None = None
    notes: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # failed groups whose trials are still missing


def _band(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds (NaN-free values only)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2 or np.ptp(v) == 0:
        return m, m, m
    half = float(sstats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half


def load_study(store_path: str | Path, study: str | None = None) -> ReportData:
    """The study ``study`` (default: the most recent one) from the store."""
    if not Path(store_path).exists():
        raise StoreError(f"no results store at {str(store_path)!r}")
    with Store(store_path) as store:
        all_trials = [t for t in store.trials() if t["phase"] == "test"]
        if not all_trials:
            raise ActlabError(f"the store {str(store_path)!r} holds no finished comparison")
        studies = sorted({t["study"] for t in all_trials})
        if study is None:
            study = max(all_trials, key=lambda t: t["created_at"])["study"]
        elif study not in studies:
            raise ActlabError(f"no study {study!r} in {str(store_path)!r}; studies there: "
                              + ", ".join(repr(s) for s in studies))
        trials = [t for t in all_trials if t["study"] == study]
        # A study rerun with other settings keeps its older trials; report the latest task and recipe.
        latest = max(trials, key=lambda t: t["created_at"])
        trials = [t for t in trials if t["task"] == latest["task"] and t["recipe"] == latest["recipe"]]
        epochs = store.epochs([t["trial_key"] for t in trials])
        tune = [t for t in store.trials() if t["phase"] == "tune" and t["study"] == study]
        findings = store.findings()
        failures = []
        for f in store.failures():
            if f["study"] == study:
                missing = set(f["trial_keys"]) - store.existing(f["trial_keys"])
                if missing:
                    failures.append({**f, "missing": len(missing)})
    from actlab.experiments.tasks import task_spec

    try:
        target = task_spec(latest["task"].split("(")[0]).target_accuracy
    except ActlabError:
        target = 0.5
    labels = list(dict.fromkeys(label_of(t) for t in sorted(trials, key=lambda t: t["created_at"])))
    final = {lab: {} for lab in labels}
    for t in trials:
        if t["final_acc"] is not None:
            final[label_of(t)][t["seed_index"]] = t["final_acc"]
    summaries = stats.summarize(final)
    pairs = stats.pairwise(final)
    by_key = {t["trial_key"]: t for t in trials}
    per_label_epoch: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for e in epochs:
        lab = label_of(by_key[e["trial_key"]])
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
    from actlab.report.tables import rows_from

    chosen = {lab: next(t["lr"] for t in trials if label_of(t) == lab) for lab in labels}
    tuning: dict[str, dict[float, float]] = defaultdict(dict)
    for t in tune:
        accs = [x["final_acc"] for x in tune if label_of(x) == label_of(t) and x["lr"] == t["lr"]
                and x["final_acc"] is not None]
        tuning[label_of(t)][t["lr"]] = sum(accs) / len(accs) if accs else math.nan
    n = min((len(v) for v in final.values()), default=0)
    notes = sorted({t["note"] for t in trials if t["note"]})
    return ReportData(
        study=study, store=str(store_path), task=latest["task"], recipe=json.loads(latest["recipe"]),
        target_accuracy=target, labels=labels,
        activations={lab: next(t["activation"] for t in trials if label_of(t) == lab) for lab in labels},
        trials=trials, summaries=summaries, pairs=pairs,
        rows=rows_from(summaries, trials, chosen), curves=curves, final_by_seed=final, chosen_lr=chosen,
        tuning=dict(tuning), provenance=_provenance(trials), warning=stats.seed_warning(n), notes=notes,
        findings=findings, failures=failures,
    )


def _provenance(trials: list[dict[str, Any]]) -> dict[str, Any]:
    first = min(trials, key=lambda t: t["created_at"])
    last = max(trials, key=lambda t: t["created_at"])
    return {
        "versions": json.loads(last["versions"] or "{}"),
        "hardware": json.loads(last["hardware"] or "{}"),
        "command": last["command"],
        "date": f"{first['created_at']} .. {last['created_at']}",
        "seeds": sorted({t["seed_index"] for t in trials}),
        "base_seed": sorted({t["base_seed"] for t in trials}),
        "trials": len(trials),
        "vectorized": all(t["vectorized"] for t in trials),
    }


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Labels not dominated in (lower cost, higher accuracy)."""
    front = []
    for a, (ca, xa) in points.items():
        dominated = any((cb <= ca and xb >= xa) and (cb < ca or xb > xa) for b, (cb, xb) in points.items() if b != a)
        if not dominated and math.isfinite(ca) and math.isfinite(xa):
            front.append(a)
    return front
