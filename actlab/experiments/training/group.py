"""One trial group as plain values: the job a worker receives and the records it hands back.

A :class:`GroupJob` carries configuration only (no models, no data), so it can travel to a process pool or a Ray
worker; :func:`run_group` is the worker function the executors are given. Its members are (seed index, learning
rate) pairs that train together as one batch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from actlab.kernels import compiled


@dataclass(frozen=True)
class GroupJob:
    """Everything a worker needs to train one group; ``seed_indices``, ``lrs`` and ``keys`` are parallel."""

    phase: str  # "test", or "tune" (trained on the training split minus a validation split)
    activation: str
    trainable: bool
    task: str
    data_dir: str | None
    recipe: dict[str, Any]
    lrs: tuple[float, ...]
    base_seed: int
    seed_indices: tuple[int, ...]
    keys: tuple[str, ...]
    validation_fraction: float = 0.2
    mode: str = "auto"
    study: str = ""
    command: str = ""
    identity: dict[str, str] = field(default_factory=dict)  # data, model and trainer fingerprints (in the keys)
    device: str = "cpu"  # where the worker trains ("cuda" for Ray groups given GPUs)

    def subset(self, positions: list[int]) -> GroupJob:
        """The same job restricted to some of its members."""
        pick = lambda values: tuple(values[i] for i in positions)  # noqa: E731
        return GroupJob(**{**self.__dict__, "seed_indices": pick(self.seed_indices), "lrs": pick(self.lrs),
                           "keys": pick(self.keys)})

    @property
    def label(self) -> str:
        return f"{self.activation}[trainable]" if self.trainable else self.activation


_DATA_CACHE: dict[tuple, tuple[Any, Any]] = {}  # the last few datasets loaded, with the task spec each came from


def load_data(task_text: str, data_dir: str | None, phase: str, fraction: float, base_seed: int):
    """(task, dataset) as a group of this phase sees it: the tune phase trains on the training set minus a
    stratified validation split and evaluates on that split; the test set is never seen while tuning.

    The task is resolved on every call (a task registered again from Python, with a changed model, must be the one
    that trains); the dataset is reused while the task's spec is the same object."""
    from actlab.experiments.training.seeding import derive_seed
    from actlab.experiments.workload.tasks import resolve_task

    task = resolve_task(task_text, data_dir=data_dir)
    key = (task_text, data_dir, phase, fraction, base_seed)
    cached = _DATA_CACHE.get(key)
    if cached is not None and cached[0] is task.spec:
        return task, cached[1]
    data = task.load()
    if phase == "tune":
        data = data.validation_split(fraction, derive_seed(base_seed, task.text, 0, "validation"))
    if len(_DATA_CACHE) >= 4:
        _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
    _DATA_CACHE[key] = (task.spec, data)
    return task, data


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the code that decides a trial's numbers: the training room's modules and the activations'
    definitions and implementations (actlab/catalog, actlab/kernels)."""
    package = Path(__file__).resolve().parents[2]
    sources = [*Path(__file__).parent.glob("*.py"), *(package / "kernels").glob("*.py"),
               *(package / "kernels").glob("*.cpp"), *(package / "catalog").rglob("*.py")]
    h = hashlib.sha256()
    for path in sorted(sources):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def trainer_version() -> str:
    """A digest of the code that decides a trial's numbers: the training room's modules, the activations'
    definitions and implementations (actlab/catalog, actlab/kernels), and whether the compiled lean paths run (their
    fused loops round differently from the Python paths, so a trial trained with ``actlab build-ext``'s build is
    another trial than one trained without)."""
    return f"{code_digest()}-{'compiled' if compiled.load() is not None else 'python'}"


def model_fingerprint(model, build: Callable | None = None) -> str:
    """A digest of a built model: its module tree (types and hyperparameters as repr shows them), every
    parameter's and buffer's name, shape and dtype, and the source of the function that built it when Python can
    find it. A custom model whose width or code changed gets another fingerprint, so its trials are not reused."""
    h = hashlib.sha256(repr(model).encode())
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
    if build is not None:
        try:
            h.update(inspect.getsource(build).encode())
        except (OSError, TypeError):  # built in a REPL or from C: the structure above still counts
            pass
    return h.hexdigest()[:16]


def probe_fingerprint(model: Any, x: Any) -> str:
    """A digest of what a freshly built model is and computes: its initial parameters, its output on ``x`` (a few
    training examples) in eval mode, and the gradients of that output's sum. Each tensor enters as its shape and its
    L1 and L2 norms to 4 significant digits (no sums: cancellation would bring the last bits forward), computed in
    float64 on one thread: the thread count and the CPU's vector width move float32 results (initial weights
    included) in their last bits, which must not change a key, while a real change of the forward or the
    initialisation (a scale, a layer, another init) moves these norms by far more than 1e-3. Run once per
    activation when a study is planned; the model is untouched."""
    import copy

    import torch

    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode() + _summary(p))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        probe = copy.deepcopy(model).double().eval()
        _probe_outputs(probe, x.double() if x.is_floating_point() else x, h)
    except Exception as exc:  # the model fails to run: training will fail too, and say why, as a failed group
        h.update(f"failed: {type(exc).__name__}".encode())
    finally:
        torch.set_num_threads(threads)
    return h.hexdigest()[:16]


def _summary(t: Any) -> bytes:
    """A tensor's shape and L1 and L2 norms to 4 significant digits (see probe_fingerprint)."""
    import torch

    v = t.detach().cpu().to(torch.float64)
    l1, l2 = float(v.abs().sum()), float(torch.linalg.vector_norm(v))
    return f"{tuple(v.shape)}:{l1:.4g}:{l2:.4g};".encode()


