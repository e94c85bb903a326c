"""Executors that run trial groups on this machine: in this process, or in a pool of worker processes.

The interface is one method, ``run(jobs) -> iterator of (job, records or exception)``. The worker function (one
job in, plain records out) is given to the executor, as benchopt does, so execution knows nothing of training;
another engine (Ray, a cluster scheduler) is one more class with the same method. Only the driver writes the store.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Protocol

import torch

Worker = Callable[..., list[dict[str, Any]]]  # worker(job, progress=None) -> records
ProgressFn = Callable[[Any, int, int], None]  # progress(job, epoch, epochs)


class Executor(Protocol):
    def run(self, jobs: Sequence[Any]) -> Iterator[tuple[Any, list[dict[str, Any]] | BaseException]]:
        ...


class InProcessExecutor:
    """Runs groups one after another in this process (the default)."""

    def __init__(self, worker: Worker, progress: ProgressFn | None = None):
        self.worker = worker
        self.progress = progress

    def run(self, jobs):
        for job in jobs:
            cb = (lambda e, n, _job=job: self.progress(_job, e, n)) if self.progress else None
            try:
                yield job, self.worker(job, cb)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a failing group is reported, the sweep goes on
                exc.actlab_traceback = traceback.format_exc()
                yield job, exc


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


class PoolExecutor:
    """Runs groups in N worker processes (spawned, so no state is inherited), each with cores/N torch threads.
    The worker function must be importable by name (a module-level function)."""

    def __init__(self, worker: Worker, workers: int):
        self.worker = worker
        self.workers = workers

    def run(self, jobs):
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            pending = {pool.submit(self.worker, job): job for job in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        yield job, fut.result()
                    except Exception as exc:
                        yield job, exc
