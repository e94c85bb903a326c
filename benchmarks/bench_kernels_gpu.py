"""The prepared GPU kernel benchmark (one H100/H200, under 8 minutes): every activation at 2^24 and 2^26 elements,
float32 and bfloat16, forward and forward+backward, against copy bandwidth, PyTorch's native (or closest) op and
the eager composition; torch.compile and the compiled block for the activations where compilation is the question
(at 2^26 only, to fit the time). Interleaved rounds, ratios with 95% intervals (see actlab/speed.py).

    python benchmarks/bench_kernels_gpu.py [OUT_DIR]

Writes one JSON file per (dtype, size) and prints a table per file; exits 2 without a CUDA device.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from actlab.speed import bench_kernels, to_json

COMPILED = ["gelu", "swish", "mish", "swish(beta=1.5)", "swish(trainable=True)", "swiglu", "geglu", "squared_relu"]


def main(out_dir: Path) -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU figures stay pending", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    card = torch.cuda.get_device_name()
    start = time.time()
    for dtype in ("float32", "bfloat16"):
        for size in (1 << 24, 1 << 26):
            runs = [(None, False)] + ([(COMPILED, True)] if size == 1 << 26 else [])
            for names, compiled in runs:
                copy_gbps, results = bench_kernels(names, "cuda", dtype, size, compile=compiled, rounds=7,
                                                   min_block_s=0.01)
                tag = f"{dtype}-{size}{'-compile' if compiled else ''}"
                (out_dir / f"gpu-{tag}.json").write_text(to_json(copy_gbps, results), encoding="utf-8")
                print(f"\n{card} {tag}: copy {copy_gbps:.0f} GB/s ({time.time() - start:.0f} s so far)")
                for r in results:
                    print(f"  {r.activation:24s} fwd {r.fwd_ms:7.3f} ms  fwd+bwd {r.fwdbwd_ms:7.3f} ms "
                          f"{100 * r.fwdbwd_fraction_of_copy:4.0f}% copy  native {r.vs_native}  eager {r.vs_eager}"
                          + (f"  compile {r.vs_compile}  block {r.compiled_block_vs_native}" if compiled else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/results")))
