"""Comparisons of activations: tasks (data + model + recipe), the seed-vectorized trainer, executors, the SQLite
results store and the statistics. ``actlab.compare`` and ``actlab compare`` are the entry points."""
