"""Which implementation runs for an activation call, and the implementations themselves.

``run`` is the one place that decides: a PyTorch native op when the spec names one with identical semantics
(and no parameter is a tensor that needs its own gradient), otherwise actlab's autograd Function built from
the spec, which computes half types in float32 and saves only the input (plus parameter tensors) for backward.
"""

from actlab.kernels.dispatch import compute_dtype, run

__all__ = ["compute_dtype", "run"]
