"""The compiled lean paths (`actlab build-ext`) against the Python lean paths they replace, and both against PyTorch's
closest op, in one interleaved run: fwd+bwd at the flagship's tensor size (100 x 256), per activation with a
compiled entry. Ratios are median per-round ratios with 95% bootstrap intervals (below 1 is faster).

- ``closest``: what issue 11 bounds each activation against (F.silu for swish at any beta and a trained beta, F.glu
  for the GLU variants, F.relu for squared ReLU, F.hardsigmoid), called through a module as actlab's are;
- ``python``: actlab's module with the entry's Python lean path (as without a build, or ``ACTLAB_COMPILED=0``);
- ``compiled``: actlab's module as users get it after ``actlab build-ext``.

    python benchmarks/bench_compiled.py [--rows 100] [--cols 256] [--dtype float32] [--rounds 21]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch

import actlab
from actlab.kernels import compiled, function
from actlab.kernels.implementations import IMPLEMENTATIONS
from actlab.speed import _Call
from actlab.timing import interleaved, ratio

CASES = ["swish(beta=1.5)", "swish(trainable=True)", "squared_relu", "hardsigmoid", "softsign", "swiglu", "geglu"]


def _python_module(name: str) -> torch.nn.Module:
    """The module as it runs without the build: the entry's lean paths rebuilt with ``compiled`` unset."""
    module = actlab.get(name)
    spec = module.spec
    paths = function._build_eager(spec, dataclasses.replace(IMPLEMENTATIONS[spec], compiled=None))
    if module.trainable:
        return _Call(lambda x: paths.function(x, module.beta))
    values = tuple(module.values.values())
    return _Call(lambda x: paths.autograd(x, *values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--cols", type=int, default=256)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "float64"])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    if compiled.load() is None:
        raise SystemExit("the compiled lean paths are not built: run `actlab build-ext` first")
    dtype = getattr(torch, args.dtype)
    x = (torch.randn(args.rows, args.cols) * 3).to(dtype).requires_grad_()
    steps, rows = {}, []
    for name in CASES:
        module = actlab.get(name)
        spec, params = module.spec, module.current_params()
        closest = IMPLEMENTATIONS[spec].closest
        assert closest is not None
        candidates = {"closest": _Call(lambda t, c=closest, p=params: c(t, **p)), "python": _python_module(name),
                      "compiled": module}
        grad = torch.ones_like(candidates["compiled"](x))
        for label, m in candidates.items():
            def step(m=m, grad=grad):
                x.grad = None
                m(x).backward(grad)
                if isinstance(m, actlab.nn.Activation) and m.trainable:
                    m.beta.grad = None
            steps[(name, label)] = step
        rows.append(name)
    times = interleaved({f"{n}|{label}": s for (n, label), s in steps.items()}, "cpu", args.rounds)
    print(f"fwd+bwd, {args.rows} x {args.cols} {args.dtype}, {torch.get_num_threads()} threads, {args.rounds} "
          "interleaved rounds; ratios median [95% CI]")
    print(f"  {'activation':24s} {'closest us':>10s} {'python / closest':>20s} {'compiled / closest':>20s} "
          f"{'compiled / python':>20s}")
    for name in rows:
        t = {label: times[f"{name}|{label}"] for label in ("closest", "python", "compiled")}
        cells = [ratio(t["python"], t["closest"]), ratio(t["compiled"], t["closest"]),
                 ratio(t["compiled"], t["python"])]
        text = [f"{r.median:.2f}x [{r.low:.2f}, {r.high:.2f}]" for r in cells]
        print(f"  {name:24s} {1e6 * statistics.median(t['closest']):10.1f} {text[0]:>20s} {text[1]:>20s} "
              f"{text[2]:>20s}")


if __name__ == "__main__":
    main()
