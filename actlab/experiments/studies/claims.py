"""The source tutorials' claims, each declared as a study before it runs (``actlab claims``).

The four write-ups actlab grew from (../shared/seeds: 000 "Swish vs Leaky ReLU", 002 "from Sigmoid to Swish", 003
"Swish, the self-gated activation", 004 "ReLU variants") make claims without measurements. Each testable one is
quoted here in English with its file, tested at small scale on the offline tasks, and given one of three verdicts.
Where the claim is about settings that cannot be reached offline (ImageNet, edge devices, LLMs), the nearest small
analogue is tested and the difference is listed. Protocols are shared with the published studies where they ask
the same question, so their trials are trained once and reused from the store.
"""

from __future__ import annotations

import math

import numpy as np

from actlab.experiments import stats
from actlab.experiments.studies.declaration import Context, Measurement, Study, declare
from actlab.experiments.studies.papers import DEEP, DEPTH_ACTS, QUICK_DEPTHS, compare_lm, depth_scores
from actlab.experiments.studies.rules import AllOf, Bound, Equivalent, Paired
from actlab.experiments.studies.running import accuracies, compare, study_record, trained

RECOMMENDED = {"init": "recommended"}


def _tutorial(name: str, title: str, claim: str, files: str, protocol: str, rule, measure, differences=(),
              trains: bool = True, quick: str = "2 epochs, 2 seeds: undecided by the rule's minimum") -> Study:
    return declare(Study(name=name, title=title, claim=claim, source=f"tutorial {files} (../shared/seeds)",
                         protocol=protocol, rule=rule, measure=measure, differences=tuple(differences), kind="tutorial",
                         trains=trains, quick=quick, seeds=10))


# ----- 002/003/004: Swish in deep networks -------------------------------------------------------------------------

def _swish_deep(ctx: Context) -> Measurement:
    scores, lines, numbers = depth_scores(ctx, "claim:swish-deep")
    if ctx.quick:
        for a in DEPTH_ACTS:
            for deep in DEEP:
                scores[f"{a} @ depth {deep}"] = scores[f"{a} @ depth {QUICK_DEPTHS[-1]}"]
        lines.append("quick: depths 2 and 6 only; the rule reads depth 6 in place of 48 and 64")
    return Measurement(scores, lines, numbers)


_tutorial(
    "swish-deep", "Swish beats ReLU in deep networks, not in shallow ones",
    "Swish is clearly better than ReLU in fully connected networks deeper than 40 layers; within 40 layers the gap "
    "is small.", "003_52ae2f8063264270.txt (also 002, 004)",
    "the depth study's protocol and trials (actlab study depth): MNIST-1D MLPs of width 64 with batch norm, lr chosen "
    "per activation and depth on validation, 10 seeds",
    AllOf((("deep", Paired(tuple((f"swish @ depth {d}", f"relu @ depth {d}") for d in DEEP), min_seeds=7)),
           ("shallow", Equivalent((("swish @ depth 2", "relu @ depth 2"),), margin=0.01, min_seeds=5)))),
    _swish_deep,
    ("MNIST-1D instead of the Swish paper's CIFAR / MNIST setups", "'small gap' is read as within 1 point at depth 2"),
)


# ----- 000: Swish vs Leaky ReLU --------------------------------------------------------------------------------------

EARLY_EPOCH = 3


def _early_accuracy(ctx: Context, result, label: str, epoch: int) -> dict[int, float]:
    from actlab.experiments.results.store import Store

    ids = {t["trial_id"]: t["seed_index"] for t in result.trials if t["activation"] == label}
    with Store(ctx.store) as st:
        rows = st.epochs(list(ids))
    return {ids[r["trial_id"]]: r["test_acc"] for r in rows if r["epoch"] == epoch}


