"""Running a declared study: measure, let the declared rule decide, store the finding.

Trainings go through the comparison engine (per-activation lr chosen on a validation split, every trial stored
and reused by key), so studies that share a protocol share their trials. Probes that need the trained weights
(dead units, activation means, noise) retrain the seeds at the chosen lr in this process: the same seeds give the
same initial weights and data order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from actlab.errors import ActlabError
from actlab.experiments import stats
from actlab.experiments.studies import rules
from actlab.experiments.studies.declaration import Context, Finding, Study, get_study

QUICK_RECIPE = {"epochs": 2, "batch_size": 200}
log = logging.getLogger(__name__)


def compare(ctx: Context, activations: Sequence[str], task: str, name: str, *, tune_lr: Sequence[float] | None = None,
            recipe: dict[str, Any] | None = None, seeds: int | None = None, tune_seeds: int | None = None,
            cost: bool = False):
    """One comparison of the study's protocol: every activation with its own lr chosen on the validation split
    (the grid ``tune_lr``, default the recipe's lr / 3, x 1, x 3); ``--quick`` shrinks epochs and the grid."""
    from actlab.experiments.comparison.compare import run_comparison
    from actlab.experiments.comparison.config import StudyConfig

    overrides = dict(recipe or {})
    grid = tuple(tune_lr) if tune_lr else None
    if ctx.quick:
        overrides.update({k: v for k, v in QUICK_RECIPE.items() if k not in overrides or k == "epochs"})
        grid = grid[len(grid) // 2:][:2] if grid else None
    cfg = StudyConfig(activations=tuple(activations), task=task, seeds=seeds or ctx.seeds, store=ctx.store,
                      study=study_record(ctx, name), recipe_overrides=overrides, cost=cost, tune_lr=grid,
                      tune_seeds=tune_seeds or (1 if ctx.quick else 2), **ctx.execution)
    return run_comparison(cfg, progress=ctx.progress, command=f"actlab study {name.split(':', 1)[-1]}")


def study_record(ctx: Context, name: str) -> str:
    """The comparison record a study's run writes: a --quick run has its own, so it neither replaces the full run's
    nor is refused for its other settings."""
    return f"{name} (quick)" if ctx.quick else name


def accuracies(result) -> str:
    """"swish 72.15% [71.11, 73.19] (lr 0.03), ...": each activation's test accuracy and its chosen lr."""
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    return ", ".join(f"{s.activation} {stats.interval_text(s.mean, s.ci_low, s.ci_high, pct)} "
                     f"(lr {result.chosen_lr[s.activation]:g})" for s in result.summaries)


def trained(ctx: Context, result, label: str) -> Iterator[tuple[int, Any]]:
    """(seed index, trained model in eval mode) for each seed of ``label`` at its chosen lr."""
    from actlab.experiments.training.trainer import build_models, train_group

    contender = next(c for c in result.contenders if c.label == label)
    data = result.task.load()
    base = result.config.base_seed
    seeds = list(range(result.config.seeds))
    runs = train_group(result.task, data, contender.text, contender.trainable, result.recipe, base, seeds,
                       lr=result.chosen_lr[label])
    model = build_models(result.task, data, contender.text, contender.trainable, result.recipe, base, [0])[0]
    for run in runs:
        assert run.final_state is not None  # train_group keeps every member's final weights
        model.load_state_dict(run.final_state)
        yield run.seed_index, model.eval()


def would_change(study: Study, decision: rules.Decision, seeds: int) -> str:
    if decision.verdict == rules.UNDECIDED and seeds < study.min_seeds:
        return f"run with at least {study.min_seeds} seeds (the rule's minimum)"
    if decision.verdict == rules.UNDECIDED:
        return "more seeds (the effect is within the noise of these), or a task where the difference is larger"
    other = "; ".join(study.differences[:1])
    return "a result under another protocol" + (f" (this one differs from the source: {other})" if other else "")


def run_study(name: str, seeds: int | None = None, quick: bool = False, store: str = "runs/actlab.db",
              progress: Callable[..., None] | None = None, command: str = "", kind: str | None = None,
              **execution: Any) -> Finding:
    """Run a declared study and store its finding. ``execution``: how its trainings run, as StudyConfig fields
    (backend="ray", address, cpus_per_group, gpus_per_group, max_retries, jobs)."""
    study = get_study(name, kind)
    if seeds is not None and (not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1):
        raise ActlabError(f"seeds = {seeds!r}: expected an integer >= 1")
    n = seeds if seeds is not None else (2 if quick else study.seeds)
    execution = {k: v for k, v in execution.items() if v is not None}
    if execution:
        from actlab.experiments.comparison.config import StudyConfig

        StudyConfig(activations=("relu",), **execution)  # bad values fail before anything runs
    measured = study.measure(Context(n, quick, store, progress, execution))
    decision = study.rule.decide(measured.scores)
    used = decision.seeds or (n if study.trains else 0)
    summary = f"{decision.verdict}: {decision.why}"
    lines = list(measured.lines)
    lines.append(f"rule (declared before the run): {study.rule.describe()}")
    lines += [f"  {t}" for t in decision.tests]
    declaration = study.declaration()
    if measured.protocol:
        declaration["ran"] = measured.protocol
    finding = Finding(study.name, study.claim, study.source, decision.verdict, summary, lines, measured.numbers,
                      quick, command or f"actlab {'claims' if study.kind == 'tutorial' else 'study'} {name}"
                      + (" --quick" if quick else "") + (f" --seeds {seeds}" if seeds is not None else ""),
                      used, declaration, decision.effect, would_change(study, decision, used))
    from actlab.experiments.results.store import Store

    with Store(store) as st:
        st.write_finding(finding.as_dict())
    log.info("%s: %s on %d seeds (%s)", study.name, decision.verdict, used, decision.why)
    return finding
