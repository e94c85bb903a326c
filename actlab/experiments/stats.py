"""Statistics over seeds, with scipy.stats: Student-t intervals of means and of paired differences, Wilcoxon
signed-rank tests with Holm's correction, the paired probability of improvement (Agarwal et al. 2021, "Deep RL at
the Edge of the Statistical Precipice"), Friedman's test for the overall question, and the binomial error of one
test set.

With more than two activations each is compared with a baseline (the first named, or ``baseline=``), Holm over the
k - 1 comparisons, and Friedman's test answers "do they differ at all?" (Demšar 2006); all pairs only on request,
since Holm over k(k - 1)/2 pairs needs many more seeds to find anything.

What the intervals cover: seed-to-seed variation (initial weights, data order) on this test set; not the test set's
own sampling error. Which interval: Student's t with Hall's (1992) skewness correction ("On the removal of skewness
by transformation", JRSS B 54), which moves and widens the t interval by the sample's skewness through a monotone
cubic transformation of the t statistic. Plain t under-covers skewed seed distributions (simulated coverage of a
nominal 95%: accuracies near a ceiling, Beta(40, 1.2), 90% at n = 5, 92% at n = 10; exponential 88-92%); with the
correction they hold at least 93% at n = 5, 10 and 20, on normal data too (94-95%), and the price is width where
the sample looks skewed (on normal data 1.5x t's mean width at n = 5, 1.1x at 10, 1.01x at 20).
tests/test_stats_calibration.py checks these by simulation. No interval from so few seeds holds its level for a
heavy-tailed distribution (lognormal with sigma = 1: 90% at n = 5, 92% at n = 10 and 20 even corrected), and a
sample cannot show it: the seeds that miss the tail look symmetric. The BCa bootstrap is worse at these n (90% at
n = 10, 81% at n = 5 on normal data).

Verdicts are conservative: a difference is reported only when its 95% interval excludes 0 *and* the
Holm-corrected Wilcoxon p is below 0.05; otherwise "no significant difference".
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
MIN_SEEDS = 5


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
    prob_improvement: float  # P(a better than b on the same seed): the share of seeds a wins (ties count 1/2)
    higher_is_better: bool = True  # accuracy; False for losses such as bits per character
    n_tests: int = 1  # the Holm family this pair was corrected in
    n_ranked: int | None = None  # the seeds the signed-rank test used (nonzero differences); None: n

    @property
    def significant(self) -> bool:
        return (self.ci_low > 0 or self.ci_high < 0) and self.p_holm < ALPHA

    @property
    def a_is_worse(self) -> bool:
        return self.mean_diff < 0 if self.higher_is_better else self.mean_diff > 0

    def flipped(self) -> Pairwise:
        """The same comparison seen from b's side."""
        return Pairwise(self.b, self.a, self.n, -self.mean_diff, -self.ci_high, -self.ci_low, self.p_value,
                        self.p_holm, 1.0 - self.prob_improvement, self.higher_is_better, self.n_tests, self.n_ranked)

    def verdict(self, metric: str = "accuracy", scale: float = 100.0, unit: str = " points", digits: int = 2) -> str:
        """One honest sentence; a significant difference is phrased from the winner's side."""
        if self.significant and self.a_is_worse:
            return self.flipped().verdict(metric, scale, unit, digits)
        f = lambda v: f"{v * scale:+.{digits}f}"  # noqa: E731
        if self.n < 2:
            seeds = "no paired seed" if self.n == 0 else "1 paired seed"
            shown = "" if self.n == 0 else f": difference {f(self.mean_diff)}{unit} on that seed"
            return f"{self.a} vs {self.b} on {metric}: undecided with {seeds} (no interval, no test){shown}"
        d = f"{f(self.mean_diff)}{unit} " + (
            "on every seed (no spread: no interval)" if self.ci_low == self.ci_high else
            f"[{f(self.ci_low)}, {f(self.ci_high)}]")
        tail = f"p(Holm) = {self.p_holm:.3g}, P({self.a} better on a seed) = {self.prob_improvement:.2f}"
        if self.significant:
            lower = "" if self.higher_is_better else " (lower is better)"
            return f"{self.a} beats {self.b} on {metric}{lower} by {d}; {tail}"
        if self.mean_diff == 0 and self.ci_low == self.ci_high:  # the same value on every seed
            return (f"{self.a} vs {self.b} on {metric}: no significant difference: identical on all {self.n} paired "
                    f"seeds; {tail}")
        needed = min_seeds_for_significance(max(self.n_tests, 1))
        ranked = self.n if self.n_ranked is None else self.n_ranked
        if ranked < needed:  # not evidence of no difference: this design could not have found one
            tests = f"{self.n_tests} paired test{'' if self.n_tests == 1 else 's'}"
            tied = "" if ranked == self.n else f" ({self.n - ranked} tied, which the signed-rank test drops)"
            return (f"{self.a} vs {self.b} on {metric}: undecided: {ranked} seeds{tied} cannot decide (with {tests} "
                    f"the smallest possible p(Holm) is {self.n_tests} x 2/2^{ranked} = "
                    f"{min(1.0, self.n_tests * 2.0 / 2.0 ** ranked):.3g}; at least {needed} seeds are needed): {d}; "
                    f"{tail}")
        if self.p_holm < ALPHA:  # the test finds a difference its interval does not bear out: say both
            return (f"{self.a} vs {self.b} on {metric}: undecided: the signed-rank test finds a difference "
                    f"(p(Holm) = {self.p_holm:.3g}) but the 95% interval of the mean difference covers 0: {d}; "
                    f"P({self.a} better on a seed) = {self.prob_improvement:.2f}")
        reason = "the 95% interval covers 0" if self.ci_low <= 0 <= self.ci_high else \
            "the corrected test is not significant"
        return f"{self.a} vs {self.b} on {metric}: no significant difference ({reason}): {d}; {tail}"


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE, method: str = "hall"
                  ) -> tuple[float, float]:
    """Skewness-corrected Student-t interval of the mean (:func:`mean_intervals`), 95% unless ``confidence`` says
    otherwise (e.g. Bonferroni-corrected). Fewer than two values give no interval: (NaN, NaN), shown as missing (one
    seed says nothing about seed-to-seed variation). All-equal values give (mean, mean), which interval_text shows
    as "every seed equal: no interval" rather than as a certain zero-width interval."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(x) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x.mean()), float(x.mean())
    lo, hi = mean_intervals(x, confidence, method)
    return float(lo), float(hi)


def interval_text(mean: float, low: float, high: float, fmt) -> str:
    """"mean [low, high]" with ``fmt`` applied, or "mean (no interval)" where the sample gave none (one seed)."""
    if math.isfinite(mean) and not (math.isfinite(low) and math.isfinite(high)):
        return f"{fmt(mean)} (no interval)"
    if low == high:  # every seed gave the same value: a zero-width interval would claim certainty
        return f"{fmt(mean)} (every seed equal: no interval)"
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def mean_intervals(samples: np.ndarray, confidence: float = CONFIDENCE, method: str = "hall"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of the mean along the last axis (one per leading index; at least 2 values each): Student's t with
    Hall's skewness correction. With T = sqrt(n) (mean - mu) / s and a = skewness / (6 sqrt(n)), Hall's
    g(T) = T + a (1 + 2 T^2) + (4 a^2 / 3) T^3 is monotone, g(T) ~ t(n - 1) to the next order, and
    g^-1(v) = ((1 + 6 a (v - a))^(1/3) - 1) / (2 a); mu lies in [mean - s/sqrt(n) g^-1(q), mean - s/sqrt(n) g^-1(-q)],
    q the t quantile (Hall used the normal quantile and the plain sample skewness; this calibrated variant uses t
    and the bias-adjusted G1, which the coverage figures are for). A symmetric sample (skewness 0, or fewer than 3
    values) gets the plain t interval, as does ``method="t"`` (what the declared studies' rules use)."""
    if method not in ("hall", "t"):
        raise ValueError(f"method={method!r}: expected 'hall' or 't'")
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[-1]
    mean, scale = x.mean(axis=-1), x.std(axis=-1, ddof=1) / math.sqrt(n)
    q = stats.t.ppf(0.5 + confidence / 2, n - 1)
    if n < 3 or method == "t":
        return mean - q * scale, mean + q * scale
    with np.errstate(all="ignore"), warnings.catch_warnings():  # an all-equal row has no skewness: 0 below
        warnings.simplefilter("ignore")
        skew = stats.skew(x, axis=-1, bias=False)
    a = np.where(np.isfinite(skew), skew, 0.0) / (6.0 * math.sqrt(n))
    flat = np.abs(a) < 1e-12
    safe = np.where(flat, 1.0, a)

    def inverse(v: float) -> np.ndarray:
        return np.where(flat, v - a, (np.cbrt(1.0 + 6.0 * a * (v - a)) - 1.0) / (2.0 * safe))

    return mean - scale * inverse(q), mean - scale * inverse(-q)


