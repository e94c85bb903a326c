"""Kernel benchmark: ``actlab bench kernels``.

Per activation (an nn.Module from :func:`actlab.get`, as users call it), forward and forward+backward, against:
PyTorch's native op (or, for activations PyTorch lacks, its closest op: F.silu for swish at any beta, F.glu for the
GLU variants), the eager composition of the same expression (the spec's torch_forward under autograd), and
optionally torch.compile (compiled actlab module against the compiled native or composition), plus the compiled
block ``act(x + b) * g + x`` where inductor must fuse the activation with its neighbours.

Method: interleaved rounds. Each round times every candidate once, in a fresh random order, over a block of calls
long enough for the clock; a ratio is formed within the round, so machine noise that spans rounds cancels. The
figure is the median ratio over rounds with a 95% bootstrap interval of that median. CUDA blocks are timed with
events after warm-up, rotating among inputs larger than L2. Ratios are actlab's time over the other's: below 1 is
faster. Bandwidth: forward moves 2N element-bytes, backward 3N (gated: 3N and 5N, N the output size), reported as a
fraction of a device copy measured in the same run.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from actlab import catalog
from actlab.catalog.registry import resolve_trainable
from actlab.kernels.implementations import implementation
from actlab.timing import Ratio, Step, interleaved, ratio


@dataclass
class KernelResult:
    activation: str
    kind: str
    device: str
    dtype: str
    elements: int
    baseline: str | None
    fwd_ms: float
    fwdbwd_ms: float
    fwd_fraction_of_copy: float
    fwdbwd_fraction_of_copy: float
    vs_native_fwd: Ratio | None
    vs_native: Ratio | None
    vs_eager: Ratio
    vs_compile: Ratio | None
    compiled_block_vs_native: Ratio | None
    saved_bytes: int
    eager_saved_bytes: int


def _saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.data_ptr()] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(seen.values())


def _dtype(name: str) -> torch.dtype:
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
             "float64": torch.float64}.get(name)
    if dtype is None:
        raise ValueError(f"dtype = {name!r}: expected float32, bfloat16, float16 or float64")
    return dtype


class _Call(torch.nn.Module):
    """A function as a module, so every candidate pays the same nn.Module call overhead as actlab's modules (and as
    nn.SiLU, nn.GELU...)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _baseline(spec, params) -> tuple[str | None, Callable[[torch.Tensor], torch.Tensor] | None]:
    if spec.native is not None and spec.native_covers(**params):
        return "native", _Call(lambda t: spec.native(t, **params))
    closest = implementation(spec).closest
    if closest is not None:
        return "closest native", _Call(lambda t: closest(t, **params))
    return None, None


