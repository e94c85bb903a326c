"""Timing that machine noise cannot fool: interleaved rounds and within-round ratios.

Each round times every candidate once, in a fresh random order, over a block of calls long enough for the clock;
a ratio is formed within the round, so noise that spans rounds (another process, frequency scaling) cancels. The
figure is the median ratio over rounds with a 95% bootstrap interval of that median. Used by the kernel benchmark
and by the comparison's cost column.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Step = Callable[[], Any]


@dataclass
class Ratio:
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f}x [{self.low:.2f}, {self.high:.2f}]"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _block_seconds(step: Step, device: str, number: int) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(number):
        step()
    _sync(device)
    return (time.perf_counter() - start) / number


def interleaved(steps: dict[str, Step], device: str, rounds: int, min_block_s: float = 0.02,
                seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of every step in every round, the order shuffled per round."""
    numbers = {}
    for name, step in steps.items():
        for _ in range(3):
            step()  # warm-up: allocator, caches, compilation
        one = max(_block_seconds(step, device, 1), 1e-7)
        numbers[name] = max(1, int(min_block_s / one))
    rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            times[name].append(_block_seconds(steps[name], device, numbers[name]))
    return times


def ratio(ours: list[float], theirs: list[float], seed: int = 0) -> Ratio:
    """Median of the per-round ratios with a 95% percentile-bootstrap interval of that median."""
    r = np.asarray(ours) / np.asarray(theirs)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(r, size=(2000, r.size), replace=True), axis=1)
    return Ratio(float(np.median(r)), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
