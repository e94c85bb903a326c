"""Properties of an activation, measured numerically from its float64 reference (never copied from a paper).

The grid is dense near the origin (spacing 5e-4 on [-60, 60]) and log-spaced out to +-1e8, plus +-inf, so
features far from 0 (swish's dip at -1.28/beta for small beta) are still seen.

- monotonic: non-decreasing on the grid (within rounding);
- continuous / smooth: no jump in f / in f' that survives grid refinement (C0 / C1);
- bounded_below/above and output_range: the infimum and supremum over the grid and the limits at +-inf;
- value_at_0, slope_at_0 (None where f has a kink at 0; the one-sided slopes are given too);
- gain = 1 / sqrt(E[f(z)^2]), mean = E[f(z)], second_moment = E[f(z)^2] for z ~ N(0, 1), by the trapezoid
  rule on [-12, 12] (error below 1e-9, kinks included): the variance-preserving weight gain (sqrt 2 for relu).

Gated kinds report the properties of their gate; the normalizing kind reports its range only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

_H = 5e-4
_DENSE = np.linspace(-60.0, 60.0, int(round(120.0 / _H)) + 1)
_FAR = np.logspace(np.log10(60.0), 8.0, 2000)[1:]
_GRID = np.concatenate([-_FAR[::-1], _DENSE, _FAR])
_Z = np.linspace(-12.0, 12.0, 480_001)
_PDF = np.exp(-0.5 * _Z**2) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Properties:
    of: str  # "function", or "gate" for gated kinds, "distribution" for softmax
    monotonic: bool | None
    continuous: bool | None
    smooth: bool | None
    bounded_below: bool
    bounded_above: bool
    output_range: tuple[float, float]
    value_at_0: float | None
    slope_at_0: float | None
    slope_at_0_left: float | None
    slope_at_0_right: float | None
    gain: float | None
    mean: float | None
    second_moment: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def measure(spec: Any, **params: Any) -> Properties:  # an ActivationSpec (spec.py imports this module)
    """Measure the properties of ``spec`` at ``params`` (defaults filled in and validated)."""
    p = spec.resolve_params(params)
    if spec.kind == "normalizing":
        rng = np.random.default_rng(0)
        y = spec.reference(rng.normal(scale=10.0, size=(4096, 8)), **p)
        # A sample's extremes (softmax's 1.4e-28) are not the range: the spec's claim is, where it makes one
        claimed = spec.claims.get("output_range")
        if claimed is not None and not (claimed[0] <= float(y.min()) and float(y.max()) <= claimed[1]):
            raise ValueError(f"{spec.name}: claimed output_range {claimed} but a sample reaches "
                             f"[{float(y.min())!r}, {float(y.max())!r}]")
        output_range = tuple(claimed) if claimed is not None else (float(y.min()), float(y.max()))
        return Properties("distribution", None, True, True, bool(np.isfinite(output_range[0])),
                          bool(np.isfinite(output_range[1])), output_range, None, None, None, None, None, None, None)
    if spec.kind == "gated":
        gate = spec.gate
        gate_params = {k: v for k, v in p.items() if k in gate.params}
        base = measure(gate, **gate_params)
        return Properties(**{**base.as_dict(), "of": "gate"})
    return _measure_elementwise(spec, p)


def _measure_elementwise(spec: Any, p: dict[str, Any]) -> Properties:
    f = lambda x: np.asarray(spec.reference(np.asarray(x, dtype=np.float64), **p), dtype=np.float64)  # noqa: E731
    df = lambda x: np.asarray(spec.derivative(np.asarray(x, dtype=np.float64), **p), dtype=np.float64)  # noqa: E731
    with np.errstate(all="ignore"):
        y = f(_GRID)
        limits = f(np.array([-np.inf, np.inf]))
        finite = y[np.isfinite(y)]
        scale = 1.0 + np.abs(y[:-1])
        steps = np.diff(y)
        steps[np.isnan(steps) & (y[:-1] == y[1:])] = 0.0  # inf followed by inf (exp past 709) is no decrease
        monotonic = bool(np.all(steps >= -1e-12 * scale))
        continuous = not _has_jump(f, df, _DENSE)
        smooth = continuous and not _has_jump(df, None, _DENSE)
        # + 0.0 turns a -0.0 bound (log_sigmoid's sup) into 0
        known = limits[~np.isnan(limits)]  # an oscillation has no limit: NaN
        lo = float(min(finite.min(initial=np.inf), known.min(initial=np.inf))) + 0.0
        hi = float(max(finite.max(initial=-np.inf), known.max(initial=-np.inf))) + 0.0
        zero = float(f(np.array([0.0]))[0])
        h = 1e-6
        fm, fp = f(np.array([-h, h]))
        left, right = (zero - fm) / h, (fp - zero) / h
        # One-sided differences carry O(h) curvature error; agreement within 1e-4 means no kink at 0.
        slope = 0.5 * (left + right) if abs(left - right) < 1e-4 else None
        fz = f(_Z)
        m1 = float(np.trapezoid(fz * _PDF, _Z))
        m2 = float(np.trapezoid(fz * fz * _PDF, _Z))
    return Properties(
        of="function",
        monotonic=monotonic,
        continuous=continuous,
        smooth=smooth,
        bounded_below=bool(np.isfinite(lo)),
        bounded_above=bool(np.isfinite(hi)),
        output_range=(lo, hi),
        value_at_0=zero,
        slope_at_0=None if slope is None else _clean(slope),
        slope_at_0_left=_clean(left),
        slope_at_0_right=_clean(right),
        gain=1.0 / math.sqrt(m2) if m2 > 0 else None,
        mean=m1,
        second_moment=m2,
    )


def _clean(v: float) -> float:
    """Round away finite-difference noise (the slopes carry ~1e-6 error)."""
    return float(round(v, 5))


def _has_jump(g: Callable[[np.ndarray], np.ndarray], dg: Callable[[np.ndarray], np.ndarray] | None,
              grid: np.ndarray) -> bool:
    """True when g jumps somewhere on the grid: a step between neighbours that does not shrink when the
    cell is refined (a smooth function's steps shrink in proportion to the spacing)."""
    v = g(grid)
    steps = np.abs(np.diff(v))
    steps[~np.isfinite(steps)] = 0.0
    tolerance = 1e-6 * (1.0 + np.abs(v[:-1]))
    if dg is not None:  # g's own derivative bounds a continuous step by h * |g'|
        slopes = np.maximum(np.abs(dg(grid[:-1])), np.abs(dg(grid[1:])))
        tolerance = tolerance + 4.0 * (grid[1] - grid[0]) * slopes
    candidates = np.argsort(steps - tolerance)[-8:]
    for i in candidates:
        if steps[i] <= tolerance[i]:
            continue
        a, b = grid[i], grid[i + 1]
        jump = steps[i]
        for _ in range(3):  # refine the cell holding the largest step, three times by 64
            fine = np.linspace(a, b, 65)
            w = g(fine)
            s = np.abs(np.diff(w))
            k = int(np.argmax(s))
            a, b = fine[k], fine[k + 1]
            if s[k] < 0.5 * jump:  # shrinks with the spacing: no jump here
                break
            jump = s[k]
        else:
            if jump > 1e-6 * (1.0 + abs(float(g(np.array([a]))[0]))):
                return True
    return False
