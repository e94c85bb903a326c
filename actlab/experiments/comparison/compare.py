"""The comparison pipeline: study config -> each activation's lr chosen on a validation split -> a plan of trial
groups -> an executor -> the store -> statistics (:mod:`outcome`) and cost.

Each stage passes plain values, so each can be tested alone. A rerun of the same study reuses the trials already
in the store (resume; reuse across studies too); ``force`` trains this study's trials again without touching what
another study shows. Every learning rate of the grid and every seed of one activation train together as one
batch (see :mod:`actlab.experiments.training.trainer`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actlab import catalog
from actlab.catalog.registry import resolve_trainable
from actlab.errors import ActlabError, InvalidParameterError
from actlab.experiments import stats
from actlab.experiments.comparison.config import StudyConfig, setting_value, settings_text
from actlab.experiments.comparison.cost import Cost, check_against_epochs, measure_cost
from actlab.experiments.comparison.outcome import METRICS, Outcome, OutcomeView, analyze, label_of, tuning_curves
from actlab.experiments.execution import make_executor
from actlab.experiments.results.store import Store, trial_key
from actlab.experiments.training.group import (
    GroupJob,
    code_digest,
    model_fingerprint,
    probe_fingerprint,
    run_group,
    trainer_version,
)
from actlab.experiments.training.trainer import make_activation_factory
from actlab.experiments.workload.data import Dataset
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import Task, resolve_task
from actlab.kernels.dispatch import route

__all__ = ["ComparisonResult", "Contender", "label_of", "parse_contender", "run_comparison"]


@dataclass(frozen=True)
class Contender:
    """One activation as compared: its canonical text and whether its parameters are trained."""

    text: str
    trainable: bool

    @property
    def label(self) -> str:
        return f"{self.text}[trainable]" if self.trainable else self.text


def parse_contender(text: str) -> Contender:
    """``"swish(beta=1.5)"``; ``trainable=True`` among the parameters trains them (``swish(trainable=True)``)."""
    resolved, trainable = resolve_trainable(text)
    if resolved.spec.kind == "normalizing":
        raise InvalidParameterError(resolved.spec.name, None, text, "softmax normalises a whole dimension; it is not "
                                    "a hidden-unit activation to compare")
    return Contender(resolved.text, trainable)


@dataclass
class GroupOutcome:
    job: GroupJob
    error: str | None = None


@dataclass
class ComparisonResult(OutcomeView):
    config: StudyConfig
    task: Task
    recipe: Recipe
    study: str
    contenders: list[Contender]
    lr_grid: tuple[float, ...] | None  # None: one lr pinned for all (recipe.lr)
    chosen_lr: dict[str, float]
    tuning: dict[str, dict[float, float]]  # label -> lr -> mean validation accuracy
    trials: list[dict[str, Any]]  # the test-phase trials the statistics use
    outcome: Outcome
    cost: dict[str, Cost] = field(default_factory=dict)
    failures: list[GroupOutcome] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    wall_seconds: float = 0.0
    chosen_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> the tuned fields' values
    tuning_settings: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> settings -> best validation

    def _repr_html_(self) -> str:
        """The summary table, rates, verdicts and notes, as the terminal prints them (Jupyter's display)."""
        from actlab.experiments.comparison.notebook import result_html

        return result_html(self)

    def as_dict(self) -> dict[str, Any]:
        """What ``actlab compare --json`` prints: the study, the lrs chosen (and the validation accuracy at each
        rate tried), the statistics, the failed groups and what ran."""
        return {
            "study": self.study, "store": self.config.store, "task": self.task.text, "recipe": self.recipe.as_dict(),
            "activations": [c.label for c in self.contenders], "lr_grid": self.lr_grid, "chosen_lr": self.chosen_lr,
            "tuning": self.tuning, "tune": {k: list(v) for k, v in self.config.tune.items()},
            "chosen_settings": self.chosen_settings, "tuning_settings": self.tuning_settings,
            "outcome": self.outcome.as_dict(),
            "cost": {label: asdict(c) for label, c in self.cost.items()},
            "failures": [{"group": f.job.label, "error": f.error} for f in self.failures],
            "trials_run": self.ran, "trials_reused": self.skipped, "wall_seconds": self.wall_seconds,
        }


def default_study_name(task: Task, contenders: list[Contender], recipe: Recipe | None = None,
                       grid: Sequence[float] | None = None, tune: Mapping[str, Sequence[Any]] | None = None,
                       base_seed: int | None = None, tune_seeds: int | None = None,
                       validation_fraction: float | None = None) -> str:
    """``"mnist1d: swish vs leaky_relu (lr tuned from 0.00333, 0.01, 0.03)"``: the task, the activations and what
    decides the numbers besides them (the lr policy, fields tuned with it, recipe fields set away from the task's),
    so runs with other settings get other names (and reports) instead of replacing each other's record."""
    name = f"{task.text}: " + " vs ".join(c.label for c in contenders)
    if recipe is None:
        return name
    parts = [f"lr tuned from {', '.join(f'{r:g}' for r in grid)}" if grid else f"lr {recipe.lr:g} pinned"]
    parts += [f"{k} tuned from {', '.join(setting_value(v) for v in values)}" for k, values in
              sorted((tune or {}).items())]
    default = task.spec.recipe.as_dict()
    parts += [f"{k}={setting_value(v)}" for k, v in sorted(recipe.as_dict().items())
              if k != "lr" and k not in (tune or {}) and default.get(k) != v]
    parts += [f"{k}={setting_value(v)}" for k, v, d in (("base_seed", base_seed, 0), ("tune_seeds", tune_seeds, 2),
                                                        ("validation_fraction", validation_fraction, 0.2))
              if v is not None and v != d]
    return f"{name} ({'; '.join(parts)})"


LARGE_PLAN = 1000  # trials: a plan this big is announced before it trains

# what a study's stored record must share with a new run under the same name: what decides which trials train (more
# seeds extend a study; the baseline and all-pairs choices only change the analysis of the same trials)
_PROTOCOL = ("activations", "task", "recipe", "lr_grid", "tune", "tune_seeds", "validation_fraction", "base_seed")


def protocol_conflict(stored: Mapping[str, Any] | None, record: Mapping[str, Any]) -> str | None:
    """The settings in which ``record`` differs from the study's stored record, in words (None: none differ). A
    recipe is compared field by field on the fields both name (a field added to recipes later is no conflict)."""
    if stored is None:
        return None
    plain = lambda v: json.loads(json.dumps(v, sort_keys=True, default=str))  # noqa: E731  (as stored)
    differ = []
    for k in _PROTOCOL:
        if k not in stored:
            continue
        old, new = plain(stored.get(k)), plain(record.get(k))
        if k == "recipe" and isinstance(old, dict) and isinstance(new, dict):
            changed = sorted(f for f in old.keys() & new.keys() if old[f] != new[f])
            differ += [f"recipe {f}: {old[f]!r} stored, {new[f]!r} now" for f in changed]
        elif old != new:
            differ.append(f"{k}: {old!r} stored, {new!r} now")
    return "; ".join(differ) or None


def fingerprints(task: Task, dataset: Dataset, contenders: Sequence[Contender]) -> dict[str, dict[str, Any]]:
    """label -> {data, model, code, route, probe, trainer, parameters}: what, besides the configuration, decides a
    trial's numbers (and the built model's parameter count, which the table shows). ``route``: the implementation
    the activation runs (native, compiled or python; the compiled lean paths round differently), so a build changes
    the keys of the activations whose path it changes and no others. ``probe`` (a model from your own factory only;
    actlab's own models are covered by ``code``): the freshly built model's initial parameters and its output and
    gradients on a few training examples, computed in float64 on one thread and rounded, so a changed forward or
    initialisation retrains while another machine or thread count does not. ``trainer`` (the code and whether the
    build runs) is checked by workers, not keyed."""
    data, trainer, code = dataset.content_hash(), trainer_version(), code_digest()
    out = {}
    for c in contenders:
        with _seeded():
            model = task.build(dataset, make_activation_factory(c.text, c.trainable))
        resolved = catalog.resolve(c.text)
        out[c.label] = {"data": data, "model": model_fingerprint(model, task.spec.source or task.spec.build),
                        "code": code, "route": route(resolved.spec, resolved.params, c.trainable),
                        "trainer": trainer, "parameters": sum(p.numel() for p in model.parameters())}
        if task.spec.source is not None:
            with _seeded():
                out[c.label]["probe"] = probe_fingerprint(model, dataset.x_train[:8])
    return out


@contextlib.contextmanager
def _seeded() -> Iterator[None]:
    """Every generator a model factory may draw from (torch's CPU one, NumPy's and Python's global ones) seeded,
    and restored after; CUDA's is left alone."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


_CHANGED = {"data": "the data changed", "model": "the model's structure or its factory's source changed",
            "code": "actlab's training or activation code changed",
            "probe": "the model's initialisation, its forward or the activation's implementation changed"}


def stale_reasons(stored: Sequence[Mapping[str, Any]], identity: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why a study's stored trials will not be reused, per activation whose every stored trial differs from what
    would train now ("relu (the data changed)"), or None where something is reused or nothing was stored."""
    reasons = []
    for label, now in identity.items():
        keyed = key_identity(now)
        old = [key_identity(json.loads(t["identity"] or "{}")) for t in stored if label_of(t) == label]
        if not old or any(o == keyed for o in old):
            continue
        changed = sorted({k for o in old for k, v in keyed.items() if k in o and o[k] != v})
        why = [_CHANGED.get(k, f"{k} changed") for k in changed]
        if any(set(keyed) - set(o) for o in old):
            why.append("an earlier actlab stored them, with a key that lacks what this one records")
        reasons.append(f"{label} ({'; '.join(why)})")
    return ", ".join(reasons) or None


def _seconds_per_epoch(trials: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """label -> mean seconds per epoch of its test-phase trials."""
    by: dict[str, list[float]] = {}
    for t in trials:
        if t.get("s_per_epoch") is not None and math.isfinite(t["s_per_epoch"]):
            by.setdefault(label_of(t), []).append(t["s_per_epoch"])
    return {label: sum(v) / len(v) for label, v in by.items()}


def key_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a contender's identity that goes into its trial keys: everything but the install-wide
    ``trainer`` tag, which the probe replaces per activation."""
    return {k: v for k, v in identity.items() if k != "trainer"}


def plan(config: StudyConfig, task: Task, contenders: list[Contender], phase: str,
         choices: Mapping[str, Sequence[tuple[Recipe, Sequence[float]]]], identity: dict[str, dict[str, str]],
         study: str, command: str) -> list[GroupJob]:
    """One job per activation and recipe (the recipes a tuned field's values make): every (lr, seed) member trains
    in one batch."""
    n = config.tune_seeds if phase == "tune" else config.seeds
    jobs = []
    for c in contenders:
        for recipe, rates in choices[c.label]:
            recipe_key = {k: v for k, v in recipe.as_dict().items() if k != "lr"}  # the member's lr is in the key
            members = [(lr, i) for lr in rates for i in range(n)]
            extra: dict[str, Any] = {"validation_fraction": config.validation_fraction} if phase == "tune" else {}
            if config.device != "cpu":  # a GPU's numbers are other numbers (CPU keys stay as they were)
                extra = {**extra, "device": config.device.split(":")[0]}
            keys = tuple(trial_key(phase=phase, activation=c.text, trainable=c.trainable, task=task.text,
                                   recipe=recipe_key, lr=lr, seed_index=i, base_seed=config.base_seed,
                                   identity=key_identity(identity[c.label]), **extra) for lr, i in members)
            jobs.append(GroupJob(
                phase=phase, activation=c.text, trainable=c.trainable, task=task.text, data_dir=task.data_dir,
                recipe=recipe.as_dict(), lrs=tuple(lr for lr, _ in members), base_seed=config.base_seed,
                seed_indices=tuple(i for _, i in members), keys=keys, validation_fraction=config.validation_fraction,
                mode=config.mode, study=study, command=command, identity=identity[c.label], device=config.device))
    return jobs


def _has_settings(trial: dict[str, Any], settings: dict[str, Any]) -> bool:
    recipe = json.loads(trial["recipe"])
    return all(recipe.get(k) == v for k, v in settings.items())


@dataclass
class Tuned:
    """What the tuning phase chose per activation (labels whose every run diverged keep the recipe's lr and
    settings, and are absent from ``lr`` and ``settings``)."""

    lr: dict[str, float]
    settings: dict[str, dict[str, Any]]
    curves: dict[str, dict[float, float]]  # label -> lr -> mean validation value, at the chosen settings
    by_settings: dict[str, dict[str, float]]  # label -> settings text -> best validation value (several settings)


def choose(rows: Sequence[dict[str, Any]], settings: Sequence[dict[str, Any]], labels: Sequence[str],
           metric: str) -> Tuned:
    """The best (settings, lr) per activation by mean validation value over the tuning trials ``rows``; ties go to
    the earlier settings, then the smaller lr."""
    m = METRICS[metric]
    sign = 1.0 if m.higher_is_better else -1.0
    curves = [tuning_curves([t for t in rows if _has_settings(t, s)], metric) for s in settings]
    out = Tuned({}, {}, {}, {})
    for label in labels:
        scores = {(i, lr): v for i, by_label in enumerate(curves) for lr, v in by_label.get(label, {}).items()
                  if math.isfinite(v)}
        if not scores:  # every run diverged: the curve shows it, the recipe's own lr and settings stay
            out.curves[label] = curves[0].get(label, {})
            continue
        i, lr = max(scores, key=lambda k: (sign * scores[k], -k[0], -k[1]))
        out.lr[label], out.settings[label], out.curves[label] = lr, dict(settings[i]), curves[i].get(label, {})
        if len(settings) > 1:
            out.by_settings[label] = {settings_text(s): m.best_value(by_label.get(label, {}))
                                      for s, by_label in zip(settings, curves)}
    return out


ProgressFn = Callable[[str, Any], None]
log = logging.getLogger(__name__)


def run_comparison(config: StudyConfig, progress: ProgressFn | None = None, command: str | None = None
                   ) -> ComparisonResult:
    """Run (or resume) a study and compute its statistics. ``progress(event, payload)`` receives
    ("warning", text) before training, ("plan", {...}), ("group_done", job), ("group_failed", (job, error)),
    ("epoch", (job, epoch, total)), ("cost", None) before the timing."""
    started = time.perf_counter()

    def notify(event: str, payload: Any) -> None:
        if progress is not None:
            progress(event, payload)
        elif event == "warning":  # no one listening (the Python API): a warning the caller sees
            warnings.warn(payload, UserWarning, stacklevel=3)

    contenders = [parse_contender(a) for a in config.activations]
    labels = [c.label for c in contenders]
    if len(set(labels)) != len(labels):
        raise ActlabError("activations: the same activation is listed twice")
    baseline = labels[0]
    if config.baseline is not None:
        baseline = parse_contender(config.baseline).label
        if baseline not in labels:
            raise ActlabError(f"baseline = {config.baseline!r} is not among the compared activations "
                              f"({', '.join(labels)})")
    task = resolve_task(config.task, data_dir=config.data_dir)
    dataset = task.load()  # a missing or corrupt data file fails here, before anything is stored
    recipe = config.with_recipe(task.spec.recipe)
    grid = config.lr_grid(recipe)
    metric = task.spec.metric
    study = config.study or default_study_name(task, contenders, recipe, grid, config.tune, config.base_seed,
                                               config.tune_seeds if grid is not None else None,
                                               config.validation_fraction if grid is not None else None)
    command = command if command is not None else shlex.join(["actlab", *sys.argv[1:]])
    record = {
        "activations": labels, "task": task.text, "recipe": recipe.as_dict(), "seeds": config.seeds,
        "tune_seeds": config.tune_seeds, "base_seed": config.base_seed, "lr_grid": grid,
        "validation_fraction": config.validation_fraction, "baseline": baseline, "all_pairs": config.all_pairs,
        "command": command, "metric": metric, "tune": {k: list(v) for k, v in config.tune.items()},
    }
    previous, stored = None, []
    if Path(config.store).exists():  # reading the record creates no store: a run refused later leaves nothing
        with Store(config.store) as store:
            previous = store.study(study)
            stored = [] if previous is None or config.force else store.trials(list(previous["members"].values()))
    conflict = None if config.force else protocol_conflict(None if previous is None else previous["config"], record)
    if conflict:  # before training: a name means one protocol, and its record would be replaced (--force replaces)
        raise ActlabError(f"study {study!r} already holds a run with other settings ({conflict}); give this run "
                          "another name (study=, --name), another store, or force=True (--force) to replace it")
    identity = fingerprints(task, dataset, contenders)
    stale = stale_reasons(stored, identity)
    if stale:  # said before training, so a rerun that retrains everything is not a surprise
        notify("warning", f"study {study!r}: its stored trials cannot be reused for {stale}; they are trained again")
    settings_count = len(config.settings_grid())
    tuning_trials = len(labels) * settings_count * len(grid or [recipe.lr]) * config.tune_seeds \
        if grid is not None or settings_count > 1 else 0
    if tuning_trials + len(labels) * config.seeds > LARGE_PLAN:  # said before the first of them trains
        notify("warning", f"this run plans {tuning_trials + len(labels) * config.seeds:,} trials ({tuning_trials:,} "
                          "to tune the "
                          f"rates of {len(labels)} activations, {len(labels) * config.seeds:,} to test them); trials "
                          "already in the store are reused")
    underpowered = stats.power_warning(config.seeds, stats.n_tests(len(contenders), config.all_pairs))
    if underpowered:
        notify("warning", underpowered)  # said before anything trains
    executor = make_executor(run_group, backend=config.backend, jobs=config.jobs, address=config.address,
                             cpus_per_group=config.cpus_per_group, gpus_per_group=config.gpus_per_group,
                             max_retries=config.max_retries, progress=lambda job, e, n: notify("epoch", (job, e, n)))
    failures: list[GroupOutcome] = []
    members: dict[str, str] = {}  # trial key -> the id this study shows
    ran = skipped = 0

    with Store(config.store) as store:

        def execute(jobs: list[GroupJob]) -> list[dict[str, Any]]:
            nonlocal ran, skipped
            todo = []
            for job in jobs:
                have = {} if config.force else store.latest(job.keys)
                members.update({k: have[k] for k in job.keys if k in have})
                missing = [p for p, k in enumerate(job.keys) if k not in have]
                skipped += len(job.keys) - len(missing)
                if missing:
                    todo.append(job.subset(missing))
            notify("plan", {"groups": len(todo), "trials": sum(len(j.keys) for j in todo), "skipped": skipped,
                            "phase": jobs[0].phase if jobs else ""})
            log.info("%s: %s phase, %d trials to train in %d groups, %d reused from the store", study,
                     jobs[0].phase if jobs else "-", sum(len(j.keys) for j in todo), len(todo), skipped)
            for job, result in executor.run(todo):
                if isinstance(result, BaseException):
                    error = f"{type(result).__name__}: {result}"
                    failures.append(GroupOutcome(job, error))
                    store.write_failure(study, job.phase, job.activation, job.task, job.lrs[0], job.keys, error)
                    log.warning("%s: group %s (%s phase) failed: %s", study, job.activation, job.phase, error)
                    notify("group_failed", (job, result))
                    continue
                for record in result:  # a concurrent run that stored a key first keeps it: one row per key
                    members[record["trial"]["trial_key"]] = store.write_trial(record["trial"], record["epochs"],
                                                                              unless_stored=not config.force)
                ran += len(result)
                notify("group_done", job)
            return store.trials([members[k] for j in jobs for k in j.keys if k in members])

        settings = config.settings_grid()
        tuned = Tuned({}, {}, {}, {})
        if grid is not None or len(settings) > 1:
            candidates = [(replace(recipe, **s), grid or [recipe.lr]) for s in settings]
            rows = execute(plan(config, task, contenders, "tune", {lab: candidates for lab in labels}, identity,
                                study, command))
            tuned = choose(rows, settings, labels, metric)
        chosen = {label: tuned.lr.get(label, recipe.lr) for label in labels}
        chosen_settings = {label: tuned.settings.get(label, dict(settings[0])) for label in labels}
        tuning, by_settings = tuned.curves, tuned.by_settings
        final = {lab: [(replace(recipe, **chosen_settings[lab]), [chosen[lab]])] for lab in labels}
        trials = execute(plan(config, task, contenders, "test", final, identity, study, command))
        cost: dict[str, Cost] = {}
        if config.cost and len(contenders) > 1 and not failures:
            notify("cost", None)
            cost = measure_cost(task, dataset, [(c.label, c.text, c.trainable) for c in contenders], baseline,
                                {lab: final[lab][0][0] for lab in labels}, config.base_seed, device=config.device)
            cost = check_against_epochs(cost, _seconds_per_epoch(trials), baseline)
        parameters = {label: identity[label]["parameters"] for label in labels}
        outcome = analyze(trials, labels, baseline, config.all_pairs, chosen, cost, metric, parameters)
        store.write_study(study, members, record, {
            "chosen_lr": chosen, "tuning": {k: {repr(lr): v for lr, v in c.items()} for k, c in tuning.items()},
            "cost": {k: asdict(v) for k, v in cost.items()}, "parameters": parameters,
            "chosen_settings": chosen_settings, "tuning_settings": by_settings})
    return ComparisonResult(config, task, recipe, study, contenders, grid, chosen, tuning, trials, outcome, cost,
                            failures, ran, skipped, time.perf_counter() - started, chosen_settings, by_settings)
