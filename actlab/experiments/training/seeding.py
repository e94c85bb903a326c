"""Explicit randomness: every seed derives from (base seed, task, seed index, purpose).

Activations compared on the same seed index get the same initial weights (where shapes agree) and the same data
order, because neither the activation nor the learning rate enters the derivation.
"""

from __future__ import annotations

import hashlib


def derive_seed(base_seed: int, task: str, seed_index: int, purpose: str) -> int:
    """A 63-bit seed from its ingredients (stable across Python versions and machines)."""
    text = f"actlab|{base_seed}|{task}|{seed_index}|{purpose}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)
