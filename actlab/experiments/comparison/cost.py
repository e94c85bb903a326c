"""What each activation costs to train, measured so that machine noise cannot pass for a difference.

One model per activation (seed 0, the task's model) takes training steps on the same batch (forward, backward,
optimizer step); the steps are timed in interleaved rounds, the order shuffled each round, so a busy spell of
the machine slows every activation alike. Each activation's cost is its ratio to the baseline's step time: the
median over rounds with a 95% bootstrap interval. Seconds per epoch from the training runs themselves are kept in
the store too, but they are one timing each, taken while the machine did whatever else it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

    def text(self) -> str:
        return f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}]"


def measure_cost(task: Task, dataset: Dataset, contenders: Sequence[tuple[str, str, bool]], baseline: str,
                 recipes: Mapping[str, Recipe], base_seed: int, rounds: int = ROUNDS, min_block_s: float = 0.02
                 ) -> dict[str, Cost]:
    """``contenders``: (label, activation, trainable); ``recipes``: label -> the recipe it trained with (a tuned
    batch size changes the step). Returns label -> Cost relative to ``baseline``."""
    steps: dict[str, Any] = {}
    for label, activation, trainable in contenders:
        recipe = recipes[label]
        batch = min(recipe.batch_size, len(dataset.x_train))
        x, y = dataset.x_train[:batch], dataset.y_train[:batch]
        model = build_models(task, dataset, activation, trainable, recipe, base_seed, [0])[0]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6)

        def step(model=model, opt=opt, x=x, y=y) -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        steps[label] = step  # its defaults bind this model
    times = interleaved(steps, "cpu", rounds, min_block_s)
    out = {}
    for label in steps:
        r = ratio(times[label], times[baseline])
        median_ms = 1e3 * sorted(times[label])[len(times[label]) // 2]
        out[label] = Cost(median_ms, r.median, r.low, r.high)
    return out