def _probe_outputs(model: Any, x: Any, h: Any) -> None:
    import torch

    with torch.enable_grad():
        out = model(x)
        values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else (out,)
        tensors = [t for t in values if isinstance(t, torch.Tensor)]
        h.update(b"".join(_summary(t) for t in tensors))
        params = [p for p in model.parameters() if p.requires_grad]
        floating = [t for t in tensors if t.is_floating_point() and t.requires_grad]
        if params and floating:
            total = torch.stack([t.sum() for t in floating]).sum()
            grads = torch.autograd.grad(total, params, allow_unused=True)
            h.update(b"".join(_summary(g) for g in grads if g is not None))


def environment() -> tuple[dict[str, str], dict[str, Any]]:
    """(package versions, hardware) recorded with every trial."""
    import numpy
    import torch

    import actlab

    versions = {"actlab": actlab.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
                "python": platform.python_version()}
    hardware = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "system": platform.system()}
    return versions, hardware


def machine_load() -> float | None:
    """The 1-minute load average (runnable processes, this one included), or None where the system has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_group(job: GroupJob, progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Train one group and return one record per trial: {"trial": row for the store, "epochs": [rows]}."""
    from actlab.experiments.training.trainer import summarize, train_group
    from actlab.experiments.workload.recipe import Recipe

    planned, here = job.identity.get("trainer"), trainer_version()
    if planned is not None and planned != here:  # a Ray worker with other code, or without the build the driver has
        raise RuntimeError(f"this worker's code differs from the code that planned the job (trainer {here} here, "
                           f"{planned} planned): its trials would be stored under the other code's key. Install the "
                           "same actlab everywhere, and run `actlab build-ext` on every machine or on none")
    task, data = load_data(job.task, job.data_dir, job.phase, job.validation_fraction, job.base_seed)
    recipe = Recipe.from_mapping(job.recipe)
    load_before = machine_load()
    results = train_group(task, data, job.activation, job.trainable, recipe, job.base_seed, job.seed_indices,
                          lr=list(job.lrs), mode=job.mode, progress=progress, device=job.device)
    versions, hardware = environment()
    # what else the machine ran while this group trained: timings (s/epoch, the cost column) read with it
    hardware["load_1min"] = [load_before, machine_load()]
    records = []
    for key, res in zip(job.keys, results):
        summary = summarize(res, task.spec.target_accuracy, data.y_test.numel())
        trial = {
            "trial_key": key, "study": job.study, "phase": job.phase, "activation": job.activation,
            "trainable": int(job.trainable), "task": job.task,
            # the lr is the trial's own column: a group's recipe holds the base rate, which its members' grid
            # replaces, and two places for one number could disagree
            "recipe": json.dumps({k: v for k, v in job.recipe.items() if k != "lr"}, sort_keys=True),
            "lr": res.lr, "seed_index": res.seed_index, "base_seed": job.base_seed, "init_seed": res.init_seed,
            "data_seed": res.data_seed, "status": res.status, "diverged_epoch": res.diverged_epoch,
            "vectorized": int(res.vectorized), "note": res.note, **summary,
            "activation_params": json.dumps(res.activation_params),
            "identity": json.dumps(job.identity, sort_keys=True),
            "versions": json.dumps(versions), "hardware": json.dumps(hardware), "command": job.command,
            "created_at": now(),
        }
        records.append({"trial": trial, "epochs": [vars(e) for e in res.epochs]})
    return records