def summarize(scores: Mapping[str, Mapping[int, float]], bounds: tuple[float, float] = (0.0, 1.0)
              ) -> list[Summary]:
    """Per activation: mean and t interval over seeds. ``scores[activation][seed_index] = value``, a metric within
    ``bounds`` (accuracies: [0, 1]); the interval is clipped to them, which loses no coverage since the true mean
    lies there too."""
    out = []
    for act, by_seed in scores.items():
        x = np.asarray(list(by_seed.values()), dtype=np.float64)
        lo, hi = mean_interval(x)
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        out.append(Summary(act, len(x), float(x.mean()) if len(x) else math.nan, lo, hi,
                           float(x.std(ddof=1)) if len(x) > 1 else 0.0))
    return out


def comparisons(scores: Mapping[str, Mapping[int, float]], baseline: str | None = None,
                all_pairs: bool = False, higher_is_better: bool = True, resolution: float | None = None
                ) -> list[Pairwise]:
    """Baseline (default: the first label) against each other label, Holm over those k - 1 tests; or every pair
    with ``all_pairs``. Each pair reads (baseline, other). ``resolution``: as in :func:`pairwise`."""
    labels = list(scores)
    if all_pairs or len(labels) < 2:
        return pairwise(scores, higher_is_better=higher_is_better, resolution=resolution)
    base = labels[0] if baseline is None else baseline
    if base not in scores:
        raise ValueError(f"baseline {base!r} is not among the compared activations: {', '.join(labels)}")
    return pairwise(scores, [(base, other) for other in labels if other != base], higher_is_better, resolution)


