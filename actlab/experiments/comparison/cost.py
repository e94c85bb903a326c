"""What each activation costs to train, measured so that machine noise cannot pass for a difference.

One model per activation (seed 0, the task's model) takes training steps on the same batch (forward, backward,
optimizer step); the steps are timed in interleaved rounds, the order shuffled each round, so a busy spell of
the machine slows every activation alike. Each activation's cost is its ratio to the baseline's step time: the
median over rounds with a 95% bootstrap interval. Seconds per epoch from the training runs themselves are kept in
the store too, but they are one timing each, taken while the machine did whatever else it did.

Interleaving cancels steady noise, not all of it: on a loaded machine the ratio read 0.06x [0.04, 0.43] while
s/epoch said the opposite. So each measurement is checked, and the whole column marked unreliable, with the reason,
when the machine's load exceeded its cores, the baseline's own step time varied by more than 1.5x between rounds, an
interval is wider than the ratio itself, or (after training, :func:`check_against_epochs`) a ratio disagrees with the
training runs' seconds per epoch by more than 2x.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from actlab.experiments.training.trainer import build_models
from actlab.experiments.workload.data import Dataset
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import Task
from actlab.timing import interleaved, ratio

ROUNDS = 15


@dataclass(frozen=True)
class Cost:
    step_ms: float  # median milliseconds per training step of one model
    ratio: float  # step time / the baseline's, median over rounds
    low: float
    high: float
    unreliable: str | None = None  # why the column cannot be trusted, or None

    def text(self) -> str:
        return f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}]" + (" unreliable" if self.unreliable else "")


def measure_cost(task: Task, dataset: Dataset, contenders: Sequence[tuple[str, str, bool]], baseline: str,
                 recipes: Mapping[str, Recipe], base_seed: int, rounds: int = ROUNDS, min_block_s: float = 0.02,
                 device: str = "cpu") -> dict[str, Cost]:
    """``contenders``: (label, activation, trainable); ``recipes``: label -> the recipe it trained with (a tuned
    batch size changes the step). Returns label -> Cost relative to ``baseline``."""
    steps: dict[str, Any] = {}
    for label, activation, trainable in contenders:
        recipe = recipes[label]
        batch = min(recipe.batch_size, len(dataset.x_train))
        x, y = dataset.x_train[:batch].to(device), dataset.y_train[:batch].to(device)
        model = build_models(task, dataset, activation, trainable, recipe, base_seed, [0])[0].to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6)

        def step(model=model, opt=opt, x=x, y=y) -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        steps[label] = step  # its defaults bind this model
    load_before = _load()
    times = interleaved(steps, device.split(":")[0], rounds, min_block_s)
    load = max((v for v in (load_before, _load()) if v is not None), default=None)
    out = {}
    for label in steps:
        r = ratio(times[label], times[baseline])
        median_ms = 1e3 * sorted(times[label])[len(times[label]) // 2]
        out[label] = Cost(median_ms, r.median, r.low, r.high)
    return mark(out, timing_doubts(out, times[baseline], load, os.cpu_count()))


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


def timing_doubts(costs: Mapping[str, Cost], baseline_times: Sequence[float], load: float | None,
                  cores: int | None) -> list[str]:
    """Why a timing cannot be trusted (empty: no reason found)."""
    doubts = []
    if load is not None and cores and load > cores + 0.5:
        doubts.append(f"the machine's load was {load:.1f} on {cores} cores")
    finite = [t for t in baseline_times if t > 0 and math.isfinite(t)]
    if finite and max(finite) > 1.5 * min(finite):
        doubts.append(f"the baseline's step time varied {max(finite) / min(finite):.1f}x between rounds")
    wide = [label for label, c in costs.items() if c.high - c.low > c.ratio]
    if wide:
        doubts.append(f"the interval of {', '.join(wide)} is wider than its ratio")
    return doubts


def check_against_epochs(costs: Mapping[str, Cost], seconds_per_epoch: Mapping[str, float], baseline: str
                         ) -> dict[str, Cost]:
    """The costs, marked unreliable where a ratio and the training runs' own seconds per epoch (same seeds, same
    batches) disagree by more than 2x in either direction."""
    base = seconds_per_epoch.get(baseline)
    doubts = []
    for label, c in costs.items():
        s = seconds_per_epoch.get(label)
        if label == baseline or not base or not s or not math.isfinite(s / base):
            continue
        epochs = s / base
        if c.ratio > 2 * epochs or c.ratio < epochs / 2:
            doubts.append(f"{label}'s {c.ratio:.2f}x disagrees with the training runs' s/epoch ratio {epochs:.2f}x")
    return mark(dict(costs), doubts)


def mark(costs: dict[str, Cost], doubts: Sequence[str]) -> dict[str, Cost]:
    """Every cost marked unreliable with the reasons (an unreliable timing spoils the column's comparisons)."""
    if not doubts:
        return costs
    reasons = [r for c in costs.values() if c.unreliable for r in c.unreliable.split("; ")]
    reason = "; ".join(dict.fromkeys([*reasons, *doubts]))
    return {label: replace(c, unreliable=reason) for label, c in costs.items()}
