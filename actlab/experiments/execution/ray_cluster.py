"""Run trial groups as Ray tasks: ``--backend ray [--address ADDR]``.

Each group becomes one Ray task with the resources asked for (CPUs, GPUs or a GPU fraction per group). A task
ships the job (plain configuration) and the worker function; the worker builds the task's data and models
itself, and hands
back plain records, which only the driver writes to the store, so resume and the statistics behave exactly as
with the local executors. Each worker process keeps the datasets it built (``training.group.load_data`` cache), so a
worker that trains several groups of one task generates its data once. Files under a task's ``data_dir`` (MNIST
IDX, CIFAR-10 batches) are read by the driver and put into Ray's object store once; workers write them into their
node's cache (``~/.cache/actlab/ray-data/<digest>``) and read them from there, so no shared filesystem is needed.

Faults: a worker process that dies mid-group (killed, out of memory, node lost) is retried by Ray up to
``max_retries`` times; its trials reach the store once, when a run completes. A group that keeps failing, or
raises, comes back as an exception: the driver records it as failed with the error and the sweep goes on.

Without an address a local Ray instance is started for the sweep and shut down after it; with one, actlab
connects to that cluster (``ray start --head`` on the head node, ``ray start --address HEAD:6379`` on workers).
Ray is imported only here (``pip install 'actlab[ray]'``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from actlab.errors import ActlabError

INSTALL_HINT = "pip install 'actlab[ray]'  (or: pip install ray)"


def import_ray():
    try:
        import ray
    except ImportError:
        raise ActlabError(
            f"the ray backend needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def pack_data_dir(data_dir: str) -> tuple[str, dict[str, bytes]]:
    """``(content digest, {relative path: bytes})`` of every file under ``data_dir``."""
    root = Path(data_dir)
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    digest = hashlib.sha256()
    for rel, blob in files.items():
        digest.update(rel.encode() + b"\0" + len(blob).to_bytes(8, "little"))
        digest.update(blob)
    return digest.hexdigest()[:20], files


def materialize_data_dir(packed: tuple[str, dict[str, bytes]]) -> str:
    """Write shipped files into this node's cache (once per content digest) and return the folder."""
    from actlab.experiments.workload.data import cache_dir

    digest, files = packed
    dest = cache_dir() / "ray-data" / digest
    if not (dest / ".complete").exists():
        tmp = dest.with_name(f"{digest}.tmp{os.getpid()}")
        for rel, blob in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        (tmp / ".complete").write_text("")
        try:
            tmp.rename(dest)
        except OSError:  # another worker on this node finished first: use its copy
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when nothing listens at a ``host:port`` (or ``ray://host:port``) address;
    ray.init itself keeps retrying for minutes. Other forms ("auto", "local") are left to Ray."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ActlabError(
            f"address = {address!r}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
            "`ray start --head --port 6379` on the head node, or leave --address out to run on a local Ray "
            "instance") from None


def _run_group_task(worker: Callable[..., list[dict[str, Any]]], job: Any, threads: int, packed_data=None
                    ) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(max(1, threads))
    if packed_data is not None:
        job = replace(job, data_dir=materialize_data_dir(packed_data))
    return worker(job)


class RayExecutor:
    """Executor over a Ray cluster; ``run(jobs)`` yields ``(job, records or exception)`` as groups finish."""

    def __init__(self, worker: Callable[..., list[dict[str, Any]]], address: str | None = None,
                 cpus_per_group: float = 1.0, gpus_per_group: float = 0.0, max_retries: int = 2,
                 init_kwargs: dict[str, Any] | None = None):
        self.worker = worker
        self.address = address
        self.cpus_per_group = cpus_per_group
        self.gpus_per_group = gpus_per_group
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})

    def _connect(self, ray) -> bool:
        """Connect (or start a local instance); True when this executor started Ray and must shut it down."""
        if self.address:
            check_reachable(self.address)
        if ray.is_initialized():  # already connected (a notebook's own ray.init, or the tests' cluster): use it
            return False
        kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
        if self.address:
            kwargs["address"] = self.address  # the cluster's nodes have actlab installed (docs/distributed.md)
        else:
            # A local instance's workers import actlab as the driver does, from a checkout too.
            import actlab

            root = os.path.dirname(os.path.dirname(os.path.abspath(actlab.__file__)))
            env = kwargs.setdefault("runtime_env", {}).setdefault("env_vars", {})
            env.setdefault("PYTHONPATH", os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH", "")] if p))
        ray.init(**kwargs)
        return True

    def _check_resources(self, ray) -> None:
        """A group that asks for more than any cluster has would wait forever; say so instead."""
        have = ray.cluster_resources()
        for key, want in (("CPU", self.cpus_per_group), ("GPU", self.gpus_per_group)):
            if want > have.get(key, 0.0):
                raise ActlabError(
                    f"{key.lower()}s_per_group = {want:g}, but the Ray cluster has {have.get(key, 0.0):g} {key}(s) in "
                    f"all; lower it or add nodes with {key}s")

    def run(self, jobs: Sequence[Any]) -> Iterator[tuple[Any, list[dict[str, Any]] | BaseException]]:
        if not jobs:
            return
        ray = import_ray()
        started = self._connect(ray)
        try:
            self._check_resources(ray)
            task = ray.remote(_run_group_task).options(
                num_cpus=self.cpus_per_group, num_gpus=self.gpus_per_group, max_retries=self.max_retries,
                retry_exceptions=False, name="actlab_group")
            threads = max(1, int(self.cpus_per_group))
            # Local data files go into the object store once per folder; every group that reads them gets the
            # reference, and each node fetches the bytes once.
            shipped = {d: ray.put(pack_data_dir(d)) for d in sorted({j.data_dir for j in jobs if j.data_dir})}
            # Groups given GPUs train on the one Ray makes visible to them (CUDA_VISIBLE_DEVICES).
            device = "cuda" if self.gpus_per_group > 0 else "cpu"
            pending = {task.remote(self.worker, replace(job, device=device), threads, shipped.get(job.data_dir)): job
                       for job in jobs}
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
