"""Kernel benchmark: ``actlab bench kernels``.

Per activation: median forward and forward+backward time of actlab's implementation; achieved bandwidth (forward
2N element-bytes, backward 3N; gated kinds 3N and 5N with N the output size) and that as a fraction of a
device-to-device copy measured in the same run; speedup against PyTorch's native op where one exists, against
the eager composition of the same expression (the spec's torch_forward under autograd), and optionally against
torch.compile of it; and the bytes backward keeps alive (saved tensors).

CPU timings use torch.utils.benchmark (median of blocked runs); CUDA timings use CUDA events after warm-up, median
of many runs, rotating among input buffers larger than L2 so the cache does not serve them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from actlab import catalog
from actlab.kernels.dispatch import run

NATIVE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "leaky_relu": F.leaky_relu, "elu": F.elu,
    "celu": F.celu, "selu": F.selu, "gelu": F.gelu, "swish": F.silu, "mish": F.mish, "softplus": F.softplus,
    "relu6": F.relu6, "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish, "softsign": F.softsign,
    "log_sigmoid": F.logsigmoid, "glu": lambda x: F.glu(x, dim=-1), "threshold_relu": lambda x: F.threshold(x, 1.0, 0.0),
}


@dataclass
class KernelResult:
    activation: str
    kind: str
    device: str
    dtype: str
    elements: int
    fwd_ms: float
    fwdbwd_ms: float
    fwd_gbps: float
    fwdbwd_gbps: float
    fwd_fraction_of_copy: float
    fwdbwd_fraction_of_copy: float
    speedup_vs_native: float | None
    speedup_vs_eager: float | None
    speedup_vs_compile: float | None
    saved_bytes: int
    eager_saved_bytes: int | None


def _timer(fn: Callable[[], Any], device: str, min_run_time: float) -> float:
    """Median seconds per call."""
    if device == "cuda":
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(max(20, int(min_run_time * 200))):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)
    from torch.utils.benchmark import Timer

    fn()
    return Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time).median


def _saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.data_ptr()] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(seen.values())


def _inputs(spec, size: int, device: str, dtype: torch.dtype, copies: int) -> list[torch.Tensor]:
    shape = (max(size // 256, 1), 256) if spec.kind == "gated" else (size,)
    return [torch.randn(shape, device=device, dtype=dtype) * 3 for _ in range(copies)]


def bench_kernels(names: list[str] | None = None, device: str = "cpu", dtype: str = "float32", size: int = 1 << 22,
                  compile: bool = False, min_run_time: float = 0.3) -> tuple[float, list[KernelResult]]:
    """(copy GB/s, one result per activation). Every activation at its default parameters."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device {device!r}: expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                   "float64": torch.float64}.get(dtype)
    if torch_dtype is None:
        raise ValueError(f"--dtype {dtype!r}: expected float32, bfloat16, float16 or float64")
    if not isinstance(size, int) or size < 256:
        raise ValueError(f"--size {size!r}: expected an integer >= 256")
    names = names or [n for n in catalog.names() if catalog.spec(n).kind in ("elementwise", "gated")]
    specs = [catalog.resolve(n) for n in names]
    # rotate among buffers that together exceed the L2/L3 cache on CUDA; on CPU the sizes used exceed it already
    copies = 4 if device == "cuda" else 1
    elem = torch.tensor([], dtype=torch_dtype).element_size()
    xs = [torch.randn(size, device=device, dtype=torch_dtype) for _ in range(copies)]
    out = torch.empty_like(xs[0])
    it = iter(range(1 << 62))
    copy_s = _timer(lambda: out.copy_(xs[next(it) % copies]), device, min_run_time)
    copy_gbps = 2 * size * elem / copy_s / 1e9
    results = []
    for r in specs:
        spec, params = r.spec, r.params
        inputs = _inputs(spec, size, device, torch_dtype, copies)
        n_out = inputs[0].numel() // (2 if spec.kind == "gated" else 1)
        fwd_bytes = (3 if spec.kind == "gated" else 2) * n_out * elem
        bwd_bytes = (5 if spec.kind == "gated" else 3) * n_out * elem
        actlab_fn = lambda t, _s=spec, _p=params: run(_s, t, _p)  # noqa: E731
        cdt = torch.float32 if torch_dtype in (torch.float16, torch.bfloat16) else torch_dtype
        eager_fn = lambda t, _s=spec, _p=params: _s.torch_forward(t.to(cdt), **_p).to(t.dtype)  # noqa: E731

        def fwd(fn):
            k = iter(range(1 << 62))
            return lambda: fn(inputs[next(k) % copies])

        grads = [inp.requires_grad_() for inp in inputs]
        g = torch.ones(inputs[0].shape[:-1] + (inputs[0].shape[-1] // (2 if spec.kind == "gated" else 1),),
                       device=device, dtype=torch_dtype)

        def fwdbwd(fn):
            k = iter(range(1 << 62))

            def step():
                x = grads[next(k) % copies]
                x.grad = None
                fn(x).backward(g)
            return step

        with torch.no_grad():
            t_fwd = _timer(fwd(actlab_fn), device, min_run_time)
        t_fb = _timer(fwdbwd(actlab_fn), device, min_run_time)
        # swish at any beta is timed against F.silu: the reference point for its cost.
        native = NATIVE.get(spec.name)
        t_native = _timer(fwdbwd(native), device, min_run_time) if native is not None else None
        t_eager = _timer(fwdbwd(eager_fn), device, min_run_time)
        t_compile = None
        if compile:
            compiled = torch.compile(eager_fn, dynamic=False)
            t_compile = _timer(fwdbwd(compiled), device, min_run_time)
        results.append(KernelResult(
            activation=r.text, kind=spec.kind, device=device, dtype=dtype, elements=inputs[0].numel(),
            fwd_ms=1e3 * t_fwd, fwdbwd_ms=1e3 * t_fb, fwd_gbps=fwd_bytes / t_fwd / 1e9,
            fwdbwd_gbps=(fwd_bytes + bwd_bytes) / t_fb / 1e9, fwd_fraction_of_copy=fwd_bytes / t_fwd / 1e9 / copy_gbps,
            fwdbwd_fraction_of_copy=(fwd_bytes + bwd_bytes) / t_fb / 1e9 / copy_gbps,
            speedup_vs_native=(t_native / t_fb) if t_native else None, speedup_vs_eager=t_eager / t_fb,
            speedup_vs_compile=(t_compile / t_fb) if t_compile else None,
            saved_bytes=_saved_bytes(actlab_fn, grads[0]), eager_saved_bytes=_saved_bytes(eager_fn, grads[0]),
        ))
    return copy_gbps, results


def to_json(copy_gbps: float, results: list[KernelResult]) -> str:
    import platform

    return json.dumps({"copy_gbps": copy_gbps, "machine": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "results": [asdict(r) for r in results]}, indent=2)