def _swish_vs_leaky(ctx: Context) -> Measurement:
    acts = ("swish", "leaky_relu")
    scores: dict[str, dict[int, float]] = {}
    lines = []
    for task, tag in (("digits(model='cnn')", "images"), ("mnist1d", "signals")):
        result = compare(ctx, acts, task, f"claim:swish-vs-leaky:{tag}", recipe=RECOMMENDED)
        for a in acts:
            scores[f"{a} on {tag}"] = dict(result.outcome.scores[a])
        lines.append(f"{task}: {accuracies(result)}")
        if tag == "images":
            epoch = 1 if ctx.quick else EARLY_EPOCH
            for a in acts:
                scores[f"{a} on images after epoch {EARLY_EPOCH}"] = _early_accuracy(ctx, result, a, epoch)
            lines.append(f"test accuracy after epoch {epoch} of {result.recipe.epochs} on images: " + ", ".join(
                f"{a} {100 * np.mean(list(scores[f'{a} on images after epoch {EARLY_EPOCH}'].values())):.2f}%"
                for a in acts))
    return Measurement(scores, lines)


_tutorial(
    "swish-vs-leaky", "Swish beats Leaky ReLU and converges faster",
    "Swish usually performs better than Leaky ReLU, especially in image classification, and it converges faster.",
    "000_f0839ae504e81f07.txt",
    "scikit-learn digits with the 2-D CNN (images; AdamW, 30 epochs) and MNIST-1D with the MLP (signals; 25 epochs); "
    "each activation's lr chosen on validation; recommended init; 'converges faster': test accuracy after epoch 3 of "
    "30 on the images; 10 seeds",
    AllOf((("better", Paired((("swish on images", "leaky_relu on images"),
                              ("swish on signals", "leaky_relu on signals")), min_seeds=7)),
           ("faster", Paired(((f"swish on images after epoch {EARLY_EPOCH}",
                               f"leaky_relu on images after epoch {EARLY_EPOCH}"),), min_seeds=6,
                             metric=f"test accuracy after epoch {EARLY_EPOCH}")))),
    _swish_vs_leaky,
    ("8x8 digits stand in for image classification", "'especially on images' is reported (both tasks' effects), not "
     "tested as an interaction: the two tasks share no seeds' meaning"),
)


def _native_ratios(ctx: Context, ours: str, theirs: tuple[str, ...]) -> tuple[dict[str, dict[int, float]], list[str]]:
    """Per-round time ratios of PyTorch's own modules, forward + backward on a (256, 1024) float32 tensor."""
    import torch
    from torch import nn

    from actlab.timing import interleaved

    modules = {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(), "swish": nn.SiLU(), "mish": nn.Mish()}
    x = torch.randn(256, 1024, requires_grad=True)
    g = torch.randn(256, 1024)

    def step(m):
        return lambda: torch.autograd.backward(m(x), g)

    rounds = 6 if ctx.quick else 30
    times = interleaved({n: step(modules[n]) for n in (ours, *theirs)}, "cpu", rounds, 0.005 if ctx.quick else 0.02)
    scores = {f"{ours} / {t} time": {i: a / b for i, (a, b) in enumerate(zip(times[ours], times[t]))} for t in theirs}
    lines = [f"forward + backward of PyTorch's own modules on (256, 1024) float32, {rounds} interleaved rounds: "
             + ", ".join(f"{n} {1e6 * float(np.median(times[n])):.0f} us" for n in (ours, *theirs))]
    return scores, lines


def _relu_cheaper(ctx: Context) -> Measurement:
    scores, lines = _native_ratios(ctx, "swish", ("relu", "leaky_relu"))
    return Measurement(scores, lines)


_tutorial(
    "relu-cheaper", "ReLU and Leaky ReLU cost less than Swish",
    "ReLU and Leaky ReLU are cheap to compute and suit lightweight models and edge devices; Swish adds computational "
    "cost.", "000_f0839ae504e81f07.txt (also 004's selection table)",
    "PyTorch's own modules (nn.SiLU, nn.ReLU, nn.LeakyReLU), forward + backward on a (256, 1024) float32 tensor on "
    "this machine's CPU, 30 interleaved rounds; the per-round time ratio swish / other is the sample",
    Bound((("swish / relu time", "above", 1.0), ("swish / leaky_relu time", "above", 1.0)), min_seeds=5, digits=2,
          unit="x"),
    _relu_cheaper,
    ("a desktop CPU, not an edge device", "the activation alone: in a whole network its share of the time is "
     "smaller (actlab compare's cost column measures that)"),
    trains=False, quick="6 rounds",
)


