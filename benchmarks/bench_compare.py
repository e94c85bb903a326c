"""Benchmarks of the comparison engine (issue: actlab compare). Run: python benchmarks/bench_compare.py

1. `actlab compare swish leaky_relu` with defaults (each activation's lr chosen from a grid of 3 on a validation
   split with 3 seeds, then 10 seeds, 25 epochs) into a fresh store: wall seconds; and the same work done by a naive
   per-seed script (benchmarks/naive_compare.py), timed flagship, naive, flagship so drift shows.
2. The default mnist1d MLP with ReLU: mean test accuracy over 10 seeds (must be >= 63%; MNIST-1D's MLP ~68%).
3. Seed-vectorized training vs the per-seed loop at 10 seeds: training throughput (examples/s, training time only).
Prints a markdown block for benchmarks/RESULTS.md and writes benchmarks/results/compare.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import actlab
from actlab.experiments.training.trainer import train_group
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import resolve_task

HERE = Path(__file__).resolve().parent


def flagship() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "actlab.cli", "compare", "swish", "leaky_relu", "--store",
                        f"{tmp}/a.db", "-q"], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def naive() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "naive_compare.py")], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def relu_baseline() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        r = actlab.compare("relu", store=f"{tmp}/r.db")
    return r.summaries[0].mean


def throughput(mode: str, seeds: int = 10, epochs: int = 5, task_text: str = "mnist1d") -> float:
    """Steady-state training examples per second: epochs 2.. (the first pays one-time warm-up costs)."""
    task = resolve_task(task_text)
    data = task.load()
    res = train_group(task, data, "relu", False, Recipe(epochs=epochs), 0, list(range(seeds)), mode=mode)
    train_seconds = sum(e.train_seconds for r in res for e in r.epochs[1:])  # vectorized rows hold group time / S
    return seeds * (epochs - 1) * len(data.x_train) / train_seconds


def main() -> None:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
              f"{torch.get_num_threads()} threads"
    walls = [flagship(), naive(), flagship()]
    wall, naive_wall = (walls[0] + walls[2]) / 2, walls[1]
    acc = relu_baseline()
    vec = throughput("vectorized")
    loop = throughput("per-seed")
    deep = "mnist1d-mlp(depth=8, width=64)"
    vec_deep = throughput("vectorized", task_text=deep)
    loop_deep = throughput("per-seed", task_text=deep)
    out = {"machine": machine, "flagship_wall_s": walls[::2], "naive_wall_s": naive_wall, "relu_mean_acc": acc,
           "vectorized_examples_per_s": vec,
           "loop_examples_per_s": loop, "speedup": vec / loop, "deep_vectorized_examples_per_s": vec_deep,
           "deep_loop_examples_per_s": loop_deep, "deep_speedup": vec_deep / loop_deep,
           "date": time.strftime("%Y-%m-%d")}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "compare.json").write_text(json.dumps(out, indent=2))
    print(f"| `actlab compare swish leaky_relu` (lr tuned, 10 seeds, 25 epochs), wall | {walls[0]:.1f} s, "
          f"{walls[2]:.1f} s | < 60 s |")
    print(f"| the same work as a naive per-seed script (benchmarks/naive_compare.py), wall | {naive_wall:.1f} s "
          f"({naive_wall / wall:.1f}x the flagship) | >= 3x |")
    print(f"| default mnist1d MLP, ReLU, mean test accuracy over 10 seeds | {100 * acc:.2f}% | >= 63% |")
    print(f"| training throughput, 10 seeds, vectorized | {vec:,.0f} examples/s | |")
    print(f"| training throughput, 10 seeds, per-seed loop | {loop:,.0f} examples/s | |")
    print(f"| vectorized / loop, mnist1d MLP 40-256-256-10 | {vec / loop:.2f}x | >= 3x |")
    print(f"| vectorized / loop, {deep} | {vec_deep / loop_deep:.2f}x "
          f"({vec_deep:,.0f} vs {loop_deep:,.0f} examples/s) | >= 3x |")
    print(f"machine: {machine}")


if __name__ == "__main__":
    main()
