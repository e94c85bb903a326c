"""Coverage of actlab's 95% interval of a mean over seeds (Student t with Hall's skewness correction) against plain
Student t, by seeded simulation at n = 5, 10, 20 seeds, with the mean width relative to t's. The distributions are
the shapes seed-to-seed results take: normal, accuracy counts, skewed bounded, near a ceiling, paired differences
with unequal tails, and two heavier right tails (exponential, lognormal).

    python benchmarks/bench_intervals.py [--reps 200000]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats as sps

from actlab.experiments import stats

DISTRIBUTIONS = {
    "normal": (lambda rng, s: rng.normal(0.72, 0.01, s), 0.72),
    "accuracy counts, Binomial(1000, 0.9)/1000": (lambda rng, s: rng.binomial(1000, 0.9, s) / 1000, 0.9),
    "skewed bounded, Beta(2, 8)": (lambda rng, s: rng.beta(2, 8, s), 0.2),
    "near a ceiling, Beta(40, 1.2)": (lambda rng, s: rng.beta(40, 1.2, s), 40 / 41.2),
    "paired, unequal tails, Beta(40, 1.2) - N(0.97, 0.01)":
        (lambda rng, s: rng.beta(40, 1.2, s) - rng.normal(0.97, 0.01, s), 40 / 41.2 - 0.97),
    "exponential": (lambda rng, s: rng.exponential(1.0, s), 1.0),
    "lognormal, sigma 1": (lambda rng, s: rng.lognormal(0.0, 1.0, s), float(np.exp(0.5))),
}


def student(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[-1]
    half = sps.t.ppf(0.975, n - 1) * x.std(axis=-1, ddof=1) / n ** 0.5
    return x.mean(-1) - half, x.mean(-1) + half


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200_000)
    args = parser.parse_args()
    print(f"# {args.reps} samples per cell; coverage of a nominal 95% (width relative to plain t)")
    print("| distribution | n | plain t | actlab (t + Hall) |")
    print("|---|---|---|---|")
    for name, (draw, mean) in DISTRIBUTIONS.items():
        for n in (5, 10, 20):
            x = draw(np.random.default_rng(n), (args.reps, n))
            cells = []
            for interval in (student, stats.mean_intervals):
                lo, hi = interval(x)
                cells.append((float(np.mean((lo <= mean) & (mean <= hi))), float(np.mean(hi - lo))))
            (ct, wt), (ca, wa) = cells
            print(f"| {name} | {n} | {100 * ct:.1f}% | {100 * ca:.1f}% ({wa / wt:.2f}x) |")


if __name__ == "__main__":
    main()