# ----- 003: tips for Swish -----------------------------------------------------------------------------------------

def _trainable_beta(ctx: Context) -> Measurement:
    result = compare(ctx, ("swish(trainable=True)", "swish"), "mnist1d", "claim:trainable-beta", recipe=RECOMMENDED)
    return Measurement(dict(result.outcome.scores), [accuracies(result)])


_tutorial(
    "trainable-beta", "A trainable beta helps Swish",
    "Swish's beta can be made trainable, letting the network learn the best value.", "003_52ae2f8063264270.txt",
    "MNIST-1D MLP 40-256-256-10 (25 epochs, AdamW), swish with beta trained per layer (from 1) against beta fixed at "
    "1, each with its own lr chosen on validation; recommended init; 10 seeds",
    Paired((("swish[trainable]", "swish"),), min_seeds=6),
    _trainable_beta, ("one small task; the claim implies it helps in general",),
)

LR_GRID = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2)


def _lower_lr(ctx: Context) -> Measurement:
    from actlab.experiments.results.store import Store

    result = compare(ctx, ("swish", "relu"), "mnist1d", "claim:swish-lower-lr", tune_lr=LR_GRID, recipe=RECOMMENDED,
                     tune_seeds=ctx.seeds, seeds=ctx.seeds)
    with Store(ctx.store) as st:
        record = st.study(study_record(ctx, "claim:swish-lower-lr"))
        assert record is not None  # compare() just wrote it
        members = record["members"]
        rows = [t for t in st.trials(list(members.values())) if t["phase"] == "tune"]
    grid = result.lr_grid or LR_GRID  # what ran: --quick keeps two rates of the declared grid
    best: dict[str, dict[int, tuple[float, float]]] = {}
    for t in rows:
        score = t["final_correct"] / t["n_test"]
        cur = best.setdefault(t["activation"], {}).get(t["seed_index"])
        if cur is None or score > cur[1] or (score == cur[1] and t["lr"] < cur[0]):
            best[t["activation"]][t["seed_index"]] = (t["lr"], score)
    scores = {a: {i: math.log10(lr) for i, (lr, _) in by.items()} for a, by in best.items()}
    lines = [f"validation-best lr per seed from {', '.join(f'{g:g}' for g in grid)}: "
             + "; ".join(f"{a}: " + ", ".join(f"{10 ** v:g}" for _, v in sorted(s.items())) for a, s in scores.items())]
    return Measurement(scores, lines, {"best_lr": {a: {i: 10 ** v for i, v in s.items()} for a, s in scores.items()}},
                       f"ran with the lr grid {', '.join(f'{g:g}' for g in grid)}; chosen lr over all seeds: "
                       + ", ".join(f"{k} {v:g}" for k, v in result.chosen_lr.items()))


_tutorial(
    "swish-lower-lr", "Swish wants a slightly lower learning rate than ReLU",
    "When training Swish networks, a slightly lower learning rate than the one used for ReLU works well.",
    "003_52ae2f8063264270.txt",
    f"MNIST-1D MLP (25 epochs, AdamW, cosine); for every seed, the lr with the best validation accuracy from "
    f"{', '.join(f'{g:g}' for g in LR_GRID)} (ties: the smaller), for swish and relu; the sample is log10 of each "
    "seed's best lr, paired by seed; recommended init; 10 seeds",
    Paired((("swish", "relu"),), min_seeds=6, higher_is_better=False, scale=1.0, unit=" decades", digits=3,
           metric="log10 of the validation-best lr"),
    _lower_lr, ("AdamW; the tip was written for SGD-era training", "a grid of 6 rates: a smaller difference than one "
                "grid step cannot be seen"),
    quick="two rates, 2 epochs, 2 seeds: undecided by the rule's minimum",
)


