"""Ray backend scaling on one machine: a 20-group sweep (20 activations x 1 task, 3 seeds, 3 epochs each) with
Ray allowed 1 CPU and then 2 CPUs (1 CPU and 1 torch thread per group), against the in-process executor with one
torch thread. Prints wall times, the speedup of 2 workers over 1, and Ray's overhead per group (wall time with
1 worker minus the in-process time, divided by the number of groups).

    python benchmarks/bench_ray.py [--groups 20] [--seeds 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
import torch

import actlab
from actlab.experiments.comparison.compare import run_comparison
from actlab.experiments.comparison.config import StudyConfig


def sweep(store: Path, activations, seeds: int, epochs: int, backend: str) -> float:
    cfg = StudyConfig(activations=tuple(activations), seeds=seeds, store=str(store), study="bench-ray",
                      recipe_overrides={"epochs": epochs}, backend=backend)
    start = time.perf_counter()
    result = run_comparison(cfg)
    assert not result.failures, result.failures
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    acts = [n for n in actlab.names() if actlab.spec(n).kind == "elementwise" and n != "rrelu"][: args.groups]
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(1)
        local = sweep(Path(tmp) / "local.db", acts, args.seeds, args.epochs, "local")
        times = {}
        for cpus in (1, 2):
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            try:
                times[cpus] = sweep(Path(tmp) / f"ray{cpus}.db", acts, args.seeds, args.epochs, "ray")
            finally:
                ray.shutdown()
    print(f"{len(acts)} groups x {args.seeds} seeds x {args.epochs} epochs (mnist1d MLP)")
    print(f"in-process, 1 thread: {local:.1f} s")
    print(f"ray, 1 worker:        {times[1]:.1f} s")
    print(f"ray, 2 workers:       {times[2]:.1f} s  -> {times[1] / times[2]:.2f}x over 1 worker")
    print(f"ray overhead per group: {(times[1] - local) / len(acts):.2f} s (1 worker vs in-process)")


if __name__ == "__main__":
    main()
