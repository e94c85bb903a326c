"""actlab's compiled lean paths (``lean_ops.cpp``): C++ autograd nodes for the eager CPU paths of the activations
whose Python ``autograd.Function`` alone costs more than the speed bound allows at small tensor sizes (swish at any
beta, a trained beta, squared ReLU, hardsigmoid, softsign, SwiGLU, GEGLU). For contiguous float32 and half-type
tensors they run fused loops, one pass forward and one backward, with aten's vector math, on every thread: within
the same numerics policy as the Python paths, not their bits (a comparison's trial key records which ran). float64
and strided tensors make the Python paths' aten calls, bit for bit.

They are built on request, for the installed torch, with its C++ toolchain (a C++ compiler and ninja; about a
minute on two cores): ``actlab build-ext`` or :func:`build`. Without a build, or with ``ACTLAB_COMPILED=0``,
actlab runs its Python paths. The build lives in ``$ACTLAB_COMPILED_DIR``, else
``~/.cache/actlab/compiled`` (``$XDG_CACHE_HOME`` respected), under a name made from the source, the torch version
and the Python version, so a new torch or a changed source is never matched with an old build.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

SOURCE = Path(__file__).with_name("lean_ops.cpp")
_DISABLE = "ACTLAB_COMPILED"


def vector_flags() -> list[str]:
    """The compiler flags of the fused loops' vector width: the one aten's own kernels run at on this CPU. AVX-512
    where torch dispatches to it (16 lanes: built for AVX2 there, the loops ran 8 lanes against aten's 16 and fell
    behind the native ops), AVX2 where the CPU has that, else aten's portable vector type, which the compiler lowers
    as it can."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        return []
    if os.name == "nt":
        if capability == "AVX512":
            return ["/arch:AVX512", "/DCPU_CAPABILITY=AVX512", "/DCPU_CAPABILITY_AVX512"]
        return ["/arch:AVX2", "/DCPU_CAPABILITY=AVX2", "/DCPU_CAPABILITY_AVX2"]
    if capability == "AVX512":  # the flags torch's own AVX-512 kernels are built with
        return ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX512",
                "-DCPU_CAPABILITY_AVX512"]
    return ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]


def parallel_flags() -> list[str]:
    """OpenMP for aten's parallel_for, whose loop over threads is written in its headers: torch's Linux builds use
    it, and the extension then shares the libgomp torch loaded (the same soname). Elsewhere the loops run on one
    thread."""
    return ["-fopenmp"] if sys.platform.startswith("linux") and torch.backends.openmp.is_available() else []


def module_name() -> str:
    """The extension's module name: the source's hash, the torch version, the Python version and the compiler flags
    in one key."""
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(f"{torch.__version__}|{sys.implementation.cache_tag}|{sysconfig.get_platform()}|"
               f"{' '.join(vector_flags() + parallel_flags())}".encode())
    return f"actlab_lean_{key.hexdigest()[:16]}"


def build_directory() -> Path:
    root = os.environ.get("ACTLAB_COMPILED_DIR")
    if root:
        return Path(root) / module_name()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "actlab" / "compiled" / module_name()


def _library_path() -> Path:
    suffix = ".pyd" if os.name == "nt" else ".so"  # what torch.utils.cpp_extension names its library
    return build_directory() / f"{module_name()}{suffix}"


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def load() -> ModuleType | None:
    """The built extension, or None where none is built for this source, torch and Python, or where
    ``ACTLAB_COMPILED=0``. A build that fails to load (a torch changed in place) counts as none."""
    if os.environ.get(_DISABLE, "1") == "0":
        return None
    path = _library_path()
    if not path.is_file():
        return None
    try:
        return _import(path)
    except ImportError:
        return None


def build(verbose: bool = False) -> Path:
    """Compile the extension for the installed torch (or find it built) and return the library's path. Raises
    RuntimeError, with the compiler's message, where the toolchain is missing or the build fails."""
    from torch.utils import cpp_extension

    directory = build_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        cpp_extension.load(module_name(), sources=[str(SOURCE)], build_directory=str(directory),
                           extra_cflags=["-O3", *vector_flags(), *parallel_flags()], extra_ldflags=parallel_flags(),
                           verbose=verbose)
    except (OSError, ImportError, subprocess.SubprocessError) as exc:  # the toolchain's own errors
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from exc
    load.cache_clear()
    return _library_path()


def lean_op(name: str, fallback: Callable[..., Any]) -> Callable[..., torch.Tensor] | None:
    """The compiled op ``name`` (``op(x, *parameter values)``), or None where none is built. ``fallback(name, x,
    grad, params, needs_x, needs_params) -> (grad_x, *param grads)`` runs the backwards the op leaves to Python
    (double backward, batched gradients)."""
    module = load()
    if module is None:
        return None
    module.set_fallback(fallback)
    return getattr(module, name)