def _bn_scale(ctx: Context) -> Measurement:
    scores: dict[str, dict[int, float]] = {}
    lines = []
    for norm, tag in (("batch", "with scale"), ("batch-noscale", "without scale")):
        result = compare(ctx, ("swish", "relu"), f"mnist1d-mlp(depth=8, width=64, norm='{norm}')",
                         f"claim:bn-scale:{norm}", recipe=RECOMMENDED)
        for a in ("swish", "relu"):
            scores[f"{a}, BN {tag}"] = dict(result.outcome.scores[a])
        lines.append(f"BN {tag}: {accuracies(result)}")
    ctrl = stats.pairwise(scores, [("relu, BN with scale", "relu, BN without scale")], method="t")[0]
    lines.append("for comparison (not part of the rule), relu: " + ctrl.verdict("accuracy"))
    return Measurement(scores, lines)


_tutorial(
    "bn-scale", "Keep batch norm's scale with Swish",
    "With BatchNorm, keep its scale parameter: libraries turn it off for ReLU (piecewise linear), but that does not "
    "suit Swish.", "003_52ae2f8063264270.txt",
    "MNIST-1D MLP of 8 hidden layers of 64, batch norm with its learned scale (gamma) against batch norm without it "
    "(shift kept, as Keras's scale=False); swish (relu reported for comparison); lr chosen on validation; "
    "recommended init; 10 seeds",
    Paired((("swish, BN with scale", "swish, BN without scale"),), min_seeds=6),
    _bn_scale, ("the two variants are different tasks, so a seed index does not share initial weights between them; "
                "the pairing is by seed index only",),
)


# ----- 000/002/004: dying ReLU ---------------------------------------------------------------------------------

