"""One-command reproductions of published claims: ``actlab study NAME [--seeds N] [--quick]``.

Each study prints the claim with its source beside the measured result, says whether the claim was reproduced,
and stores the finding (and, for training studies, every trial) in the results store. ``--quick`` versions are
small enough for CI; the full versions' findings are collected in docs/findings.md.
"""

from __future__ import annotations

import contextvars
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from actlab.errors import ActlabError


@dataclass
class Finding:
    study: str
    claim: str
    source: str
    reproduced: bool | None  # None: the measurement does not decide it
    summary: str
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    command: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    claim: str
    source: str
    run: Callable[..., Finding]
    trains: bool


_STUDIES: dict[str, Study] = {}


def study(name: str, title: str, claim: str, source: str, trains: bool):
    def register(fn):
        _STUDIES[name] = Study(name, title, claim, source, fn, trains)
        return fn

    return register


def study_names() -> list[str]:
    return list(_STUDIES)


def get_study(name: str) -> Study:
    if name not in _STUDIES:
        import difflib

        close = difflib.get_close_matches(name, list(_STUDIES), n=2) or [s for s in _STUDIES if name and name in s][:2]
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ActlabError(f"unknown study {name!r}{hint} (studies: {', '.join(_STUDIES)})")
    return _STUDIES[name]


# ----- mean-field studies ------------------------------------------------------------------------------------


@study("selu-fixed-point", "SELU self-normalises",
       "Under LeCun-normal initialisation (mean 0, variance 1) is an attracting fixed point of SELU's moment map; "
       "the Jacobian's spectral norm there is about 0.7877 (< 1).",
       "Klambauer et al. (2017), Self-Normalizing Neural Networks, Theorem 1 and eq. 10", trains=False)
