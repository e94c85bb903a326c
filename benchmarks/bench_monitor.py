"""What actlab.monitor costs a training step: the flagship's MLP (MNIST-1D shape: 40 -> 256 -> 256 -> 10, batch
100, AdamW, swish) and the lm task's transformer (bytes, d_model 48, 2 blocks, context 32, batch 16, AdamW, gelu),
each timed plain and monitored at several sampling rates (``every``), interleaved in rounds; the figure is the
median within-round ratio monitored / plain with a 95% bootstrap interval (actlab.timing).

    python benchmarks/bench_monitor.py [--rounds 25] [--every 1 4 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch
import torch.nn.functional as F

import actlab
from actlab.experiments.workload.models import mlp
from actlab.experiments.workload.transformer import TransformerLM
from actlab.timing import interleaved, ratio


def _mlp_step(activation: str = "swish"):
    model = mlp(40, [256, 256], 10, lambda: actlab.get(activation))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(100, 40), torch.randint(0, 10, (100,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return model, step


def _lm_step():
    model = TransformerLM(256, 32, lambda: actlab.get("gelu"), d_model=48, layers=2, heads=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, 256, (16, 33))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(tokens[:, :-1]), tokens[:, 1:]).backward()
        optimizer.step()

    return model, step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 4, 10])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}")
    print("| model | step (ms, plain) | " + " | ".join(f"every={e}" for e in args.every) + " |")
    print("|---|---|" + "---|" * len(args.every))
    for label, build in (("flagship MLP (mnist1d shape, batch 100)", _mlp_step),
                         ("lm transformer (d_model 48, 2 blocks, batch 16)", _lm_step)):
        steps = {}
        model, plain = build()
        steps["plain"] = plain
        for every in args.every:
            monitored_model, monitored = build()
            # window=None: no window closes during timing, so no read (and no sync) is timed either
            actlab.monitor(monitored_model, every=every, window=None)
            steps[f"every={every}"] = monitored
        times = interleaved(steps, "cpu", args.rounds, min_block_s=0.05)
        plain_ms = 1e3 * sorted(times["plain"])[len(times["plain"]) // 2]
        cells = [str(ratio(times[f"every={e}"], times["plain"])) for e in args.every]
        print(f"| {label} | {plain_ms:.3f} | " + " | ".join(cells) + " |")
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