def bench_kernels(names: list[str] | None = None, device: str = "cpu", dtype: str = "float32", size: int = 1 << 22,
                  compile: bool = False, rounds: int = 15, min_block_s: float = 0.02
                  ) -> tuple[float, list[KernelResult]]:
    """(copy GB/s, one result per activation)."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device = {device!r}: expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device = 'cuda': no CUDA device is available here")
    torch_dtype = _dtype(dtype)
    if not isinstance(size, int) or size < 256:
        raise ValueError(f"size = {size!r}: expected an integer >= 256")
    if not isinstance(rounds, int) or rounds < 3:
        raise ValueError(f"rounds = {rounds!r}: expected an integer >= 3")
    names = names or [n for n in catalog.names() if catalog.spec(n).kind in ("elementwise", "gated")]
    resolved = [resolve_trainable(n) for n in names]
    copies = 4 if device == "cuda" else 1  # rotate among buffers that together exceed the GPU's L2
    elem = torch.tensor([], dtype=torch_dtype).element_size()
    src = [torch.randn(size, device=device, dtype=torch_dtype) for _ in range(copies)]
    dst = torch.empty_like(src[0])
    k = iter(range(1 << 62))
    copy_s = statistics.median(interleaved({"copy": lambda: dst.copy_(src[next(k) % copies])}, device, 5,
                                           min_block_s)["copy"])
    copy_gbps = 2 * size * elem / copy_s / 1e9
    results = []
    for r, trainable in resolved:
        results.append(_bench_one(r, trainable, device, torch_dtype, dtype, size, copies, compile, rounds, min_block_s,
                                  copy_gbps, elem))
    return copy_gbps, results


def _bench_one(r, trainable, device, torch_dtype, dtype, size, copies, compile, rounds, min_block_s, copy_gbps, elem):
    from actlab.nn import get

    spec, params = r.spec, r.params
    gated = spec.kind == "gated"
    shape = (max(size // 512, 1), 512) if gated else (max(size // 256, 1), 256)
    module = get(spec, trainable=trainable, **params).to(device).eval()  # eval: rrelu's deterministic slope
    values = module.parameter_values()
    cdt = torch.float32 if torch_dtype in (torch.float16, torch.bfloat16) else torch_dtype
    eager = _Call(lambda t: spec.torch_forward(t.to(cdt), **values).to(t.dtype))
    baseline_name, baseline = _baseline(spec, values)
    inputs = [(torch.randn(shape, device=device, dtype=torch_dtype) * 3).requires_grad_() for _ in range(copies)]
    out_shape = (*shape[:-1], shape[-1] // 2) if gated else shape
    g = torch.ones(out_shape, device=device, dtype=torch_dtype)

    def fwd(fn) -> Step:
        k = iter(range(1 << 62))

        def step():
            with torch.no_grad():
                fn(inputs[next(k) % copies])
        return step

    def fwdbwd(fn) -> Step:
        k = iter(range(1 << 62))

        def step():
            x = inputs[next(k) % copies]
            x.grad = None
            fn(x).backward(g)
        return step

    steps = {"actlab_fwd": fwd(module), "actlab": fwdbwd(module), "eager": fwdbwd(eager)}
    if baseline is not None:
        steps["native_fwd"] = fwd(baseline)
        steps["native"] = fwdbwd(baseline)
    if compile:
        torch._dynamo.reset()
        steps["actlab_compiled"] = fwdbwd(torch.compile(module))
        steps["other_compiled"] = fwdbwd(torch.compile(baseline if baseline_name == "native" else eager))
        steps["block_actlab"], steps["block_native"] = _blocks(module, baseline if baseline_name == "native" else eager,
                                                              inputs[0], g)
    times = interleaved(steps, device, rounds, min_block_s)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    n_out = int(np.prod(out_shape))
    fwd_bytes = (3 if gated else 2) * n_out * elem
    bwd_bytes = (5 if gated else 3) * n_out * elem
    return KernelResult(
        activation=r.text + (" trainable" if trainable else ""), kind=spec.kind, device=device, dtype=dtype,
        elements=int(np.prod(shape)),
        baseline=baseline_name, fwd_ms=1e3 * med["actlab_fwd"], fwdbwd_ms=1e3 * med["actlab"],
        fwd_fraction_of_copy=fwd_bytes / med["actlab_fwd"] / 1e9 / copy_gbps,
        fwdbwd_fraction_of_copy=(fwd_bytes + bwd_bytes) / med["actlab"] / 1e9 / copy_gbps,
        vs_native_fwd=ratio(times["actlab_fwd"], times["native_fwd"]) if baseline else None,
        vs_native=ratio(times["actlab"], times["native"]) if baseline else None,
        vs_eager=ratio(times["actlab"], times["eager"]),
        vs_compile=ratio(times["actlab_compiled"], times["other_compiled"]) if compile else None,
        compiled_block_vs_native=ratio(times["block_actlab"], times["block_native"]) if compile else None,
        saved_bytes=_saved_bytes(module, inputs[0]), eager_saved_bytes=_saved_bytes(eager, inputs[0]),
    )


def _blocks(module, other, x, g) -> tuple[Step, Step]:
    """The compiled ``act(x + b) * g + x`` with actlab's module and with the other implementation. Gated kinds
    halve the width, so their block adds the value half back instead of x."""
    b = torch.randn(x.shape[-1], device=x.device, dtype=x.dtype)
    scale = torch.randn(g.shape[-1], device=x.device, dtype=x.dtype)

    def block(act):
        def fn(t):
            y = act(t + b) * scale
            return y + t[..., : y.shape[-1]]
        return torch.compile(fn)

    ours, theirs = block(module), block(other)

    def step(fn):
        def run():
            x.grad = None
            fn(x).backward(g)
        return run

    return step(ours), step(theirs)


def to_json(copy_gbps: float, results: list[KernelResult]) -> str:
    import platform

    return json.dumps({"copy_gbps": copy_gbps, "machine": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "method": "interleaved rounds; median ratio actlab / other with a 95% bootstrap interval",
                       "results": [asdict(r) for r in results]}, indent=2)
