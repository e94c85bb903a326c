"""Execution: where trial groups run (this process, a process pool, a Ray cluster). The worker function is passed
in; nothing here imports the trainer."""

from __future__ import annotations

from actlab.experiments.execution.local import (
    Executor,
    InProcessExecutor,
    PoolExecutor,
    ProgressFn,
    Worker,
)


def make_executor(worker: Worker, *, backend: str = "local", jobs: int = 1, address: str | None = None,
                  cpus_per_group: float = 1.0, gpus_per_group: float = 0.0, max_retries: int = 2,
                  progress: ProgressFn | None = None) -> Executor:
    """Ray (backend "ray"), a process pool (jobs > 1) or in-process."""
    if backend == "ray":
        from actlab.experiments.execution.ray_cluster import RayExecutor, import_ray

        import_ray()  # a missing Ray fails here, before anything is planned
        return RayExecutor(worker, address, cpus_per_group, gpus_per_group, max_retries)
    if jobs <= 1:
        return InProcessExecutor(worker, progress)
    return PoolExecutor(worker, jobs)


__all__ = ["Executor", "InProcessExecutor", "PoolExecutor", "make_executor"]
