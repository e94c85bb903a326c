"""The CPU kernel figures of benchmarks/RESULTS.md: every activation at the flagship's tensor size (100 x 256) and at
2^22 elements, float32 and bfloat16, forward+backward against PyTorch's native (or closest) op and the eager
composition; torch.compile and the compiled block ``act(x + b) * g + x`` (1024 x 4096) for the activations where
compilation is the question. Interleaved rounds, ratios with 95% intervals (see actlab/speed.py).

    python benchmarks/bench_kernels_cpu.py [OUT_DIR]      # about 15 minutes on 2 cores

Writes one JSON file per configuration and prints a markdown table per configuration.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch

from actlab.speed import bench_kernels, to_json

COMPILED = ["gelu", "swish", "mish", "swish(beta=1.5)", "swish(trainable=True)"]


def _table(results, compiled: bool) -> str:
    head = "| activation | baseline | fwd+bwd ms | vs native fwd | vs native fwd+bwd | vs eager |"
    rule = "|---|---|---|---|---|---|"
    if compiled:
        head += " compiled vs compiled | compiled block vs native block |"
        rule += "---|---|"
    rows = [head, rule]
    for r in results:
        row = (f"| {r.activation} | {r.baseline or '-'} | {r.fwdbwd_ms:.3f} | {r.vs_native_fwd or '-'} | "
               f"{r.vs_native or '-'} | {r.vs_eager} |")
        if compiled:
            row += f" {r.vs_compile} | {r.compiled_block_vs_native} |"
        rows.append(row)
    return "\n".join(rows)


def main(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    start = time.time()
    configs = [("float32", 100 * 256, None, False), ("float32", 1 << 22, None, False),
               ("bfloat16", 100 * 256, None, False), ("bfloat16", 1 << 22, None, False),
               ("float32", 1 << 22, COMPILED, True)]
    for dtype, size, names, compiled in configs:
        copy_gbps, results = bench_kernels(names, "cpu", dtype, size, compile=compiled, rounds=15,
                                           min_block_s=0.02)
        tag = f"cpu-{dtype}-{size}{'-compile' if compiled else ''}"
        (out_dir / f"{tag}.json").write_text(to_json(copy_gbps, results), encoding="utf-8")
        print(f"\n### {dtype}, {size:,} elements{' (torch.compile)' if compiled else ''}; copy {copy_gbps:.1f} GB/s "
              f"({time.time() - start:.0f} s so far)\n")
        print(_table(results, compiled))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/results")))