def _activation_inputs(model, x):
    """Per activation module, the (examples, units) inputs it sees on ``x``."""
    import torch

    from actlab.nn import Activation

    seen = []
    hooks = [m.register_forward_hook(lambda m, inp, out: seen.append((inp[0].detach(), out.detach())))
             for m in model.modules() if isinstance(m, Activation)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _inactive_fraction(model, x) -> float:
    seen = _activation_inputs(model, x)
    dead = sum(int((inp.flatten(1) <= 0).all(0).sum()) for inp, _ in seen)
    return dead / sum(inp.flatten(1).shape[1] for inp, _ in seen)


def _relu_dies(ctx: Context) -> Measurement:
    acts = ("relu", "leaky_relu", "prelu")
    result = compare(ctx, acts, "mnist1d", "claim:relu-dies", recipe=RECOMMENDED)
    x = result.task.load().x_test
    scores = {f"{a} inactive units": {i: _inactive_fraction(m, x) for i, m in trained(ctx, result, a)} for a in acts}
    lines = ["hidden units whose pre-activation is <= 0 for every test example (for ReLU: dead, zero gradient): "
             + ", ".join(f"{a} {100 * np.mean(list(scores[f'{a} inactive units'].values())):.2f}% "
                         f"(lr {result.chosen_lr[a]:g})" for a in acts),
             "accuracy: " + ", ".join(f"{s.activation} {100 * s.mean:.2f}%" for s in result.summaries)]
    return Measurement(scores, lines)


_tutorial(
    "relu-dies", "ReLU units die; Leaky ReLU and PReLU prevent it",
    "ReLU neurons can die (stay inactive for every input, so they never update again); Leaky ReLU and PReLU fix "
    "this.", "004_21c7bd8904b94387.txt (also 000, 002)",
    "MNIST-1D MLP 40-256-256-10 trained 25 epochs at each activation's lr chosen on validation; after training, "
    "the fraction of hidden units whose pre-activation is <= 0 on every test example; recommended init; 10 seeds",
    AllOf((("dies", Bound((("relu inactive units", "above", 0.01),), min_seeds=5, scale=100.0, unit="%", digits=2)),
           ("fixed", Paired((("leaky_relu inactive units", "relu inactive units"),
                             ("prelu inactive units", "relu inactive units")), min_seeds=7, higher_is_better=False,
                            unit=" points of units", metric="share of units inactive on every test example")))),
    _relu_dies, ("'dies' is read as at least 1% of units dead after training at a tuned lr; at larger rates more "
                 "die", "for Leaky ReLU and PReLU such a unit still passes a small gradient: the rule asks whether "
                 "fewer units end up stuck below zero"),
)


# ----- 004: ELU, SELU, RReLU, Mish ------------------------------------------------------------------------------------

def _mean_abs_activation(model, x) -> float:
    seen = _activation_inputs(model, x)
    return float(np.mean([out.flatten(1).mean(0).abs().mean().item() for _, out in seen]))


def _elu_mean(ctx: Context) -> Measurement:
    acts = ("elu", "relu")
    result = compare(ctx, acts, "mnist1d", "claim:elu-mean", recipe=RECOMMENDED)
    x = result.task.load().x_test
    scores = {f"{a} |mean activation|": {i: _mean_abs_activation(m, x) for i, m in trained(ctx, result, a)}
              for a in acts}
    lines = ["mean over layers and units of |mean output over the test set|: "
             + ", ".join(f"{a} {np.mean(list(scores[f'{a} |mean activation|'].values())):.3f}" for a in acts)]
    return Measurement(scores, lines)


_tutorial(
    "elu-mean", "ELU keeps mean activations near zero",
    "ELU's outputs have a mean close to zero, which eases vanishing gradients.", "004_21c7bd8904b94387.txt",
    "MNIST-1D MLP 40-256-256-10 trained at each activation's lr chosen on validation; after training, the absolute "
    "mean output of each hidden unit over the test set, averaged over units and layers; ELU against ReLU, paired; "
    "recommended init; 10 seeds",
    Paired((("elu |mean activation|", "relu |mean activation|"),), min_seeds=6, higher_is_better=False, scale=1.0,
           unit="", digits=3, metric="|mean activation|"),
    _elu_mean, ("'near zero' is tested relative to ReLU, as in Clevert et al. (2016)",),
)


def _selu_init(ctx: Context) -> Measurement:
    from actlab.analysis import propagate

    scores: dict[str, dict[int, float]] = {}
    lines = []
    for init, tag in (("lecun", "LeCun normal"), ("default", "PyTorch default init")):
        result = compare(ctx, ("selu",), "mnist1d-mlp(depth=16, width=64)", f"claim:selu-init:{init}",
                         recipe={"init": init})
        scores[f"selu, {tag}"] = dict(result.outcome.scores["selu"])
        lines.append(f"{tag}: {accuracies(result)}")
    for sigma_w, tag in ((1.0, "LeCun normal"), (1 / math.sqrt(3), "PyTorch default (variance 1/(3 fan_in))")):
        p = propagate("selu", depth=16, width=512, sigma_w=sigma_w, sigma_b=0.0, seed=0)
        lines.append(f"at initialisation, {tag}: layer-16 pre-activation variance {p.variance[-1]:.3g}")
    return Measurement(scores, lines)


_tutorial(
    "selu-init", "SELU needs its initialisation",
    "SELU self-normalises (activations keep mean 0 and variance 1) but must be used with its Gaussian (LeCun "
    "normal) initialisation, or it may fail.", "004_21c7bd8904b94387.txt",
    "MNIST-1D MLP of 16 hidden layers of 64 without normalisation; SELU with LeCun-normal weights against PyTorch's "
    "default initialisation, each with its lr chosen on validation; 10 seeds; the variance at initialisation is "
    "reported from a Monte Carlo propagation",
    Paired((("selu, LeCun normal", "selu, PyTorch default init"),), min_seeds=6),
    _selu_init, ("no alpha-dropout; 16 layers, not the paper's up to 32",),
)


RRELU_MEAN_SLOPE = (1 / 8 + 1 / 3) / 2  # RReLU's slope at evaluation time


def _rrelu(ctx: Context) -> Measurement:
    leaky = f"leaky_relu(negative_slope={RRELU_MEAN_SLOPE!r})"
    result = compare(ctx, ("rrelu", leaky), "mnist1d", "claim:rrelu", recipe=RECOMMENDED)
    data = result.task.load()
    scores: dict[str, dict[int, float]] = {}
    for label, tag in (("rrelu", "rrelu"), (leaky, "leaky_relu")):
        for i, m in trained(ctx, result, label):
            import torch

            with torch.no_grad():
                train = float((m(data.x_train).argmax(-1) == data.y_train).float().mean())
                test = float((m(data.x_test).argmax(-1) == data.y_test).float().mean())
            scores.setdefault(f"{tag} gap", {})[i] = train - test
            scores.setdefault(f"{tag} test", {})[i] = test
    lines = ["train - test accuracy (points): " + ", ".join(
        f"{t} {100 * np.mean(list(scores[f'{t} gap'].values())):.2f}" for t in ("rrelu", "leaky_relu"))
        + "; test accuracy: " + ", ".join(f"{t} {100 * np.mean(list(scores[f'{t} test'].values())):.2f}%"
                                          for t in ("rrelu", "leaky_relu"))]
    return Measurement(scores, lines)


_tutorial(
    "rrelu-regularises", "RReLU regularises",
    "RReLU samples its negative slope at random during training, which strengthens regularisation.",
    "004_21c7bd8904b94387.txt",
    f"MNIST-1D MLP 40-256-256-10 (25 epochs, weight decay 0.05); RReLU (slopes U(1/8, 1/3) in training) against "
    f"Leaky ReLU at RReLU's evaluation slope {RRELU_MEAN_SLOPE:.4f}; generalisation gap = train accuracy - test "
    "accuracy after training, paired by seed; lr chosen on validation; recommended init; 10 seeds",
    Paired((("rrelu gap", "leaky_relu gap"),), min_seeds=6, higher_is_better=False,
           metric="train - test accuracy gap"),
    _rrelu, ("'regularises' is read as a smaller train-test gap; test accuracy is reported, not judged",),
)


def _mish_images(ctx: Context) -> Measurement:
    result = compare(ctx, ("mish", "swish"), "digits(model='cnn')", "claim:mish-vs-swish", recipe=RECOMMENDED)
    scores = dict(result.outcome.scores)
    ratios, cost_lines = _native_ratios(ctx, "mish", ("swish",))
    scores.update(ratios)
    lines = [accuracies(result), *cost_lines]
    return Measurement(scores, lines)


_tutorial(
    "mish-vs-swish", "Mish beats Swish on images, at a higher cost",
    "Mish performs very well on image and speech tasks, but costs more to compute.", "004_21c7bd8904b94387.txt",
    "scikit-learn digits with the 2-D CNN (30 epochs, AdamW), lr chosen on validation, recommended init, 10 seeds; "
    "cost: PyTorch's nn.Mish against nn.SiLU, forward + backward on (256, 1024) float32, 30 interleaved rounds",
    AllOf((("better", Paired((("mish", "swish"),), min_seeds=6)),
           ("costlier", Bound((("mish / swish time", "above", 1.0),), min_seeds=5, digits=2, unit="x")))),
    _mish_images, ("8x8 digits stand in for image tasks; speech is not tested",),
)


# ----- 002: vanishing gradients ------------------------------------------------------------------------------------

VANISH_DEPTH = 32


def _vanishing(ctx: Context) -> Measurement:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from actlab.experiments.training.trainer import build_models
    from actlab.experiments.workload.recipe import Recipe
    from actlab.experiments.workload.tasks import resolve_task

    task = resolve_task(f"mnist1d-mlp(depth={VANISH_DEPTH}, width=64)")
    data = task.load()
    x, y = data.x_train[:256], data.y_train[:256]
    def log_ratio(model) -> float:
        F.cross_entropy(model(x), y).backward()
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        grads = [m.weight.grad for m in (linears[0], linears[-2])]  # hidden layers 1 and L
        assert grads[0] is not None and grads[1] is not None
        first, last = grads[0].norm(), grads[1].norm()
        return float(torch.log10(first / last))

    scores: dict[str, dict[int, float]] = {}
    default: dict[str, float] = {}
    for act in ("sigmoid", "tanh", "relu"):
        models = build_models(task, data, act, False, Recipe(init="recommended"), 0, list(range(ctx.seeds)))
        scores[act] = {seed: log_ratio(m) for seed, m in enumerate(models)}
        default[act] = float(np.mean([log_ratio(m) for m in build_models(task, data, act, False, Recipe(), 0,
                                                                           list(range(ctx.seeds)))]))
    lines = [f"log10(|grad W_1| / |grad W_{VANISH_DEPTH}|) at initialisation, {VANISH_DEPTH} hidden layers of 64, "
             "recommended init: " + ", ".join(f"{a} {np.mean(list(v.values())):+.2f}" for a, v in scores.items()),
             "for comparison (not part of the rule), PyTorch's default init (weight variance 1/(3 fan_in)): "
             + ", ".join(f"{a} {v:+.2f}" for a, v in default.items())]
    return Measurement(scores, lines)


_tutorial(
    "vanishing-gradients", "Sigmoid and tanh make gradients vanish with depth",
    "Sigmoid and tanh suffer from vanishing gradients: as inputs saturate the gradient goes to zero; ReLU's "
    "constant gradient of 1 on the positive side relieves this.", "002_7ef1b46937517546.txt",
    f"MLP of {VANISH_DEPTH} hidden layers of 64 on MNIST-1D at initialisation (no training, no normalisation), each "
    "activation with its recommended init (Glorot for sigmoid and tanh, He for ReLU); one batch of 256 training "
    "examples; the sample is log10 of the first hidden layer's weight-gradient norm over the last one's, per seed; "
    "'vanish' means below -1 (10x smaller)",
    Bound((("sigmoid", "below", -1.0), ("tanh", "below", -1.0), ("relu", "above", -1.0)), min_seeds=5, digits=2,
          unit=" decades"),
    _vanishing, ("at initialisation only; training with Adam rescales per-parameter steps",), trains=False,
    quick="2 seeds: undecided by the rule's minimum",
)


# ----- 003/004: Swish and GELU ---------------------------------------------------------------------------------------

def _swish_gelu(ctx: Context) -> Measurement:
    from actlab import catalog

    result = compare(ctx, ("swish", "gelu"), "mnist1d", "claim:swish-gelu", recipe=RECOMMENDED)
    x = np.linspace(-10, 10, 200001)
    sup = float(np.max(np.abs(catalog.spec("swish").reference(x) - catalog.spec("gelu").reference(x))))
    lines = [accuracies(result), f"as functions: sup |swish - gelu| on [-10, 10] = {sup:.4f}"]
    return Measurement(dict(result.outcome.scores), lines, {"sup": sup})


_tutorial(
    "swish-gelu", "Swish and GELU perform alike",
    "Swish and GELU are similar (both smooth, input weighted by a probability) and perform closely in practice.",
    "003_52ae2f8063264270.txt (also 004)",
    "MNIST-1D MLP 40-256-256-10 (25 epochs, AdamW), lr chosen on validation, recommended init, 10 seeds; 'closely' "
    "is declared as a paired difference within 0.5 points",
    Equivalent((("swish", "gelu"),), margin=0.005, min_seeds=5),
    _swish_gelu, ("one small task",),
)


def _transformer(ctx: Context) -> Measurement:
    result = compare_lm(ctx, ("relu", "gelu", "swish"), "claim:transformer")
    m = result.outcome.metric
    lines = ["test bits/char: " + ", ".join(f"{s.activation} {stats.interval_text(s.mean, s.ci_low, s.ci_high, m.fmt)}"
                                            f" (lr {result.chosen_lr[s.activation]:g})" for s in result.summaries)]
    return Measurement(dict(result.outcome.scores), lines)


_tutorial(
    "transformer", "GELU and Swish beat ReLU in Transformers",
    "In deep architectures such as the Transformer, Swish and GELU perform better (than ReLU).",
    "002_7ef1b46937517546.txt",
    "task lm (byte-level decoder, 2 blocks, d_model 48, Python standard-library source), MLP activation relu, gelu or "
    "swish at equal parameters, lr chosen on the validation files, test bits per character (lower is better), "
    "10 seeds; relu's and gelu's trials are shared with actlab study glu-variants",
    Paired((("gelu", "relu"), ("swish", "relu")), min_seeds=7, higher_is_better=False, scale=1.0,
           unit=" bits/char", digits=3, metric="test bits per character"),
    _transformer, ("a small byte-level model on Python source instead of BERT/GPT-scale models on natural text",),
    quick="a 1-block d_model 16 model, 1 epoch, 2 seeds: undecided by the rule's minimum",
)