def _selu(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    from actlab.analysis import propagate, selu_jacobian
    from actlab.analysis.meanfield import iterate_moments

    J = selu_jacobian(0.0, 1.0)
    norm = float(np.linalg.norm(J, 2))
    starts = [(0.5, 1.5), (-0.5, 0.5), (0.3, 3.0), (-0.2, 0.2)]
    ends = [iterate_moments(m, v, steps=100)[-1] for m, v in starts]
    attracting = all(abs(m) < 1e-3 and abs(v - 1) < 1e-3 for m, v in ends)
    depth = 16 if quick else 64
    p = propagate("selu", depth=depth, width=512 if quick else 1024, sigma_w=1.0, sigma_b=0.0, seed=seeds)
    lines = [f"Jacobian of the moment map at (0, 1): [[{J[0, 0]:.6f}, {J[0, 1]:.6f}], [{J[1, 0]:.6f}, {J[1, 1]:.6f}]]",
             f"spectral norm: {norm:.5f} (paper: 0.7877)",
             "iterating the map from " + ", ".join(f"({m:g}, {v:g})" for m, v in starts) + " ends at "
             + ", ".join(f"({m:.2g}, {v:.4f})" for m, v in ends),
             f"Monte Carlo, random {depth}-layer SELU MLP (LeCun normal): layer {depth} pre-activation mean "
             f"{p.mean[-1]:+.3f}, variance {p.variance[-1]:.3f}"]
    ok = abs(norm - 0.7877) < 5e-4 and norm < 1 and attracting
    return Finding("selu-fixed-point", _STUDIES["selu-fixed-point"].claim, _STUDIES["selu-fixed-point"].source, ok,
                   f"spectral norm {norm:.4f}; (0, 1) {'attracts' if attracting else 'does not attract'} every start "
                   "tried", lines, {"jacobian": J.tolist(), "norm": norm, "ends": ends,
                                    "mc_mean": p.mean[-1], "mc_variance": p.variance[-1]}, quick)


@study("edge-of-chaos", "Edge of chaos of ReLU, leaky ReLU and ELU",
       "ReLU's edge of chaos is sigma_b = 0, sigma_w = sqrt(2); leaky ReLU's sqrt(2/(1+a^2)); ELU at sigma_b = 0.2 "
       "needs sigma_w about 1.22; on ReLU's edge of chaos 1 - c_l is about 9 pi^2 / (2 l^2).",
       "Hayou, Doucet & Rousseau (2019), On the Impact of the Activation Function on Deep Neural Networks Training",
       trains=False)
def _eoc(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    from actlab.analysis import edge_of_chaos
    from actlab.analysis.meanfield import relu_correlation_step

    relu = edge_of_chaos("relu").sigma_w
    leaky = {a: edge_of_chaos(f"leaky_relu({a})").sigma_w for a in (0.01, 0.2)}
    elu = edge_of_chaos("elu", sigma_b=0.2).sigma_w
    delta, ratios = 1.0, {}
    for layer in range(1, (1000 if quick else 100000) + 1):
        delta = relu_correlation_step(delta)
        if layer in (10, 100, 1000, 10000, 100000):
            ratios[layer] = delta / (9 * math.pi**2 / (2 * layer * layer))
    last = max(ratios)
    ok = (abs(relu - math.sqrt(2)) < 1e-9 and all(abs(v - math.sqrt(2 / (1 + a * a))) < 1e-9 for a, v in leaky.items())
          and abs(elu - 1.22) < 0.02 and abs(ratios[last] - 1) < 0.05)
    lines = [f"relu: sigma_w = {relu:.10f} (sqrt 2 = {math.sqrt(2):.10f})"]
    lines += [f"leaky_relu({a}): sigma_w = {v:.10f} (sqrt(2/(1+a^2)) = {math.sqrt(2 / (1 + a * a)):.10f})"
              for a, v in leaky.items()]
    lines.append(f"elu, sigma_b = 0.2: sigma_w = {elu:.4f} (paper: about 1.22)")
    lines.append("ReLU on its edge: (1 - c_l) / (9 pi^2 / 2 l^2) = "
                 + ", ".join(f"{r:.4f} at l = {layer}" for layer, r in ratios.items()))
    return Finding("edge-of-chaos", _STUDIES["edge-of-chaos"].claim, _STUDIES["edge-of-chaos"].source, ok,
                   f"relu {relu:.6f}, leaky(0.2) {leaky[0.2]:.6f}, elu(sigma_b=0.2) {elu:.4f}; asymptotic ratio "
                   f"{ratios[last]:.4f} at l = {last}", lines,
                   {"relu": relu, "leaky": leaky, "elu": elu, "ratios": ratios}, quick)


# ----- training studies ----------------------------------------------------------------------------------------


# How the training studies run their groups (backend, address, resources), set by run_study for its duration.
_EXECUTION: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("actlab_study_execution", default={})


def _compare(store, acts, task, seeds, study_name, progress=None, **recipe):
    from actlab.experiments.comparison.compare import run_comparison
    from actlab.experiments.comparison.config import StudyConfig
    from actlab.experiments.workload.tasks import resolve_task

    # These studies were declared with one lr, the task's (the studies issue revisits them): pinned, and said so.
    recipe.setdefault("lr", resolve_task(task).spec.recipe.lr)
    cfg = StudyConfig(activations=tuple(acts), task=task, seeds=seeds, store=store, study=study_name,
                      recipe_overrides=recipe, cost=False, **_EXECUTION.get())
    return run_comparison(cfg, progress=progress, command=f"actlab study {study_name}")


@study("swish-beta", "Swish interpolates between x/2 and ReLU",
       "swish_beta tends to ReLU as beta grows and equals x/2 at beta = 0; with beta trainable, networks learn "
       "their own beta per layer.",
       "Ramachandran, Zoph & Le (2017), Searching for Activation Functions, section 4", trains=True)
def _swish_beta(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    from actlab import catalog

    swish, relu = catalog.spec("swish"), catalog.spec("relu")
    x = np.linspace(-10, 10, 200001)
    z, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / math.sqrt(2 * math.pi)
    betas = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0]
    sup = {b: float(np.max(np.abs(swish.reference(x, beta=b) - relu.reference(x)))) for b in betas}
    l2 = {b: float(math.sqrt(np.dot(w, (swish.reference(z, beta=b) - relu.reference(z)) ** 2))) for b in betas}
    half = float(np.max(np.abs(swish.reference(x, beta=0.0) - x / 2)))
    result = _compare(store, ["swish(trainable=True)"], "mnist1d", seeds, "study:swish-beta", progress,
                      **({"epochs": 2, "batch_size": 200} if quick else {}))
    per_layer: dict[str, list[float]] = {}
    for t in result.trials:
        for k, v in json.loads(t["activation_params"]).items():
            per_layer.setdefault(k, []).append(v)
    monotone = all(sup[a] > sup[b] for a, b in zip(betas[1:], betas[2:]))
    ok = half == 0.0 and monotone and sup[100.0] < 3e-3
    lines = ["sup |swish_beta - relu| on [-10, 10]: " + ", ".join(f"beta={b:g}: {v:.4g}" for b, v in sup.items()),
             "L2 distance under N(0, 1): " + ", ".join(f"beta={b:g}: {v:.4g}" for b, v in l2.items()),
             f"sup |swish_0 - x/2| = {half:.3g}"]
    lines += [f"trained beta, layer {k}: mean {np.mean(v):.3f} (min {np.min(v):.3f}, max {np.max(v):.3f}) over "
              f"{len(v)} seeds" for k, v in sorted(per_layer.items())]
    return Finding("swish-beta", _STUDIES["swish-beta"].claim, _STUDIES["swish-beta"].source, ok,
                   f"distance to ReLU falls from {sup[0.5]:.3g} (beta 0.5) to {sup[100.0]:.3g} (beta 100); "
                   f"swish_0 = x/2 exactly; trained betas: "
                   + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in sorted(per_layer.items())),
                   lines, {"sup": sup, "l2": l2, "trained_betas": per_layer}, quick)


@study("depth", "Which activation collapses first as depth grows",
       "In deep MLPs with batch norm, accuracy collapses first for ReLU, then Swish, and last for Mish as depth "
       "grows (Swish paper v1 reports Swish better than ReLU beyond ~40 layers; the Mish paper adds Mish).",
       "Ramachandran et al. (2017, v1) section 5; Misra (2019) figure 2", trains=True)
def _depth(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    acts = ["relu", "swish", "mish", "leaky_relu"]
    depths = [2, 6] if quick else [2, 8, 16, 32, 48]
    recipe = {"epochs": 2, "batch_size": 200} if quick else {"epochs": 10}
    table: dict[str, dict[int, tuple[float, float, float]]] = {a: {} for a in acts}
    for d in depths:
        result = _compare(store, acts, f"mnist1d-mlp(depth={d}, width=64, norm=batch)", seeds,
                          f"study:depth:{d}", progress, **recipe)
        for s in result.summaries:
            table[s.activation][d] = (s.mean, s.ci_low, s.ci_high)
    best = {a: max(v[0] for v in table[a].values()) for a in acts}
    # collapse: the first depth where mean accuracy falls below 80% of the activation's own best; activations that
    # collapse at the same depth are ordered by their accuracy at the deepest depth (lower = collapsed harder)
    collapse = {a: next((d for d in depths if table[a][d][0] < 0.8 * best[a]), None) for a in acts}
    deepest = depths[-1]
    key = lambda a: (math.inf if collapse[a] is None else collapse[a], table[a][deepest][0])  # noqa: E731
    order = sorted(acts, key=key)
    reproduced = None if all(v is None for v in collapse.values()) else \
        order.index("relu") < order.index("swish") < order.index("mish")
    lines = ["mean test accuracy % [95% CI] by depth:"]
    for a in acts:
        lines.append(f"  {a:10s} " + "  ".join(f"d={d}: {100 * m:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
                                              for d, (m, lo, hi) in table[a].items()))
    lines.append("collapse depth (first depth below 80% of its best): "
                 + ", ".join(f"{a}: {collapse[a] if collapse[a] is not None else 'none up to ' + str(depths[-1])}"
                             for a in acts))
    lines.append(f"order (collapse depth, then accuracy at depth {deepest}): {' -> '.join(order)}")
    summary = ("no activation collapsed within the depths tried, so the order cannot be checked"
               if reproduced is None else f"collapse order: {' -> '.join(order)} (ties at the collapse depth broken "
               f"by accuracy at depth {deepest})")
    return Finding("depth", _STUDIES["depth"].claim, _STUDIES["depth"].source, reproduced, summary, lines,
                   {"table": {a: {str(d): v for d, v in t.items()} for a, t in table.items()},
                    "collapse": collapse, "depths": depths}, quick)


@study("ranking", "The catalogue ranked on MNIST-1D",
       "Folklore ranking: smooth non-monotonic activations (Swish, Mish, GELU) beat ReLU and its piecewise-linear "
       "variants, which beat saturating sigmoids.",
       "The seed tutorials (002, 003) and common write-ups; checked here, not assumed", trains=True)
def _ranking(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    from scipy import stats as sstats

    from actlab import catalog

    acts = ["relu", "swish", "sigmoid"] if quick else [
        n for n in catalog.names() if catalog.spec(n).kind == "elementwise" and n not in ("prelu",)]
    result = _compare(store, acts, "mnist1d", seeds, "study:ranking", progress,
                      **({"epochs": 2, "batch_size": 200} if quick else {}))
    from actlab.experiments.comparison.outcome import label_of

    scores = {s.activation: {} for s in result.summaries}
    for t in result.trials:
        scores[label_of(t)][t["seed_index"]] = t["final_correct"] / t["n_test"]
    labels = list(scores)
    common = sorted(set.intersection(*(set(v) for v in scores.values())))
    matrix = np.array([[scores[lab][i] for lab in labels] for i in common])  # seeds x activations
    ranks = np.mean([sstats.rankdata(-row) for row in matrix], axis=0)
    k, n = len(labels), len(common)
    friedman_p = float(sstats.friedmanchisquare(*matrix.T).pvalue) if k >= 3 and n >= 2 else math.nan
    q = float(sstats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)) if k >= 2 else math.nan
    cd = q * math.sqrt(k * (k + 1) / (6 * n)) if n else math.nan  # Nemenyi critical difference (Demsar 2006)
    order = [labels[i] for i in np.argsort(ranks)]
    summ = {s.activation: s for s in result.summaries}
    lines = [f"{'rank':>5}  {'activation':18s} accuracy % [95% CI]"]
    for pos, lab in enumerate(order, start=1):
        s = summ[lab]
        lines.append(f"{ranks[labels.index(lab)]:5.2f}  {lab:18s} {100 * s.mean:.2f} [{100 * s.ci_low:.2f}, "
                     f"{100 * s.ci_high:.2f}]")
    lines.append(f"Friedman p = {friedman_p:.3g}; Nemenyi critical difference of average ranks = {cd:.2f} "
                 f"({k} activations, {n} seeds): activations whose average ranks differ by less are not "
                 "distinguishable")
    smooth = [a for a in ("swish", "mish", "gelu") if a in labels]
    sat = [a for a in ("sigmoid", "tanh") if a in labels]
    r = {lab: ranks[labels.index(lab)] for lab in labels}
    # Reproduced: every smooth one ranks better than ReLU, and ReLU better than every saturating one, by more than
    # the critical difference. Not reproduced: some difference beyond it points the other way. Else undecided.
    reproduced = None
    if smooth and "relu" in r and sat:
        gaps = [r["relu"] - r[a] for a in smooth] + [r[a] - r["relu"] for a in sat]
        if all(g > cd for g in gaps):
            reproduced = True
        elif any(g < -cd for g in gaps):
            reproduced = False
    return Finding("ranking", _STUDIES["ranking"].claim, _STUDIES["ranking"].source, reproduced,
                   "best average rank: " + ", ".join(order[:3]) + f"; worst: {order[-1]}; critical difference {cd:.2f}",
                   lines, {"ranks": r, "cd": cd, "friedman_p": friedman_p, "order": order}, quick)


@study("noise", "Robustness to input noise",
       "GELU's accuracy degrades no faster than ReLU's and ELU's as uniform noise of growing amplitude is added to "
       "the test inputs.",
       "Hendrycks & Gimpel (2016), Gaussian Error Linear Units, section 3.1 (MNIST robustness)", trains=True)
def _noise(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    import torch
    from torch.func import functional_call

    from actlab.experiments.stats import mean_interval
    from actlab.experiments.training.trainer import build_models, train_group
    from actlab.experiments.workload.recipe import Recipe
    from actlab.experiments.workload.tasks import resolve_task

    acts = ["gelu", "relu", "elu"]
    amplitudes = [0.0, 0.5, 1.0, 2.0, 3.0]
    task = resolve_task("mnist1d")
    data = task.load()
    recipe = Recipe(epochs=2, batch_size=200) if quick else task.spec.recipe
    gen = torch.Generator().manual_seed(12345)
    noises = {a: (torch.rand(data.x_test.shape, generator=gen) * 2 - 1) * a for a in amplitudes}
    acc: dict[str, dict[float, list[float]]] = {a: {amp: [] for amp in amplitudes} for a in acts}
    for act in acts:
        results = train_group(task, data, act, False, recipe, 0, list(range(seeds)))
        model = build_models(task, data, act, False, recipe, 0, [0])[0].eval()
        for res in results:
            with torch.no_grad():
                for amp in amplitudes:
                    out = functional_call(model, res.final_state, (data.x_test + noises[amp],))
                    acc[act][amp].append(float((out.argmax(-1) == data.y_test).float().mean()))
    drop = {a: {amp: [c - n for c, n in zip(acc[a][0.0], acc[a][amp])] for amp in amplitudes[1:]} for a in acts}
    lines = ["test accuracy % (mean over seeds) by noise amplitude a, inputs + U(-a, a):"]
    for a in acts:
        lines.append(f"  {a:5s} " + "  ".join(f"a={amp:g}: {100 * np.mean(v):.1f}" for amp, v in acc[a].items()))
    worse, ci_text = False, []
    for other in ("relu", "elu"):
        for amp in amplitudes[1:]:
            diff = [g - o for g, o in zip(drop["gelu"][amp], drop[other][amp])]  # > 0: GELU lost more
            lo, hi = mean_interval(diff)
            ci_text.append(f"a={amp:g} vs {other}: {100 * np.mean(diff):+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]")
            worse = worse or lo > 0
    lines.append("GELU's extra accuracy drop in points (paired by seed, 95% t; > 0 means GELU degrades faster): "
                 + "; ".join(ci_text))
    from actlab.experiments.stats import MIN_SEEDS

    reproduced = None if seeds < MIN_SEEDS else not worse  # two or three seeds cannot carry an interval
    if reproduced is None:
        lines.append(f"undecided: {seeds} seeds are too few for the paired intervals (need {MIN_SEEDS} or more)")
    return Finding("noise", _STUDIES["noise"].claim, _STUDIES["noise"].source, reproduced,
                   ("too few seeds to decide; " if reproduced is None else "")
                   + "GELU " + ("never degrades significantly faster than ReLU or ELU" if not worse else
                                "degrades significantly faster than ReLU or ELU at some amplitude")
                   + f" (amplitudes {', '.join(f'{a:g}' for a in amplitudes[1:])}, {seeds} seeds)", lines,
                   {"accuracy": {a: {str(k): v for k, v in d.items()} for a, d in acc.items()}}, quick)


# The rule of glu-variants, declared before its first run (a change is a visible diff with its reason):
GLU_RULE = {
    "challengers": ("swiglu", "geglu", "squared_relu"),
    "baselines": ("relu", "gelu"),
    "test": "paired Wilcoxon signed-rank on final test bits per character, Holm over the 6 challenger x baseline "
            "pairs, with the 95% t interval of the difference",
    "supported": "every challenger has lower bits/char than every baseline: Holm p < 0.05 and the interval below 0",
    "contradicted": "some challenger is significantly worse (higher bits/char) than some baseline",
    "undecided": "anything else, or fewer seeds than min_seeds",
    "min_seeds": 8,  # Holm over 6 exact Wilcoxon tests cannot reach 0.05 below 8 seeds (6 * 2 / 2^7 > 0.05)
}


def glu_verdict(pairs, seeds: int) -> tuple[bool | None, str]:
    """GLU_RULE applied to the (challenger, baseline) pairs (lower is better); (reproduced, why)."""
    if seeds < GLU_RULE["min_seeds"]:
        return None, f"{seeds} seeds, fewer than the rule's minimum of {GLU_RULE['min_seeds']}"
    worse = [p for p in pairs if p.significant and p.mean_diff > 0]
    if worse:
        return False, "significantly worse: " + ", ".join(f"{p.a} vs {p.b}" for p in worse)
    better = [p for p in pairs if p.significant and p.mean_diff < 0]
    if len(better) == len(pairs):
        return True, "every challenger beats every baseline"
    missing = [f"{p.a} vs {p.b}" for p in pairs if p not in better]
    return None, "not significant: " + ", ".join(missing)


@study("glu-variants", "GLU variants and squared ReLU beat ReLU and GELU in a transformer's MLP",
       "At equal parameter counts, a transformer whose feed-forward layers use GEGLU or SwiGLU (Shazeer) or squared "
       "ReLU (So et al.) models language better than one using ReLU or GELU.",
       "Shazeer (2020), GLU Variants Improve Transformer; So et al. (2021), Primer, section 4", trains=True)
def _glu_variants(seeds: int, quick: bool, store: str, progress=None) -> Finding:
    from actlab.experiments import stats
    from actlab.experiments.comparison.compare import run_comparison
    from actlab.experiments.comparison.config import StudyConfig

    acts = GLU_RULE["baselines"] + GLU_RULE["challengers"]
    task = "lm(d_model=16, layers=1, heads=2, context=16, train_chars=6000, eval_chars=3000)" if quick else "lm"
    extra: dict[str, Any] = {"tune_lr": (3e-3, 1e-2), "tune_seeds": 1, "recipe_overrides": {"epochs": 1}} if quick \
        else {}
    cfg = StudyConfig(activations=acts, task=task, seeds=seeds, store=store, study="study:glu-variants", cost=False,
                      **extra, **_EXECUTION.get())
    result = run_comparison(cfg, progress=progress, command="actlab study glu-variants")
    scores = result.outcome.scores
    pairs = stats.pairwise(scores, [(c, b) for c in GLU_RULE["challengers"] for b in GLU_RULE["baselines"]],
                           higher_is_better=False)
    reproduced, why = glu_verdict(pairs, min(len(v) for v in scores.values()))
    m = result.outcome.metric
    lines = [f"protocol: task {result.task.text}, {seeds} seeds, {result.recipe.epochs} epochs, each activation's lr "
             f"chosen on the validation files from {result.lr_grid}; parameters "
             + ", ".join(f"{r['activation']} {r['parameters']:,}" for r in result.outcome.rows),
             "test bits/char (mean [95% CI]): " + ", ".join(
                 f"{s.activation} {m.fmt(s.mean)} [{m.fmt(s.ci_low)}, {m.fmt(s.ci_high)}]" for s in result.summaries),
             "chosen lr: " + ", ".join(f"{k} {v:g}" for k, v in result.chosen_lr.items()),
             "rule (declared before the first run): " + GLU_RULE["supported"] + "; " + GLU_RULE["test"]]
    lines += ["  " + m.verdict(p) for p in pairs]
    lines.append("differences from the sources: a 2-block, d_model 48 byte-level model trained for 2 epochs on "
                 "100 kB of Python source on a CPU, against T5-size models on C4 (Shazeer) and Primer's search "
                 "scale; the direction is what is tested, not the size of the effect")
    return Finding("glu-variants", _STUDIES["glu-variants"].claim, _STUDIES["glu-variants"].source, reproduced,
                   why, lines, {"bits_per_char": {k: list(v.values()) for k, v in scores.items()},
                                "chosen_lr": result.chosen_lr}, quick)


def run_study(name: str, seeds: int | None = None, quick: bool = False, store: str = "runs/actlab.db",
              progress=None, command: str = "", **execution: Any) -> Finding:
    """Run a study. ``execution``: how its trainings run, as StudyConfig fields (backend="ray", address,
    cpus_per_group, gpus_per_group, max_retries, jobs)."""
    s = get_study(name)
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ActlabError(f"--seeds {seeds!r}: expected an integer >= 1")
    n = seeds if seeds is not None else (2 if quick else 10)
    if execution:
        from actlab.experiments.comparison.config import StudyConfig

        StudyConfig(activations=("relu",), **execution)  # bad values fail before anything runs
    token = _EXECUTION.set({k: v for k, v in execution.items() if v is not None})
    try:
        finding = s.run(n, quick, store, progress)
    finally:
        _EXECUTION.reset(token)
    finding.command = command or f"actlab study {name}" + (" --quick" if quick else "") + \
        (f" --seeds {seeds}" if seeds is not None else "")
    from actlab.experiments.results.store import Store

    with Store(store) as st:
        st.write_finding(finding.as_dict())
    return finding
