"""Whether a tensor lives inside a transform, where fused aten paths (``out=`` writes, scalar reads) do not apply.

PyTorch has no public query for this, so these read private functorch functions. A release that drops one gets a
conservative stand-in instead of an ImportError: every tensor then counts as transformed, and the spec's torch
expressions run, which are correct everywhere (only the fused eager paths are skipped).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _private(owner: object, name: str, stand_in: Callable[..., bool]) -> Callable[..., bool]:
    found = getattr(owner, name, None)
    return found if callable(found) else stand_in


_functorch = getattr(torch._C, "_functorch", None)
_functorch_wrapped = _private(_functorch, "is_functorch_wrapped_tensor", lambda t: True)
_legacy_batched = _private(_functorch, "is_legacy_batchedtensor", lambda t: True)  # is_grads_batched, vectorize=True
transforms_active = _private(torch._C, "_are_functorch_transforms_active", lambda: True)


def transformed(t: torch.Tensor) -> bool:
    """Whether ``t`` lives inside a torch.func transform or autograd's batched-gradient vmap."""
    return _functorch_wrapped(t) or _legacy_batched(t)
