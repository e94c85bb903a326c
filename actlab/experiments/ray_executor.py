"""Run trial groups as Ray tasks: ``--backend ray [--address ADDR]``.

Each group becomes one Ray task with the resources asked for (CPUs, GPUs or a GPU fraction per group). A task
ships the :class:`GroupJob` (plain configuration); the worker builds the task's data and models itself, and hands
back plain records, which only the driver writes to the store, so resume and the statistics behave exactly as
with the local executors. Each worker process keeps the datasets it built (``executors._dataset`` cache), so a
worker that trains several groups of one task generates its data once.

Faults: a worker process that dies mid-group (killed, out of memory, node lost) is retried by Ray up to
``max_retries`` times; its trials reach the store once, when a run completes. A group that keeps failing, or
raises, comes back as an exception: the driver records it as failed with the error and the sweep goes on.

Without an address a local Ray instance is started for the sweep and shut down after it; with one, actlab
connects to that cluster (``ray start --head`` on the head node, ``ray start --address HEAD:6379`` on workers).
Ray is imported only here (``pip install 'actlab[ray]'``).
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

from actlab.errors import ActlabError
from actlab.experiments.executors import GroupJob, run_group

INSTALL_HINT = "pip install 'actlab[ray]'  (or: pip install ray)"


def import_ray():
    try:
        import ray
    except ImportError:
        raise ActlabError(f"the ray backend needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def _run_group_task(job: GroupJob, threads: int) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(max(1, threads))
    return run_group(job)


class RayExecutor:
    """Executor over a Ray cluster; ``run(jobs)`` yields ``(job, records or exception)`` as groups finish."""

    def __init__(self, address: str | None = None, cpus_per_group: float = 1.0, gpus_per_group: float = 0.0,
                 max_retries: int = 2, init_kwargs: dict[str, Any] | None = None):
        self.address = address
        self.cpus_per_group = cpus_per_group
        self.gpus_per_group = gpus_per_group
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})

    def _connect(self, ray) -> bool:
        """Connect (or start a local instance); True when this executor started Ray and must shut it down."""
        if ray.is_initialized():
            return False
        kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
        if self.address:
            kwargs["address"] = self.address
        # Workers import actlab from the driver's environment; the working directory travels with sys.path.
        env = kwargs.setdefault("runtime_env", {}).setdefault("env_vars", {})
        env.setdefault("PYTHONPATH", os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH", "")] if p))
        ray.init(**kwargs)
        return True

    def run(self, jobs: Sequence[GroupJob]) -> Iterator[tuple[GroupJob, list[dict[str, Any]] | BaseException]]:
        if not jobs:
            return
        ray = import_ray()
        started = self._connect(ray)
        try:
            task = ray.remote(_run_group_task).options(
                num_cpus=self.cpus_per_group, num_gpus=self.gpus_per_group, max_retries=self.max_retries,
                retry_exceptions=False, name="actlab_group")
            threads = max(1, int(self.cpus_per_group))
            pending = {task.remote(job, threads): job for job in jobs}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        yield job, ray.get(ref)
                    except Exception as exc:  # RayTaskError wraps the worker's exception; crashes come as is
                        cause = getattr(exc, "cause", None)
                        yield job, cause if isinstance(cause, BaseException) else exc
        finally:
            if started:
                ray.shutdown()
