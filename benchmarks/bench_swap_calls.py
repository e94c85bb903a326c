"""What swap_calls costs per forward: the same model, its F.gelu calls routed to actlab's gelu (the same math, so
the difference is the routing: a TorchFunctionMode and module hooks), against the model as written and against the
module form (nn.GELU swapped by actlab.swap). Interleaved rounds, median ratio with a bootstrap interval.

    python benchmarks/bench_swap_calls.py [--batch 100] [--width 256] [--depth 4] [--rounds 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import actlab


class Calls(nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = F.gelu(layer(x))
        return x


class Modules(nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.GELU())])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _block(model: nn.Module, x: torch.Tensor, seconds: float = 0.02) -> float:
    """Seconds per fwd+bwd, over a block of at least ``seconds``."""
    n, start = 0, time.perf_counter()
    while True:
        model(x).sum().backward()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.width)
    written = Calls(args.width, args.depth)
    routed = Calls(args.width, args.depth)
    routed.load_state_dict(written.state_dict())
    assert actlab.swap_calls(routed, "gelu", x) == 1  # one site: one calling module, one function
    modules = Modules(args.width, args.depth)
    actlab.swap(modules, "gelu")
    torch.testing.assert_close(routed(x), written(x))
    candidates = {"F.gelu as written": written, "swap_calls -> actlab gelu": routed, "swap -> actlab gelu": modules}
    for model in candidates.values():  # warm-up
        _block(model, x, 0.2)
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for _ in range(args.rounds):
        order = list(candidates)
        random.shuffle(order)
        for name in order:
            times[name].append(_block(candidates[name], x))
    base = np.array(times["F.gelu as written"])
    rng = np.random.default_rng(0)
    print(f"batch {args.batch} x width {args.width}, {args.depth} layers, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fwd+bwd, {args.rounds} interleaved rounds")
    for name, values in times.items():
        ratios = np.array(values) / base
        boots = [float(np.median(rng.choice(ratios, ratios.size))) for _ in range(2000)]
        low, high = np.percentile(boots, [2.5, 97.5])
        median_us = statistics.median(values) * 1e6
        print(f"{name:28s} {median_us:8.1f} us   {np.median(ratios):.3f}x [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
