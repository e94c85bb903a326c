"""Analysis of activations: plots (more to come: signal propagation, edge of chaos, dead units)."""

from actlab.analysis.plots import plot_activations

__all__ = ["plot_activations"]