def n_tests(k: int, all_pairs: bool) -> int:
    """How many paired tests one Holm family holds for k activations."""
    return k * (k - 1) // 2 if all_pairs else max(k - 1, 0)


@dataclass(frozen=True)
class Friedman:
    statistic: float
    p_value: float
    k: int
    n: int

    def sentence(self) -> str:
        verdict = "they differ" if self.p_value < ALPHA else "no significant difference among them"
        return (f"Friedman test over all {self.k} activations on {self.n} paired seeds: chi2 = {self.statistic:.2f}, "
                f"p = {self.p_value:.3g}: {verdict}")


def friedman(scores: Mapping[str, Mapping[int, float]]) -> Friedman | None:
    """Friedman's rank test over the seeds every activation has (None below 3 activations or 2 seeds)."""
    labels = list(scores)
    common = sorted(set.intersection(*(set(scores[a]) for a in labels))) if labels else []
    if len(labels) < 3 or len(common) < 2:
        return None
    columns = [[scores[a][i] for i in common] for a in labels]
    if all(len(set(row)) == 1 for row in zip(*columns)):
        return Friedman(0.0, 1.0, len(labels), len(common))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.friedmanchisquare(*columns)
    return Friedman(float(result.statistic), float(result.pvalue), len(labels), len(common))


