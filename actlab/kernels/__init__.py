"""Which implementation runs for an activation call, and the implementations themselves.

- :mod:`~actlab.kernels.dispatch`: ``run``, the one place that decides (native op, traced expression, autograd
  Function);
- :mod:`~actlab.kernels.function`: the generic autograd Function built from a spec (names no activation);
- :mod:`~actlab.kernels.implementations`: the per-activation fast paths and Triton calls, one entry per built-in;
- :mod:`~actlab.kernels.triton_kernels` / :mod:`~actlab.kernels.triton_math`: the CUDA kernels (imported lazily);
"""

from actlab.kernels.dispatch import compute_dtype, eager_call, learned_call, native_call, run

__all__ = ["compute_dtype", "eager_call", "learned_call", "native_call", "run"]
