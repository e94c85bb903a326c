"""Decision rules, declared with a study before it runs: pure functions from per-seed scores to a verdict.

Three verdicts: ``supported``, ``contradicted``, ``undecided``. A rule says, before any data exists, which tests
it runs, which correction it applies and what counts as each verdict. It never decides on fewer seeds than its
declared minimum, and a rule whose minimum is too small for its own tests to ever reach significance is refused
when it is declared (an exact two-sided Wilcoxon test on n seeds cannot go below p = 2 / 2^n).

Scores come as ``{label: {seed index: value}}``; a label is whatever the study measured ("swish @ depth 48").
The rules are unit-tested on synthetic scores (a clear win, a clear loss, noise, too few seeds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from actlab.experiments import stats

SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "undecided"
VERDICTS = (SUPPORTED, CONTRADICTED, UNDECIDED)

Scores = Mapping[str, Mapping[int, float]]


@dataclass(frozen=True)
class Decision:
    verdict: str
    why: str  # one sentence: what decided it
    tests: tuple[str, ...] = ()  # one line per test that was run
    effect: str = ""  # the headline effect with its interval
    seeds: int = 0  # the seeds the decision rests on


class Rule(Protocol):
    @property
    def min_seeds(self) -> int: ...

    def describe(self) -> str: ...

    def decide(self, scores: Scores) -> Decision: ...


def _fmt(v: float, scale: float, unit: str, digits: int, sign: bool = True) -> str:
    return f"{v * scale:{'+' if sign else ''}.{digits}f}{unit}"


def _seeds(scores: Scores, labels: Sequence[str]) -> int:
    missing = [lab for lab in labels if lab not in scores]
    if missing:
        raise KeyError(f"the measurement has no scores for {', '.join(missing)}")
    common = set.intersection(*(set(scores[lab]) for lab in labels)) if labels else set()
    return len(common)


def _too_few(n: int, minimum: int) -> Decision:
    return Decision(UNDECIDED, f"{n} seeds, fewer than the rule's declared minimum of {minimum}", seeds=n)


@dataclass(frozen=True)
class Paired:
    """Directional hypotheses "``better`` beats ``worse``", paired by seed: Wilcoxon signed-rank p with Holm over
    all of them (one family) and the 95% t interval of the difference.

    supported: every hypothesis significant in its direction (Holm p < 0.05 and the interval excludes 0);
    contradicted: some hypothesis significant the other way; undecided: anything else."""

    hypotheses: tuple[tuple[str, str], ...]
    min_seeds: int
    higher_is_better: bool = True
    scale: float = 100.0
    unit: str = " points"
    digits: int = 2
    metric: str = "accuracy"  # what the scores are, for the report's sentences

    def __post_init__(self) -> None:
        if not self.hypotheses:
            raise ValueError("Paired rule: declare at least one hypothesis")
        need = stats.min_seeds_for_significance(len(self.hypotheses))
        if self.min_seeds < need:
            raise ValueError(f"Paired rule with {len(self.hypotheses)} hypotheses: min_seeds {self.min_seeds} can "
                             f"never reach significance after Holm; declare at least {need}")

    def describe(self) -> str:
        direction = "higher" if self.higher_is_better else "lower"
        hyps = "; ".join(f"{b} > {w}" if self.higher_is_better else f"{b} < {w}" for b, w in self.hypotheses)
        return (f"paired by seed, Wilcoxon signed-rank with Holm over {len(self.hypotheses)} hypothes"
                f"{'is' if len(self.hypotheses) == 1 else 'es'} ({hyps}; {direction} is better) and the 95% t "
                f"interval of each difference; supported if every one is significant in its direction, "
                f"contradicted if any is significant the other way, else undecided; at least {self.min_seeds} seeds")

    def decide(self, scores: Scores) -> Decision:
        n = min(_seeds(scores, list(pair)) for pair in self.hypotheses)
        if n < self.min_seeds:
            return _too_few(n, self.min_seeds)
        # the declared studies' rules say "t interval": they keep it (a changed interval would be a new protocol)
        pairs = stats.pairwise(scores, list(self.hypotheses), higher_is_better=self.higher_is_better, method="t")
        lines = tuple(p.verdict(self.metric, self.scale, self.unit, self.digits) for p in pairs)
        against = [p for p in pairs if p.significant and p.a_is_worse]

        def effect(p: stats.Pairwise) -> str:  # the test that decided, with its interval
            return (f"{p.a} - {p.b}: {_fmt(p.mean_diff, self.scale, self.unit, self.digits)} "
                    f"[{_fmt(p.ci_low, self.scale, '', self.digits)}, {_fmt(p.ci_high, self.scale, '', self.digits)}]"
                    + (f" ({len(pairs)} hypotheses; this one decided)" if len(pairs) > 1 else ""))

        if against:
            return Decision(CONTRADICTED, "significantly the other way: "
                            + ", ".join(f"{p.b} beats {p.a}" for p in against), lines, effect(against[0]), n)
        missed = [p for p in pairs if not p.significant]
        if not missed:
            weakest = min(pairs, key=lambda p: abs(p.mean_diff))
            return Decision(SUPPORTED, "every hypothesis holds after Holm: "
                            + ", ".join(f"{p.a} beats {p.b}" for p in pairs), lines,
                            effect(weakest).replace("this one decided", "the smallest effect"), n)
        return Decision(UNDECIDED, "not significant: " + ", ".join(f"{p.a} vs {p.b}" for p in missed), lines,
                        effect(missed[0]), n)


@dataclass(frozen=True)
class Equivalent:
    """"``a`` and ``b`` are close": the paired difference lies within +-``margin``.

    supported: every pair's interval lies inside (-margin, margin); contradicted: some pair's interval lies
    entirely outside [-margin, margin]; undecided: anything else. Intervals are t intervals at 95% Bonferroni-
    corrected over the pairs (for "every pair is close" no correction is needed, so this is conservative)."""

    pairs: tuple[tuple[str, str], ...]
    margin: float
    min_seeds: int
    scale: float = 100.0
    unit: str = " points"
    digits: int = 2

    def __post_init__(self) -> None:
        if not self.pairs or not (self.margin > 0):
            raise ValueError("Equivalent rule: declare at least one pair and a margin > 0")
        if self.min_seeds < 3:
            raise ValueError("Equivalent rule: an interval needs at least 3 seeds; declare min_seeds >= 3")

    def describe(self) -> str:
        return (f"paired by seed; the 95% t interval (Bonferroni over {len(self.pairs)}) of each difference "
                f"({'; '.join(f'{a} - {b}' for a, b in self.pairs)}) inside +-"
                f"{_fmt(self.margin, self.scale, self.unit, self.digits, sign=False)}: supported; entirely outside: "
                f"contradicted; else undecided; at least {self.min_seeds} seeds")

    def decide(self, scores: Scores) -> Decision:
        n = min(_seeds(scores, list(p)) for p in self.pairs)
        if n < self.min_seeds:
            return _too_few(n, self.min_seeds)
        conf = 1 - stats.ALPHA / len(self.pairs)
        lines: list[str] = []
        inside: list[str] = []
        outside: list[str] = []
        for a, b in self.pairs:
            common = sorted(set(scores[a]) & set(scores[b]))
            d = np.asarray([scores[a][i] - scores[b][i] for i in common], dtype=np.float64)
            lo, hi = stats.mean_interval(d, conf, method="t")
            f = lambda v: _fmt(v, self.scale, "", self.digits)  # noqa: E731
            lines.append(f"{a} - {b}: {f(d.mean())}{self.unit} [{f(lo)}, {f(hi)}] (margin +-"
                         f"{_fmt(self.margin, self.scale, '', self.digits, sign=False)})")
            (inside if -self.margin < lo and hi < self.margin else []).append(lines[-1])
            (outside if lo > self.margin or hi < -self.margin else []).append(lines[-1])
        straddling = [line for line in lines if line not in inside and line not in outside]
        if outside:
            return Decision(CONTRADICTED, "differ by more than the margin: " + ", ".join(
                line.split(":")[0] for line in outside), tuple(lines), outside[0], n)
        if not straddling:
            return Decision(SUPPORTED, "every difference is within the margin", tuple(lines), lines[0], n)
        return Decision(UNDECIDED, "an interval straddles the margin", tuple(lines), straddling[0], n)


@dataclass(frozen=True)
class Bound:
    """One-sample bounds on measured quantities: "the mean of ``label`` is above (or below) ``value``".

    supported: every interval (95% t, Bonferroni over the bounds) lies on the claimed side; contradicted: some
    interval lies entirely on the other side; undecided: anything else."""

    bounds: tuple[tuple[str, str, float], ...]  # (label, "above" | "below", value)
    min_seeds: int
    scale: float = 1.0
    unit: str = ""
    digits: int = 3

    def __post_init__(self) -> None:
        if not self.bounds or any(side not in ("above", "below") for _, side, _ in self.bounds):
            raise ValueError("Bound rule: declare (label, 'above' | 'below', value) bounds")
        if self.min_seeds < 3:
            raise ValueError("Bound rule: an interval needs at least 3 seeds; declare min_seeds >= 3")

    def describe(self) -> str:
        return ("95% t interval (Bonferroni over " + str(len(self.bounds)) + ") of the mean of each: "
                + "; ".join(f"{lab} {side} {_fmt(v, self.scale, self.unit, self.digits, sign=False)}"
                            for lab, side, v in self.bounds)
                + f"; all on the claimed side: supported; any entirely on the other: contradicted; else undecided; "
                  f"at least {self.min_seeds} seeds")

    def decide(self, scores: Scores) -> Decision:
        n = min(_seeds(scores, [lab]) for lab, _, _ in self.bounds)
        if n < self.min_seeds:
            return _too_few(n, self.min_seeds)
        conf = 1 - stats.ALPHA / len(self.bounds)
        lines: list[str] = []
        held: list[str] = []
        against: list[str] = []
        for lab, side, v in self.bounds:
            x = np.asarray([s for s in scores[lab].values() if math.isfinite(s)], dtype=np.float64)
            lo, hi = stats.mean_interval(x, conf, method="t")
            f = lambda u: _fmt(u, self.scale, "", self.digits, sign=False)  # noqa: E731
            lines.append(f"{lab}: {f(x.mean())}{self.unit} [{f(lo)}, {f(hi)}] (claimed {side} {f(v)})")
            ok = lo > v if side == "above" else hi < v
            bad = hi < v if side == "above" else lo > v
            (held if ok else []).append(lab)
            (against if bad else []).append(lab)
        by_label = {lab: line for (lab, _, _), line in zip(self.bounds, lines)}
        if against:
            return Decision(CONTRADICTED, "on the other side of its bound: " + ", ".join(against), tuple(lines),
                            by_label[against[0]], n)
        if len(held) == len(self.bounds):
            return Decision(SUPPORTED, "every bound holds", tuple(lines), "; ".join(lines), n)
        undecided = next(lab for lab in by_label if lab not in held)
        return Decision(UNDECIDED, "an interval straddles its bound", tuple(lines), by_label[undecided], n)


@dataclass(frozen=True)
class Exact:
    """Deterministic values (quadrature, closed forms) against targets: supported if every |value - target| is
    within its tolerance, contradicted otherwise. Scores carry one value each (seed index 0)."""

    checks: tuple[tuple[str, float, float], ...]  # (label, target, tolerance)
    min_seeds: int = 0

    def describe(self) -> str:
        return ("computed, not sampled: " + "; ".join(f"{lab} = {t:.10g} +- {tol:g}" for lab, t, tol in self.checks)
                + "; all within tolerance: supported, else contradicted")

    def decide(self, scores: Scores) -> Decision:
        lines, off = [], []
        for lab, target, tol in self.checks:
            value = next(iter(scores[lab].values()))
            ok = math.isfinite(value) and abs(value - target) <= tol
            lines.append(f"{lab}: {value:.10g} (target {target:.10g} +- {tol:g}){'' if ok else ': OUTSIDE'}")
            if not ok:
                off.append(lab)
        if off:
            return Decision(CONTRADICTED, "outside tolerance: " + ", ".join(off), tuple(lines),
                            next(line for line in lines if line.endswith("OUTSIDE")))
        return Decision(SUPPORTED, "every value within tolerance", tuple(lines), lines[0])


@dataclass(frozen=True)
class AllOf:
    """Several parts of one claim, each with its own rule: supported if every part is; contradicted if any part
    is; undecided otherwise. Parts are separate questions (each its own test family)."""

    parts: tuple[tuple[str, Rule], ...]

    @property
    def min_seeds(self) -> int:
        return max(rule.min_seeds for _, rule in self.parts)

    def describe(self) -> str:
        return " AND ".join(f"[{name}] {rule.describe()}" for name, rule in self.parts)

    def decide(self, scores: Scores) -> Decision:
        decided = [(name, rule.decide(scores)) for name, rule in self.parts]
        lines = tuple(f"[{name}] {line}" for name, d in decided for line in (f"{d.verdict}: {d.why}", *d.tests))
        effect = "; ".join(f"{name}: {d.effect}" for name, d in decided if d.effect)
        seeds = min((d.seeds for _, d in decided if d.seeds), default=0)
        against = [name for name, d in decided if d.verdict == CONTRADICTED]
        if against:
            return Decision(CONTRADICTED, "; ".join(f"{name} contradicted ({d.why})" for name, d in decided
                                                    if d.verdict == CONTRADICTED), lines, effect, seeds)
        if all(d.verdict == SUPPORTED for _, d in decided):
            return Decision(SUPPORTED, "every part supported: " + "; ".join(f"{name} ({d.why})"
                                                                            for name, d in decided),
                            lines, effect, seeds)
        return Decision(UNDECIDED, "; ".join(f"{name} undecided ({d.why})" for name, d in decided
                                             if d.verdict == UNDECIDED), lines, effect, seeds)