def test_set_halfwidth(accuracy: float, n_test: int) -> float:
    """Half-width of the 95% Wilson interval of an accuracy measured on ``n_test`` examples: the test set's own
    sampling error, which the seed intervals do not include."""
    if not n_test or not math.isfinite(accuracy):
        return math.nan
    k = int(round(accuracy * n_test))
    ci = stats.binomtest(k, n_test).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float((ci.high - ci.low) / 2)


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


def pairwise(scores: Mapping[str, Mapping[int, float]], pairs: Sequence[tuple[str, str]] | None = None,
             higher_is_better: bool = True, resolution: float | None = None, method: str = "hall") -> list[Pairwise]:
    """The given pairs (default: every pair), paired by seed index: mean difference with a t interval, Wilcoxon p
    (Holm-corrected across the pairs given), and the paired probability of improvement. ``resolution``: the
    metric's step where it counts something (an accuracy on n test examples: 1/n); the Wilcoxon test then ranks the
    integer differences in examples, so float rounding cannot split ties or make a zero nonzero. ``method``: the
    interval's (:func:`mean_intervals`)."""
    rows = []
    for a, b in (itertools.combinations(list(scores), 2) if pairs is None else pairs):
        common = sorted(set(scores[a]) & set(scores[b]))
        xa = np.asarray([scores[a][i] for i in common], dtype=np.float64)
        xb = np.asarray([scores[b][i] for i in common], dtype=np.float64)
        diff = xa - xb
        lo, hi = mean_interval(diff, method=method)
        ranked = np.rint(diff / resolution) if resolution else diff
        if resolution and len(diff) > 1 and np.ptp(ranked) == 0:  # the same count on every seed (float noise aside)
            lo = hi = float(diff.mean())
        if len(diff) < 2 or np.all(ranked == 0):
            p = 1.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = float(stats.wilcoxon(ranked, zero_method="wilcox").pvalue)
        wins = diff > 0 if higher_is_better else diff < 0
        pi = float(np.mean(wins + 0.5 * (diff == 0))) if len(diff) else math.nan
        rows.append((a, b, len(diff), float(diff.mean()) if len(diff) else math.nan, lo, hi, p, pi,
                     int(np.count_nonzero(ranked))))
    adjusted = holm([r[6] for r in rows]) if rows else []
    return [Pairwise(a, b, n, d, lo, hi, p, ph, pi, higher_is_better, len(rows), nz)
            for (a, b, n, d, lo, hi, p, pi, nz), ph in zip(rows, adjusted)]


def seed_warning(n: int) -> str | None:
    if n < MIN_SEEDS:
        return (f"only {n} seed{'' if n == 1 else 's'}: intervals and tests are unreliable below {MIN_SEEDS} seeds; "
                "use --seeds 10 or more before drawing a conclusion.")
    return None


def min_seeds_for_significance(n_tests: int, alpha: float = ALPHA) -> int:
    """The fewest paired seeds at which the exact two-sided Wilcoxon test can reach ``alpha`` after Holm over
    ``n_tests`` tests: its smallest p is 2 / 2^n, and Holm multiplies the smallest by n_tests."""
    n = 1
    while n_tests * 2.0 / 2.0**n > alpha:
        n += 1
    return n


def power_warning(n: int, n_tests: int) -> str | None:
    """Said before training when the design cannot reach significance at all."""
    needed = min_seeds_for_significance(max(n_tests, 1))
    if n_tests and n < needed:
        return (f"With {n} seed{'' if n == 1 else 's'} and {n_tests} paired test{'' if n_tests == 1 else 's'}, no "
                f"difference can reach significance (the smallest exact Wilcoxon p is 2/2^{n}, times {n_tests} for "
                f"Holm); use at least {needed} seeds.")
    return None
