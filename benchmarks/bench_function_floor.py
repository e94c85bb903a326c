"""What a Python autograd.Function costs by itself at the flagship's tensor size, the floor under every activation
PyTorch has no op for. Against F.silu, fwd+bwd, interleaved rounds, median ratio with a bootstrap interval:

- ``function(silu)``: a Function whose forward is F.silu and whose backward is aten's silu_backward: the same
  arithmetic as F.silu, so the ratio is the Function's own cost;
- ``minimal swish(1.5)``: the fewest aten passes swish at beta = 1.5 can take with a backward that keeps only the
  input (softplus_backward(x, x, beta) forward; beta x clamped, then silu_backward), in a bare Function;
- ``actlab swish(1.5)``: the module, as users call it.

If the minimal Function is above issue 11's 1.5x at 100 x 256, no Python Function can meet it; only a node whose
backward runs in C++ (an extension, or a PyTorch op with the same math) could.

    python benchmarks/bench_function_floor.py [--rows 100] [--cols 256] [--dtype float32] [--rounds 21]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

import actlab
from actlab.speed import _Call
from actlab.timing import interleaved, ratio

BETA = 1.5


class SiluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.silu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.ops.aten.silu_backward(grad, x)


class MinimalSwish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.ops.aten.softplus_backward(x, x, BETA, 40.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        u = torch.mul(x, BETA).clamp_(-1e4, 1e4)
        return torch.ops.aten.silu_backward.grad_input(grad, u, grad_input=u)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--cols", type=int, default=256)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    x = (torch.randn(args.rows, args.cols, dtype=getattr(torch, args.dtype)) * 3).requires_grad_()
    candidates = {
        "F.silu": _Call(F.silu),
        "function(silu)": _Call(SiluFunction.apply),
        "minimal swish(1.5)": _Call(MinimalSwish.apply),
        "actlab swish(1.5)": actlab.get(f"swish(beta={BETA})"),
    }
    grad = torch.ones_like(x)

    def step(module):
        def run():
            x.grad = None
            module(x).backward(grad)
        return run

    times = interleaved({name: step(m) for name, m in candidates.items()}, "cpu", args.rounds)
    print(f"fwd+bwd, {args.rows} x {args.cols} {args.dtype}, {torch.get_num_threads()} threads, {args.rounds} "
          "interleaved rounds; ratio to F.silu (median [95% CI])")
    for name, t in times.items():
        r = ratio(t, times["F.silu"])
        print(f"  {name:20s} {1e6 * statistics.median(t):8.1f} us  {r.median:.2f}x [{r.low:.2f}, {r.high:.2f}]")


if __name__ == "__main__":
    main()
