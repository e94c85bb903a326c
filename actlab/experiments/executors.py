"""Executors run trial groups and hand back their results as they complete.

The interface is one method, ``run(jobs) -> iterator of (job, records or exception)``. Jobs and records are
plain values (dataclasses and dicts), so another engine (Ray, a cluster scheduler) can be added without touching
the trainer or the store; only the driver writes the store.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence

import torch

if TYPE_CHECKING:
    from actlab.experiments.config import StudyConfig


@dataclass(frozen=True)
class GroupJob:
    """Everything a worker needs to train one group: no models, no data, only configuration."""

    phase: str  # "test", or "tune" (trained on the training split minus a validation split)
    activation: str
    trainable: bool
    task: str
    data_dir: str | None
    recipe: dict[str, Any]
    lr: float
    base_seed: int
    seed_indices: tuple[int, ...]
    keys: tuple[str, ...]
    validation_fraction: float = 0.2
    mode: str = "auto"
    study: str = ""
    command: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"  # where the worker trains ("cuda" for Ray groups given GPUs)


ProgressFn = Callable[[GroupJob, int, int], None]


class Executor(Protocol):
    def run(self, jobs: Sequence[GroupJob]) -> Iterator[tuple[GroupJob, list[dict[str, Any]] | BaseException]]:
        ...


@lru_cache(maxsize=4)
def _dataset(task_text: str, data_dir: str | None, phase: str, fraction: float, base_seed: int):
    from actlab.experiments.seeding import derive_seed
    from actlab.experiments.tasks import resolve_task

    task = resolve_task(task_text, data_dir=data_dir)
    data = task.load()
    if phase == "tune":
        data = data.validation_split(fraction, derive_seed(base_seed, task.text, 0, "validation"))
    return task, data


def run_group(job: GroupJob, progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Train one group and return one record per trial: {"trial": row for the store, "epochs": [rows]}."""
    from actlab.experiments.recipe import Recipe
    from actlab.experiments.store import environment, now
    from actlab.experiments.trainer import summarize, train_group

    task, data = _dataset(job.task, job.data_dir, job.phase, job.validation_fraction, job.base_seed)
    recipe = Recipe.from_mapping(job.recipe)
    results = train_group(task, data, job.activation, job.trainable, recipe, job.base_seed, job.seed_indices,
                          lr=job.lr, mode=job.mode, progress=progress, device=job.device)
    versions, hardware = environment()
    import json

    records = []
    for key, res in zip(job.keys, results):
        summary = summarize(res, task.spec.target_accuracy)
        trial = {
            "trial_key": key, "study": job.study, "phase": job.phase, "activation": job.activation,
            "trainable": int(job.trainable), "task": job.task, "recipe": json.dumps(job.recipe, sort_keys=True),
            "lr": job.lr, "seed_index": res.seed_index, "base_seed": job.base_seed, "init_seed": res.init_seed,
            "data_seed": res.data_seed, "status": res.status, "diverged_epoch": res.diverged_epoch,
            "vectorized": int(res.vectorized), "note": res.note, **summary,
            "activation_params": json.dumps(res.activation_params), "config": json.dumps(job.config, sort_keys=True),
            "versions": json.dumps(versions), "hardware": json.dumps(hardware), "command": job.command,
            "created_at": now(),
        }
        epochs = [vars(e) for e in res.epochs]
        records.append({"trial": trial, "epochs": epochs})
    return records


class InProcessExecutor:
    """Runs groups one after another in this process (the default)."""

    def __init__(self, progress: ProgressFn | None = None):
        self.progress = progress

    def run(self, jobs):
        for job in jobs:
            cb = (lambda e, n, _job=job: self.progress(_job, e, n)) if self.progress else None
            try:
                yield job, run_group(job, cb)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a failing group is reported, the sweep goes on
                exc.actlab_traceback = traceback.format_exc()
                yield job, exc


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_in_worker(job: GroupJob):
    return run_group(job)


class ProcessPoolExecutor_:
    """Runs groups in N worker processes (spawned, so no state is inherited), each with cores/N torch threads."""

    def __init__(self, workers: int, progress: ProgressFn | None = None):
        self.workers = workers
        self.progress = progress

    def run(self, jobs):
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            pending = {pool.submit(_run_in_worker, job): job for job in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        yield job, fut.result()
                    except Exception as exc:
                        yield job, exc


def make_executor(config: "StudyConfig", progress: ProgressFn | None = None) -> Executor:
    """The executor a study config asks for: Ray (backend "ray"), a process pool (jobs > 1) or in-process."""
    if config.backend == "ray":
        from actlab.experiments.ray_executor import RayExecutor, import_ray

        import_ray()  # a missing Ray fails here, before anything is planned
        return RayExecutor(config.address, config.cpus_per_group, config.gpus_per_group, config.max_retries)
    if config.jobs <= 1:
        return InProcessExecutor(progress)
    return ProcessPoolExecutor_(config.jobs, progress)
