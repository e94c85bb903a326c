"""Whether a tensor lives inside a transform, where fused aten paths (``out=`` writes, scalar reads) do not apply."""

from __future__ import annotations

import torch

_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_legacy_batched = torch._C._functorch.is_legacy_batchedtensor  # autograd's is_grads_batched / vectorize=True


def transformed(t: torch.Tensor) -> bool:
    """Whether ``t`` lives inside a torch.func transform or autograd's batched-gradient vmap."""
    return _functorch_wrapped(t) or _legacy_batched(t)
