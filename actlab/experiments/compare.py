"""The comparison pipeline: study config -> plan of trial groups -> executor -> store -> statistics.

Each stage passes plain values, so each can be tested alone. A rerun of the same study skips the trials already
in the store (resume); ``force`` reruns them.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from actlab.catalog.registry import resolve_trainable
from actlab.errors import ActlabError, InvalidParameterError
from actlab.experiments import stats
from actlab.experiments.config import StudyConfig
from actlab.experiments.executors import GroupJob, make_executor
from actlab.experiments.recipe import Recipe
from actlab.experiments.store import Store, trial_key
from actlab.experiments.tasks import Task, resolve_task


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
class ComparisonResult:
    config: StudyConfig
    task: Task
    recipe: Recipe
    study: str
    contenders: list[Contender]
    chosen_lr: dict[str, float]
    tuning: dict[str, dict[float, float]]  # label -> lr -> mean validation accuracy
    trials: list[dict[str, Any]]
    summaries: list[stats.Summary]
    pairs: list[stats.Pairwise]
    failures: list[GroupOutcome] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    wall_seconds: float = 0.0
    warning: str | None = None

    def by_activation(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in self.trials:
            out[label_of(t)].append(t)
        return out


def label_of(trial: dict[str, Any]) -> str:
    return f"{trial['activation']}[trainable]" if trial["trainable"] else trial["activation"]


def _keys(phase: str, c: Contender, task: Task, recipe: Recipe, lr: float, base_seed: int, seeds: Sequence[int],
          validation_fraction: float) -> tuple[str, ...]:
    extra = {"validation_fraction": validation_fraction} if phase == "tune" else {}
    return tuple(
        trial_key(phase=phase, activation=c.text, trainable=c.trainable, task=task.text, recipe=recipe.as_dict(),
                  lr=lr, seed_index=i, base_seed=base_seed, **extra)
        for i in seeds
    )


def plan(config: StudyConfig, task: Task, recipe: Recipe, contenders: list[Contender], phase: str,
         lrs: dict[str, list[float]], study: str, command: str) -> list[GroupJob]:
    """One job per (activation, learning rate): all its seeds train together."""
    seeds = tuple(range(config.tune_seeds if phase == "tune" else config.seeds))
    jobs = []
    for c in contenders:
        for lr in lrs[c.label]:
            jobs.append(GroupJob(
                phase=phase, activation=c.text, trainable=c.trainable, task=task.text, data_dir=task.data_dir,
                recipe=recipe.as_dict(), lr=lr, base_seed=config.base_seed, seed_indices=seeds,
                keys=_keys(phase, c, task, recipe, lr, config.base_seed, seeds, config.validation_fraction),
                validation_fraction=config.validation_fraction, mode=config.mode, study=study, command=command,
                config={"task": task.text, "seeds": config.seeds, "base_seed": config.base_seed,
                        "tune_lr": list(config.tune_lr), "recipe": recipe.as_dict(), "phase": phase},
            ))
    return jobs


def default_study_name(task: Task, contenders: list[Contender]) -> str:
    return f"{task.text}: " + " vs ".join(c.label for c in contenders)


ProgressFn = Callable[[str, Any], None]


def run_comparison(config: StudyConfig, progress: ProgressFn | None = None, command: str | None = None
                   ) -> ComparisonResult:
    """Run (or resume) a study and compute its statistics. ``progress(event, payload)`` receives
    ("warning", text) before training, ("plan", {...}), ("group_done", job), ("group_failed", (job, error)),
    ("epoch", (job, epoch, total))."""
    started = time.perf_counter()
    notify = progress or (lambda *_: None)
    contenders = [parse_contender(a) for a in config.activations]
    if len({c.label for c in contenders}) != len(contenders):
        raise ActlabError("activations: the same activation is listed twice")
    task = resolve_task(config.task, data_dir=config.data_dir)
    task.load()  # a missing or corrupt data file fails here, before anything is stored
    recipe = config.with_recipe(task.spec.recipe)
    study = config.study or default_study_name(task, contenders)
    command = command if command is not None else shlex.join(["actlab", *sys.argv[1:]])
    n_tests = len(contenders) * (len(contenders) - 1) // 2  # all pairs, Holm-corrected together
    underpowered = stats.power_warning(config.seeds, n_tests)
    if underpowered:
        notify("warning", underpowered)  # said before anything trains
    executor = make_executor(config, lambda job, e, n: notify("epoch", (job, e, n)))
    failures: list[GroupOutcome] = []
    ran = skipped = 0

    with Store(config.store) as store:

        def execute(jobs: list[GroupJob]) -> None:
            nonlocal ran, skipped
            todo = []
            for job in jobs:
                have = set() if config.force else store.existing(job.keys)
                missing = tuple(i for i, k in zip(job.seed_indices, job.keys) if k not in have)
                skipped += len(job.seed_indices) - len(missing)
                if missing:
                    keys = tuple(k for i, k in zip(job.seed_indices, job.keys) if i in missing)
                    todo.append(GroupJob(**{**job.__dict__, "seed_indices": missing, "keys": keys}))
            notify("plan", {"groups": len(todo), "trials": sum(len(j.seed_indices) for j in todo),
                            "skipped": skipped, "phase": jobs[0].phase if jobs else ""})
            for job, outcome in executor.run(todo):
                if isinstance(outcome, BaseException):
                    error = f"{type(outcome).__name__}: {outcome}"
                    failures.append(GroupOutcome(job, error))
                    store.write_failure(study, job.phase, job.activation, job.task, job.lr, job.keys, error)
                    notify("group_failed", (job, outcome))
                    continue
                for record in outcome:
                    store.write_trial(record["trial"], record["epochs"])
                ran += len(outcome)
                notify("group_done", job)

        tuning: dict[str, dict[float, float]] = {}
        chosen: dict[str, float] = {c.label: recipe.lr for c in contenders}
        if config.tune_lr:
            lrs = {c.label: list(config.tune_lr) for c in contenders}
            tune_jobs = plan(config, task, recipe, contenders, "tune", lrs, study, command)
            execute(tune_jobs)
            rows = store.trials([k for j in tune_jobs for k in j.keys])
            for c in contenders:
                means = {}
                for lr in config.tune_lr:
                    accs = [r["final_acc"] for r in rows
                            if label_of(r) == c.label and r["lr"] == lr and r["final_acc"] is not None]
                    means[lr] = sum(accs) / len(accs) if accs else -math.inf
                tuning[c.label] = means
                chosen[c.label] = max(config.tune_lr, key=lambda lr: (means[lr], -lr))
        test_jobs = plan(config, task, recipe, contenders, "test", {k: [v] for k, v in chosen.items()}, study, command)
        execute(test_jobs)
        trials = store.trials([k for j in test_jobs for k in j.keys])

    scores: dict[str, dict[int, float]] = {c.label: {} for c in contenders}
    for t in trials:
        if t["final_acc"] is not None:
            scores[label_of(t)][t["seed_index"]] = t["final_acc"]
    summaries = stats.summarize(scores)
    pairs = stats.pairwise(scores)
    n = min((len(v) for v in scores.values()), default=0)
    return ComparisonResult(config, task, recipe, study, contenders, chosen, tuning, trials, summaries, pairs,
                            failures, ran, skipped, time.perf_counter() - started,
                            " ".join(w for w in (stats.seed_warning(n), underpowered) if w) or None)
