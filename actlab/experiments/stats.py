"""Statistics over seeds, with scipy.stats: BCa bootstrap intervals, paired differences, Wilcoxon signed-rank tests
with Holm's correction across pairs, and the probability of improvement (Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice").

Verdicts are conservative: a difference is reported only when its 95% interval excludes 0 *and* the
Holm-corrected Wilcoxon p is below 0.05; otherwise "no significant difference".
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
MIN_SEEDS = 5
N_RESAMPLES = 9999


@dataclass(frozen=True)
class Summary:
    activation: str
    n: int
    mean: float
    ci_low: float
    ci_high: float
    std: float


@dataclass(frozen=True)
class Pairwise:
    a: str
    b: str
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    prob_improvement: float  # P(a > b) over seeds (ties count 1/2)

    @property
    def significant(self) -> bool:
        return (self.ci_low > 0 or self.ci_high < 0) and self.p_holm < ALPHA

    def flipped(self) -> "Pairwise":
        """The same comparison seen from b's side."""
        return Pairwise(self.b, self.a, self.n, -self.mean_diff, -self.ci_high, -self.ci_low, self.p_value,
                        self.p_holm, 1.0 - self.prob_improvement)

    def verdict(self, metric: str = "accuracy", scale: float = 100.0, unit: str = " points") -> str:
        """One honest sentence; a significant difference is phrased from the winner's side."""
        if self.significant and self.mean_diff < 0:
            return self.flipped().verdict(metric, scale, unit)
        d = f"{self.mean_diff * scale:+.2f}{unit} [{self.ci_low * scale:+.2f}, {self.ci_high * scale:+.2f}]"
        tail = f"p(Holm) = {self.p_holm:.3g}, P({self.a} > {self.b}) = {self.prob_improvement:.2f}"
        if self.significant:
            return f"{self.a} beats {self.b} on {metric} by {d}; {tail}"
        reason = "the 95% interval covers 0" if self.ci_low <= 0 <= self.ci_high else \
            "the corrected test is not significant"
        return f"{self.a} vs {self.b}: no significant difference ({reason}): {d}; {tail}"


def bca_interval(values: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """95% BCa bootstrap interval of the mean. Degenerate samples (n < 2, or all equal) give (mean, mean)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2 or np.ptp(x) == 0:
        return float(x.mean()), float(x.mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa warns on tiny or highly discrete samples; it still returns an interval
        res = stats.bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES, method="BCa",
                              random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # BCa can fail on very small samples: fall back to percentile
        res = stats.bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES,
                              method="percentile", random_state=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return lo, hi


def summarize(scores: Mapping[str, Mapping[int, float]]) -> list[Summary]:
    """Per activation: mean and BCa interval over seeds. ``scores[activation][seed_index] = value``."""
    out = []
    for act, by_seed in scores.items():
        x = np.asarray(list(by_seed.values()), dtype=np.float64)
        lo, hi = bca_interval(x)
        out.append(Summary(act, len(x), float(x.mean()) if len(x) else math.nan, lo, hi,
                           float(x.std(ddof=1)) if len(x) > 1 else 0.0))
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate); not in scipy.stats."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    m = len(p)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def pairwise(scores: Mapping[str, Mapping[int, float]]) -> list[Pairwise]:
    """Every pair, paired by seed index: mean difference with a BCa interval, Wilcoxon p (Holm-corrected across
    pairs), and the probability of improvement."""
    rows = []
    for a, b in itertools.combinations(list(scores), 2):
        common = sorted(set(scores[a]) & set(scores[b]))
        xa = np.asarray([scores[a][i] for i in common], dtype=np.float64)
        xb = np.asarray([scores[b][i] for i in common], dtype=np.float64)
        diff = xa - xb
        lo, hi = bca_interval(diff)
        if len(diff) == 0 or np.all(diff == 0):
            p = 1.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = float(stats.wilcoxon(xa, xb, zero_method="wilcox").pvalue) if len(diff) > 1 else 1.0
        u = stats.mannwhitneyu(xa, xb, alternative="two-sided").statistic if len(diff) else math.nan
        pi = float(u) / (len(xa) * len(xb)) if len(diff) else math.nan
        rows.append((a, b, len(diff), float(diff.mean()) if len(diff) else math.nan, lo, hi, p, pi))
    adjusted = holm([r[6] for r in rows]) if rows else []
    return [Pairwise(a, b, n, d, lo, hi, p, ph, pi) for (a, b, n, d, lo, hi, p, pi), ph in zip(rows, adjusted)]


def seed_warning(n: int) -> str | None:
    if n < MIN_SEEDS:
        return (f"only {n} seed(s): intervals and tests are unreliable below {MIN_SEEDS} seeds; "
                "use --seeds 10 or more before drawing a conclusion")
    return None
