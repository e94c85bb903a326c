"""One site's statistics over one window of steps, accumulated on the tensors' device without a host sync.

Each observation (one call of the site on a sampled step) fills one row of a device buffer: the sum and the sum of
squares of its input and of its output (two reductions each: ``torch.var_mean`` measured 150 us on a 100 x 256
float32 tensor on a 2-core CPU, a sum and a dot product 10 us together; the variance is then E[x^2] - E[x]^2,
whose float32 rounding stays below 1e-5 relative while |mean| < 10 std, which activations' inputs keep to), how
many derivative values fell below the saturation threshold, and the norm of the gradient that came back to the
site's output (NaN until backward reaches it). A boolean per unit records whether
the unit was ever active (``|f'(x)| > dead_below`` for some example) in the window. Element counts are shapes, so
they are Python integers. Reading packs every number of a window into one tensor, so a read syncs once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SiteWindow", "WindowStats"]

# the columns of a row
IN_SUM, IN_SQUARES, OUT_SUM, OUT_SQUARES, SATURATED, GRAD = range(6)
_COLUMNS = 6


@dataclass(frozen=True)
class WindowStats:
    """A site's statistics over a window: ``dead`` is the fraction of units never active, ``saturated`` the
    fraction of derivative values below the threshold, ``grad_norm`` the mean over observations of the L2 norm of
    the gradient flowing back into the site's output (NaN where no backward reached it)."""

    observations: int
    units: int
    dead: float
    saturated: float
    in_mean: float
    in_std: float
    out_mean: float
    out_std: float
    grad_norm: float


class SiteWindow:
    def __init__(self) -> None:
        self.rows = 0
        self.buffer: torch.Tensor | None = None
        self.active: torch.Tensor | None = None  # bool per unit: active at least once in the window
        self.in_counts: list[int] = []
        self.out_counts: list[int] = []
        self.derivative_counts: list[int] = []
        self.units_changed = False

    def _row(self, like: torch.Tensor) -> int:
        if self.buffer is None:
            self.buffer = torch.full((16, _COLUMNS), math.nan, dtype=torch.float32, device=like.device)
        elif self.rows == len(self.buffer):
            grown = torch.full((2 * len(self.buffer), _COLUMNS), math.nan, dtype=torch.float32, device=like.device)
            grown[: self.rows].copy_(self.buffer)
            self.buffer = grown
        row = self.rows
        self.rows += 1
        self.in_counts.append(0)
        self.out_counts.append(0)
        self.derivative_counts.append(0)
        return row

    def observe_input(self, x: torch.Tensor, derivative: torch.Tensor | None, axis: int, saturation: float,
                      dead_below: float) -> int:
        """Record an input (and f' at it); returns the row the output and gradient go to."""
        row = self._row(x)
        assert self.buffer is not None
        self.buffer[row, IN_SUM:IN_SQUARES + 1].copy_(_sums(x))
        self.in_counts[row] = x.numel()
        if derivative is None or derivative.dim() == 0:
            return row
        magnitude = derivative.abs()
        others = [d for d in range(magnitude.dim()) if d != axis]
        ever = magnitude.amax(dim=others) > dead_below if others else magnitude > dead_below
        if self.active is None:
            self.active = ever
        elif self.active.shape == ever.shape:
            self.active.logical_or_(ever)
        else:  # the site's unit count changed (another input shape): dead units are not defined for it
            self.units_changed = True
        self.derivative_counts[row] = derivative.numel()
        self.buffer[row, SATURATED].copy_((magnitude < saturation).sum())
        return row

    def observe_output(self, row: int, y: torch.Tensor) -> None:
        assert self.buffer is not None
        self.out_counts[row] = y.numel()
        self.buffer[row, OUT_SUM:OUT_SQUARES + 1].copy_(_sums(y))

    def observe_gradient(self, row: int, grad: torch.Tensor) -> None:
        assert self.buffer is not None
        self.buffer[row, GRAD].copy_(torch.linalg.vector_norm(grad, dtype=torch.float32))

    def packed(self) -> torch.Tensor | None:
        """The window's numbers as one flat tensor (rows, then the dead fraction); None before any observation."""
        if self.buffer is None:
            return None
        dead = (~self.active).float().mean() if self.active is not None and not self.units_changed else \
            torch.tensor(math.nan, device=self.buffer.device)
        return torch.cat((self.buffer[: self.rows].reshape(-1), dead.reshape(1)))

    def unpack(self, values: np.ndarray) -> WindowStats:
        """The statistics from :meth:`packed`'s numbers (read to the host)."""
        rows = values[:-1].reshape(self.rows, _COLUMNS).astype(np.float64)
        units = 0 if self.active is None else int(self.active.numel())
        in_mean, in_std = _pooled(rows[:, IN_SUM], rows[:, IN_SQUARES], self.in_counts)
        out_mean, out_std = _pooled(rows[:, OUT_SUM], rows[:, OUT_SQUARES], self.out_counts)
        derivative_total = sum(self.derivative_counts)
        saturated = float(np.nansum(rows[:, SATURATED]) / derivative_total) if derivative_total else math.nan
        grads = rows[:, GRAD][np.isfinite(rows[:, GRAD])]
        return WindowStats(self.rows, units, float(values[-1]), saturated, in_mean, in_std, out_mean, out_std,
                           float(grads.mean()) if grads.size else math.nan)


def _sums(x: torch.Tensor) -> torch.Tensor:
    flat = (x if x.dtype in (torch.float32, torch.float64) else x.float()).reshape(-1)
    return torch.stack((flat.sum(), torch.dot(flat, flat)))


def _pooled(sums: np.ndarray, squares: np.ndarray, counts: list[int]) -> tuple[float, float]:
    """Mean and standard deviation of every observation together, from each one's sum and sum of squares."""
    n = np.asarray(counts, dtype=np.float64)
    keep = (n > 0) & np.isfinite(sums) & np.isfinite(squares)
    if not keep.any():
        return math.nan, math.nan
    total = n[keep].sum()
    mean = float(sums[keep].sum() / total)
    variance = float(squares[keep].sum() / total - mean * mean)
    return mean, math.sqrt(max(variance, 0.0))
