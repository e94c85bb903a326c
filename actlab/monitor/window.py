"""One site's statistics over one window of steps, accumulated on the tensors' device without a host sync.

Each observation (one call of the site on a sampled step) fills one row of a device buffer: the mean of its input
and of its output and their sums of squared deviations from that mean (a mean, a subtraction and a dot product:
``torch.var_mean`` measured 150 us on a 100 x 256 float32 tensor on a 2-core CPU, these three 15 us; centred, so a
saturated sigmoid's outputs near 0.99 keep their spread, which E[x^2] - E[x]^2 in float32 loses), how many
derivative values fell below the saturation threshold, and the norm of the gradient that came back to the site's
output. Observations pool with Chan's formula on the host. A non-finite input or gradient makes the window's
numbers NaN rather than being dropped: a NaN batch is news. A boolean per unit records whether
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
IN_MEAN, IN_M2, OUT_MEAN, OUT_M2, SATURATED, GRAD = range(6)
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
        self.gradient_rows: set[int] = set()  # rows backward reached (a NaN there is a NaN gradient, not "none")
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

    def observe_input(self, x: torch.Tensor, derivative: torch.Tensor | None, axis: int | None, saturation: float,
                      dead_below: float) -> int:
        """Record an input (and f' at it); returns the row the output and gradient go to."""
        row = self._row(x)
        assert self.buffer is not None
        self.buffer[row, IN_MEAN:IN_M2 + 1].copy_(_moments(x))
        self.in_counts[row] = x.numel()
        if derivative is None or derivative.dim() == 0:
            return row
        magnitude = derivative.abs()
        if axis is None:  # unit_dim does not fit this input's rank: no units to count
            self.units_changed = True
            axis = 0
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
        self.buffer[row, OUT_MEAN:OUT_M2 + 1].copy_(_moments(y))

    def observe_gradient(self, row: int, grad: torch.Tensor) -> None:
        assert self.buffer is not None
        self.gradient_rows.add(row)
        self.buffer[row, GRAD].copy_(torch.linalg.vector_norm(grad, dtype=torch.float32))

    def packed(self) -> torch.Tensor | None:
        """The window's numbers as one flat tensor (rows, then the dead fraction); None before any observation."""
        if self.buffer is None:
            return None
        dead = (~self.active).float().mean() if self.active is not None and not self.units_changed else \
            torch.full((), math.nan, device=self.buffer.device)
        return torch.cat((self.buffer[: self.rows].reshape(-1), dead.reshape(1)))

    def unpack(self, values: np.ndarray) -> WindowStats:
        """The statistics from :meth:`packed`'s numbers (read to the host)."""
        rows = values[:-1].reshape(self.rows, _COLUMNS).astype(np.float64)
        units = 0 if self.active is None else int(self.active.numel())
        in_mean, in_std = _pooled(rows[:, IN_MEAN], rows[:, IN_M2], self.in_counts)
        out_mean, out_std = _pooled(rows[:, OUT_MEAN], rows[:, OUT_M2], self.out_counts)
        derivative_total = sum(self.derivative_counts)
        counted = [r for r in range(self.rows) if self.derivative_counts[r]]
        saturated = float(rows[counted, SATURATED].sum() / derivative_total) if derivative_total else math.nan
        reached = sorted(self.gradient_rows)
        return WindowStats(self.rows, units, float(values[-1]), saturated, in_mean, in_std, out_mean, out_std,
                           float(rows[reached, GRAD].mean()) if reached else math.nan)


def _moments(x: torch.Tensor) -> torch.Tensor:
    """(mean, sum of squared deviations from it) of every element, in float32 or wider."""
    flat = (x if x.dtype in (torch.float32, torch.float64) else x.float()).reshape(-1)
    mean = flat.mean()
    centred = flat - mean
    return torch.stack((mean, torch.dot(centred, centred)))


def _pooled(means: np.ndarray, m2: np.ndarray, counts: list[int]) -> tuple[float, float]:
    """Mean and standard deviation of every observation together (Chan et al.'s pairwise combination), from each
    one's size, mean and sum of squared deviations; NaN when any observation was not finite."""
    n = np.asarray(counts, dtype=np.float64)
    keep = n > 0
    if not keep.any():
        return math.nan, math.nan
    n, means, m2 = n[keep], means[keep], m2[keep]
    total = n.sum()
    mean = float((n * means).sum() / total)
    variance = float((m2.sum() + (n * (means - mean) ** 2).sum()) / total)
    return mean, math.sqrt(variance) if variance >= 0 else math.nan
