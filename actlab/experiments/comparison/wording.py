"""What a comparison's tables and sentences say, in words: shared by the terminal, the HTML report, the markdown
summary and the notebook display (each only escapes and lays out)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from actlab.experiments.comparison.config import setting_value, settings_text
from actlab.experiments.stats import interval_text


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.2f}"


def columns(target_accuracy: float, baseline: str, metric=None) -> list[tuple[str, str]]:
    """(cell key, header) of the summary table, in order."""
    header = metric.column if metric is not None else "test acc % mean [95% CI over seeds]"
    return [("activation", "activation"), ("parameters", "parameters"), ("lr", "lr"), ("accuracy", header),
            ("test_set", "± test set"), ("epochs_to_target", f"epochs to {100 * target_accuracy:.0f}%"),
            ("cost", f"step time vs {baseline} [95% CI]"), ("s_per_epoch", "s/epoch"), ("dead", "dead units"),
            ("diverged", "diverged")]


def row_cells(r: Mapping[str, Any], metric=None) -> dict[str, str]:
    """The text of each summary-table cell (unescaped)."""
    cost = r.get("cost")
    f = metric.fmt if metric is not None else _pct
    return {
        "activation": str(r["activation"]),
        "parameters": "-" if r.get("parameters") is None else f"{r['parameters']:,}",
        "lr": "-" if r["lr"] is None else f"{r['lr']:.3g}",
        "accuracy": interval_text(r["mean"], r["ci_low"], r["ci_high"], f),
        "test_set": "-" if r.get("test_set_pm") is None else f"±{_pct(r['test_set_pm'])}",
        "epochs_to_target": "-" if r["epochs_to_target"] is None else
        f"{r['epochs_to_target']:.1f} ({r['reached']}/{r['n']})",
        "cost": "-" if not cost else f"{cost['ratio']:.2f}x [{cost['low']:.2f}, {cost['high']:.2f}]"
        + (" unreliable" if cost.get("unreliable") else ""),
        "s_per_epoch": "-" if r["s_per_epoch"] is None else f"{r['s_per_epoch']:.3f}",
        "dead": "-" if r["dead"] is None else f"{100 * r['dead']:.1f}%",
        "diverged": str(r["diverged"]),
    }


def lr_lines(lr_grid: Sequence[float] | None, chosen: Mapping[str, float], tuning: Mapping[str, Mapping[float, float]],
             validation_fraction: float, tune_seeds: int, metric=None, tune: Mapping[str, Sequence] | None = None,
             settings: Mapping[str, Mapping[str, Any]] | None = None,
             by_settings: Mapping[str, Mapping[str, float]] | None = None) -> list[str]:
    """How the learning rates (and any other tuned recipe fields) were set, in words: pinned, or chosen per
    activation (with the validation curve at the chosen settings, and the best value at each setting)."""
    fields_tuned = "; ".join(f"{k} from {{{', '.join(setting_value(v) for v in vs)}}}"
                             for k, vs in sorted((tune or {}).items()))
    name = metric.name if metric is not None else "accuracy"
    split = "its own validation files" if metric is not None and metric.key == "bits_per_char" else \
        f"{100 * validation_fraction:.0f}% of the training data"
    if lr_grid is None and not fields_tuned:
        rate = next(iter(chosen.values()), math.nan)
        return [f"Every activation trained at lr {rate:g}, pinned (not tuned): the verdicts hold at lr {rate:g} "
                "only; an lr that suits one activation can decide a comparison."]
    if lr_grid is None:
        rate = next(iter(chosen.values()), math.nan)
        head = f"Every activation trained at lr {rate:g}, pinned; its own {fields_tuned}, chosen"
    else:
        grid = ", ".join(f"{lr:g}" for lr in lr_grid)
        head = f"Each activation trained at its own lr, chosen from {{{grid}}}" + \
            (f", and its own {fields_tuned}, chosen together" if fields_tuned else "")
    lines = [f"{head} by mean {name} on a validation split ({split}, {tune_seeds} seeds; the test set unseen):"]
    if metric is None or metric.key == "accuracy":
        show = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    else:
        show = metric.fmt
    for label, lr in chosen.items():
        curve = tuning.get(label, {})
        chosen_settings = settings_text((settings or {}).get(label, {}))
        at = f", {chosen_settings}" if chosen_settings else ""
        shown = ", ".join(f"{r:g}: {show(v) if math.isfinite(v) else '-'}" for r, v in curve.items())
        edge = ""
        if lr_grid is not None and curve and lr in (min(curve), max(curve)) and len(curve) > 1:
            edge = " (at the edge of the grid: a wider grid may find a better rate)"
        line = f"  {label}: lr {lr:g}{at}{edge}"
        if lr_grid is not None:
            line += f"; validation {name} {'by lr at ' + chosen_settings + ' ' if chosen_settings else ''}{shown}"
        others = (by_settings or {}).get(label)
        if others:
            line += f"; best validation {name} by setting: " + \
                ", ".join(f"{text}: {show(v) if math.isfinite(v) else '-'}" for text, v in others.items())
        lines.append(line)
    return lines


def verdict_line(pair, chosen: Mapping[str, float], pinned: bool, metric=None,
                 settings: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A pair's verdict followed by the learning rates (and other tuned settings) it holds at."""
    text = metric.verdict(pair) if metric is not None else pair.verdict()
    tuned = {label: settings_text((settings or {}).get(label, {})) for label in (pair.a, pair.b)}

    def at(label: str) -> str:
        return f"{label} at lr {chosen.get(label, math.nan):g}" + (f", {tuned[label]}" if tuned[label] else "")

    if any(tuned.values()):
        where = f"{at(pair.a)}; {at(pair.b)}; " + ("the lr pinned, the rest chosen on validation" if pinned else
                                                   "each chosen on validation")
    elif pinned:
        where = f"both at lr {chosen.get(pair.a, math.nan):g}, pinned"
    else:
        where = f"{at(pair.a)}, {at(pair.b)}, each chosen on validation"
    return f"{text} ({where})"


def method_line(baseline: str, all_pairs: bool, n_labels: int) -> str:
    if n_labels < 2:
        return "Verdicts: none; one activation has nothing to be compared with (name two or more)."
    family = "every pair" if all_pairs or n_labels <= 2 else f"each against the baseline {baseline}"
    return (f"Verdicts ({family}; paired by seed; difference in the final test value with its 95% interval over "
            "seeds on this test set (t, skewness-corrected); Wilcoxon signed-rank, Holm-corrected over these "
            "comparisons; P(a better on a seed) = the share of paired seeds a wins):")


def test_set_line(n_test: int | None) -> str | None:
    if not n_test:
        return None
    return (f"Seed intervals cover seed-to-seed variation (initial weights, data order) on one test set of {n_test} "
            "examples; '± test set' is that set's own sampling error (binomial 95%), which they do not include.")
