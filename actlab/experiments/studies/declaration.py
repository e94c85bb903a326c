"""What a study is: data declared before it runs.

A :class:`Study` holds the claim and its source, the protocol (task, recipe, what is tuned and how, seeds), the
decision rule with its minimum seeds, and the protocol's known differences from the source. Its ``measure``
function only measures: it returns per-seed scores and the lines that describe them; the declared rule alone turns
them into a verdict. Changing a rule is a visible diff of its declaration, with the reason in the commit.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from actlab.errors import ActlabError
from actlab.experiments.studies.rules import Rule


@dataclass
class Measurement:
    """What a study measured: per-seed scores for its rule, lines for the reader, numbers for the guides."""

    scores: dict[str, dict[int, float]]
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""  # what actually ran, when it says more than the declaration (chosen lrs, parameters)


@dataclass(frozen=True)
class Context:
    """How one run of a study goes: seeds, quick or full, the store, progress, and where trainings run."""

    seeds: int
    quick: bool
    store: str
    progress: Callable[..., None] | None = None
    execution: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    claim: str  # quoted in English; tutorials' claims name their file
    source: str
    protocol: str
    rule: Rule
    measure: Callable[[Context], Measurement]
    differences: tuple[str, ...] = ()  # the protocol's known differences from the source
    kind: str = "paper"  # "paper": a published result (actlab study); "tutorial": a claim of ../seeds (actlab claims)
    trains: bool = True
    quick: str = ""  # what --quick changes
    seeds: int = 10  # the full run's default

    @property
    def min_seeds(self) -> int:
        return self.rule.min_seeds

    def declaration(self) -> dict[str, Any]:
        """Everything declared before the run, as stored with each finding."""
        return {"claim": self.claim, "source": self.source, "protocol": self.protocol, "rule": self.rule.describe(),
                "min_seeds": self.min_seeds, "differences": list(self.differences), "kind": self.kind,
                "quick": self.quick}


@dataclass
class Finding:
    study: str
    claim: str
    source: str
    verdict: str  # supported | contradicted | undecided
    summary: str
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    command: str = ""
    seeds: int = 0
    declaration: dict[str, Any] = field(default_factory=dict)
    effect: str = ""
    would_change: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_STUDIES: dict[str, Study] = {}


def declare(study: Study) -> Study:
    if study.name in _STUDIES:
        raise ValueError(f"study {study.name!r} is already declared")
    if study.kind not in ("paper", "tutorial"):
        raise ValueError(f"study {study.name!r}: kind {study.kind!r} is not 'paper' or 'tutorial'")
    if study.trains and study.seeds < study.min_seeds:
        raise ValueError(f"study {study.name!r}: its default of {study.seeds} seeds is below its rule's minimum "
                         f"of {study.min_seeds}")
    _STUDIES[study.name] = study
    return study


def study_names(kind: str | None = None) -> list[str]:
    return [n for n, s in _STUDIES.items() if kind is None or s.kind == kind]


def get_study(name: str, kind: str | None = None) -> Study:
    names = study_names(kind)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=2) or [s for s in names if name and name in s][:2]
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        what = {"tutorial": "claim", None: "study"}.get(kind, "study")
        raise ActlabError(f"unknown {what} {name!r}{hint} (known: {', '.join(names)})")
    return _STUDIES[name]
