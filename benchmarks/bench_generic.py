"""The generic path (a spec alone: its torch expression forward, its closed-form derivative in backward, keeping
only the input) against the eager torch composition of the same expression with autograd (what a user writes by
hand), fwd+bwd, interleaved in one run. Ratios are median per-round ratios with 95% bootstrap intervals (below 1 is
faster). Activations with no implementation entry: each runs the path every spec-only activation runs.

    python benchmarks/bench_generic.py [--rounds 21] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

import actlab
from actlab.kernels.implementations import IMPLEMENTATIONS
from actlab.timing import interleaved, ratio

CASES = ["squareplus", "sparse_plus", "xielu"]
SIZES = {"100 x 256": (100, 256), "2^22": (1 << 22,)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"])
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    steps = {}
    for name in CASES:
        spec = actlab.spec(name)
        assert spec not in IMPLEMENTATIONS, f"{name} has an entry: not the generic path"
        params = spec.defaults
        for label, shape in SIZES.items():
            x = (torch.randn(*shape) * 3).to(dtype).requires_grad_()
            g = torch.ones_like(x)

            def ours(x=x, g=g, spec=spec, params=params):
                x.grad = None
                actlab.functional.apply(spec, x, **params).backward(g)

            def composed(x=x, g=g, spec=spec, params=params):
                x.grad = None
                spec.torch_forward(x, **params).backward(g)

            steps[f"{name}|{label}|actlab"] = ours
            steps[f"{name}|{label}|composed"] = composed
    times = interleaved(steps, "cpu", args.rounds)
    load = os.getloadavg()[0]
    print(f"fwd+bwd {args.dtype}, {torch.get_num_threads()} threads, {args.rounds} interleaved rounds, 1-min load "
          f"{load:.2f}; ratios median [95% CI], actlab / eager composition")
    for name in CASES:
        for label in SIZES:
            a, c = times[f"{name}|{label}|actlab"], times[f"{name}|{label}|composed"]
            r = ratio(a, c)
            print(f"  {name:12s} {label:10s} composed {1e6 * statistics.median(c):10.1f} us   actlab / composed "
                  f"{r.median:.2f}x [{r.low:.2f}, {r.high:.2f}]")


if __name__ == "__main__":
    main()
