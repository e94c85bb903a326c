"""Analysis of activations: plots, signal propagation at initialisation (Monte Carlo and mean field), the edge of
chaos, fixed points, and dead/saturated unit statistics."""

from actlab.analysis.meanfield import (
    EdgeOfChaos,
    FixedPoint,
    chi,
    correlation_map,
    edge_of_chaos,
    fixed_point,
    selu_jacobian,
    selu_moment_map,
    variance_map,
)
from actlab.analysis.plots import plot_activations
from actlab.analysis.propagation import Propagation, UnitStats, propagate, unit_stats

__all__ = [
    "EdgeOfChaos", "FixedPoint", "Propagation", "UnitStats", "chi", "correlation_map", "edge_of_chaos", "fixed_point",
    "plot_activations", "propagate", "selu_jacobian", "selu_moment_map", "unit_stats", "variance_map",
]
