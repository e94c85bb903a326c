"""Benchmarks of the comparison engine (issue: actlab compare). Run: python benchmarks/bench_compare.py

1. `actlab compare swish leaky_relu` with defaults (each activation's lr chosen from a grid of 3 on a validation
   split with 3 seeds, then 10 seeds, 25 epochs) into a fresh store: wall seconds; and the same work done by a naive
   per-seed script (benchmarks/naive_compare.py), timed flagship, naive, flagship so drift shows.
2. The default mnist1d MLP with ReLU: mean test accuracy over 10 seeds (must be >= 63%; MNIST-1D's MLP ~68%).
3. Seed-vectorized training vs the per-seed loop at 10 seeds: training throughput (examples/s, training time only).
4. The floor: the flagship's matrix products and optimizer passes alone (every training step's forward and
   backward GEMMs and one fused AdamW pass, every evaluation's GEMMs, at the group sizes the flagship uses), plus a
   process importing actlab's data module and loading the data. No way of running the same work on this machine is
   faster than the arithmetic it must do, so naive wall / floor bounds the speed-up any implementation could show
   against the naive script here.
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


def _floor_seconds(shapes: list[tuple[int, int]], S: int, B: int, steps: int, evals: list[int], epochs: int,
                   rounds: int = 7) -> float:
    """Least time for ``steps`` training steps of S stacked models (layers ``shapes``: (out, in)) on batches of B,
    counting only each step's GEMMs and one fused AdamW pass over the parameters, plus one forward's GEMMs per
    evaluation size in ``evals`` in each of ``epochs``: best of ``rounds`` timings of one step (and of one
    evaluation), scaled up."""
    def operands(n):
        return [(torch.randn(S, o, i), torch.randn(S, i, n), torch.randn(S, o, 1), torch.randn(S, o, n))
                for o, i in shapes]

    train, evaluations = operands(B), [operands(n) for n in evals]
    params = [t for w, _, b, _ in train for t in (w, b)]
    state = [[torch.zeros_like(t) for t in params] for _ in range(3)]
    count = torch.ones(())

    def step():
        for k, (w, xt, b, dy) in enumerate(train):
            torch.baddbmm(b, w, xt)  # forward
            torch.bmm(dy, xt.transpose(1, 2))  # the weight's gradient
            if k:  # the input's gradient (the first layer's input needs none)
                torch.bmm(w.transpose(1, 2), dy)
        torch._fused_adamw_(params, *state, [], [count] * len(params), lr=1e-3, beta1=0.9, beta2=0.999,
                            weight_decay=0.05, eps=1e-8, amsgrad=False, maximize=False)

    def evaluate():
        for ops in evaluations:
            for w, xt, b, _ in ops:
                torch.baddbmm(b, w, xt)

    def best(fn):
        fn()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return steps * best(step) + epochs * best(evaluate)


def floor_seconds() -> dict:
    """The flagship's work reduced to its matrix products and optimizer passes, at the group sizes and recipe
    `actlab compare` uses by default, plus a fresh process importing actlab's data module and loading the data."""
    from actlab.experiments.comparison.config import StudyConfig
    from actlab.experiments.training.group import load_data
    from actlab.experiments.training.trainer import DEAD_BATCH

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from actlab.experiments.workload.data import mnist1d; mnist1d()"],
                   check=True)
    startup = time.perf_counter() - t0
    config = StudyConfig(activations=("swish", "leaky_relu"))
    task, final = load_data(config.task, None, "final", config.validation_fraction, config.base_seed)
    _, tune = load_data(config.task, None, "tune", config.validation_fraction, config.base_seed)
    recipe = task.spec.recipe
    model = task.build(final, lambda: torch.nn.ReLU())
    shapes = [(m.out_features, m.in_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    grid = config.lr_grid(recipe) or (recipe.lr,)
    steps = lambda d: recipe.epochs * -(-len(d.y_train) // recipe.batch_size)  # noqa: E731
    per_activation = (
        _floor_seconds(shapes, len(grid) * config.tune_seeds, recipe.batch_size, steps(tune),
                       [len(tune.y_test), DEAD_BATCH], recipe.epochs)
        + _floor_seconds(shapes, config.seeds, recipe.batch_size, steps(final), [len(final.y_test), DEAD_BATCH],
                         recipe.epochs))
    compute = len(config.activations) * per_activation
    return {"startup_s": startup, "gemm_adamw_s": compute, "floor_s": startup + compute}


def main() -> None:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
              f"{torch.get_num_threads()} threads"
    walls = [flagship(), naive(), flagship()]
    floor = floor_seconds()
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
           "deep_loop_examples_per_s": loop_deep, "deep_speedup": vec_deep / loop_deep, **floor,
           "date": time.strftime("%Y-%m-%d")}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "compare.json").write_text(json.dumps(out, indent=2))
    print(f"| `actlab compare swish leaky_relu` (lr tuned, 10 seeds, 25 epochs), wall | {walls[0]:.1f} s, "
          f"{walls[2]:.1f} s | < 60 s |")
    print(f"| the same work as a naive per-seed script (benchmarks/naive_compare.py), wall | {naive_wall:.1f} s "
          f"({naive_wall / wall:.1f}x the flagship) | >= 3x |")
    print(f"| floor: a process loading the data, then the flagship's GEMMs and fused AdamW "
          f"passes alone | {floor['startup_s']:.1f} s + {floor['gemm_adamw_s']:.1f} s = {floor['floor_s']:.1f} s: "
          f"at most {naive_wall / floor['floor_s']:.1f}x the naive script on this machine | |")
    print(f"| default mnist1d MLP, ReLU, mean test accuracy over 10 seeds | {100 * acc:.2f}% | >= 63% |")
    print(f"| training throughput, 10 seeds, vectorized | {vec:,.0f} examples/s | |")
    print(f"| training throughput, 10 seeds, per-seed loop | {loop:,.0f} examples/s | |")
    print(f"| vectorized / loop, mnist1d MLP 40-256-256-10 | {vec / loop:.2f}x | >= 3x |")
    print(f"| vectorized / loop, {deep} | {vec_deep / loop_deep:.2f}x "
          f"({vec_deep:,.0f} vs {loop_deep:,.0f} examples/s) | >= 3x |")
    print(f"machine: {machine}")


if __name__ == "__main__":
    main()
