"""Training: the seed-vectorized trainer, the optimizer step, seed derivation, and the group worker."""
