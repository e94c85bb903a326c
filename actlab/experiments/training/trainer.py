"""Train every seed of one trial group at once.

The seed-vectorized path stacks the S models' parameters (torch.func.stack_module_state) and runs forward,
backward and the optimizer step for all seeds as one batched computation (vmap over functional_call); it is
mathematically the same as training each seed alone, which ``per-seed`` mode does (and a test compares). Models
that cannot be batched (BatchNorm keeps running statistics, updated in place) fall back to the per-seed loop,
and the result says so.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from actlab.catalog import resolve
from actlab.experiments.training.optim import FunctionalOptimizer
from actlab.experiments.training.seeding import derive_seed
from actlab.experiments.workload.data import Dataset
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import Task
from actlab.nn import Activation, get

EVAL_CHUNK = 2048
EVAL_TARGETS = 65536  # sequences: targets per evaluation chunk
DEAD_BATCH = 512


@dataclass
class EpochRow:
    epoch: int
    train_loss: float
    test_loss: float
    test_acc: float
    dead_fraction: float
    train_seconds: float
    test_correct: int = 0  # the exact count behind test_acc, so equal counts compare equal


@dataclass
class TrialResult:
    seed_index: int
    init_seed: int
    data_seed: int
    lr: float
    epochs: list[EpochRow] = field(default_factory=list)
    diverged_epoch: int | None = None
    vectorized: bool = True
    note: str = ""
    activation_params: dict[str, float] = field(default_factory=dict)
    final_state: dict[str, torch.Tensor] | None = None  # the trained parameters (and buffers), for further evaluation

    @property
    def status(self) -> str:
        return "diverged" if self.diverged_epoch is not None else "ok"


def make_activation_factory(activation: str, trainable: bool):
    get(activation, trainable=trainable)  # validate before any model is built
    return lambda: get(activation, trainable=trainable)


def _init_weights(model: nn.Module, scheme: str, activation: str) -> None:
    if scheme == "default":
        return
    if scheme == "recommended":
        scheme = resolve(activation).spec.init
    gain = 1.0
    if scheme == "kaiming":
        resolved = resolve(activation)
        measured = resolved.spec.measure(**resolved.params).gain
        gain = measured if measured else 1.0
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            fan_out = m.weight.shape[0] * m.weight[0][0].numel()
            std = {"kaiming": gain / math.sqrt(fan_in), "lecun": 1.0 / math.sqrt(fan_in),
                   "xavier": math.sqrt(2.0 / (fan_in + fan_out))}[scheme]
            with torch.no_grad():
                m.weight.normal_(0.0, std)
                if m.bias is not None:
                    m.bias.zero_()


def build_models(task: Task, dataset: Dataset, activation: str, trainable: bool, recipe: Recipe, base_seed: int,
                 seed_indices: Sequence[int]) -> list[nn.Module]:
    """One model per seed index, initialised from derive_seed(base, task, i, "init"): activations with the same
    parameter shapes get identical initial weights for the same seed index."""
    make_act = make_activation_factory(activation, trainable)
    out = []
    for i in seed_indices:
        torch.manual_seed(derive_seed(base_seed, task.text, i, "init"))
        model = task.build(dataset, make_act)
        _init_weights(model, recipe.init, activation)
        out.append(model)
    return out


def can_vectorize(model: nn.Module) -> tuple[bool, str]:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            return False, "BatchNorm updates running statistics in place; trained seed by seed"
    return True, ""


def _decay_flags(model: nn.Module) -> dict[str, bool]:
    act_params = {id(p) for m in model.modules() if isinstance(m, Activation) for p in m.parameters()}
    return {k: p.dim() >= 2 and id(p) not in act_params for k, p in model.named_parameters()}


class DeadUnitProbe:
    """Forward hooks on the activation modules: a unit is dead when the activation's derivative is zero for every
    example of the evaluation batch (ReLU units stuck below 0)."""

    def __init__(self, model: nn.Module):
        self.sites = [m for m in model.modules() if isinstance(m, Activation) and m.spec.kind == "elementwise"]
        self.active = False
        self.dead = 0
        self.total = 0
        for m in self.sites:
            m.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        if not self.active:
            return
        d = module.derivative(inputs[0].detach().float())
        zero = (d == 0).reshape(d.shape[0], -1).all(dim=0)
        self.dead += int(zero.sum())
        self.total += zero.numel()

    def fraction(self) -> float:
        return self.dead / self.total if self.total else 0.0


@torch.no_grad()
def evaluate(model: nn.Module, probe: DeadUnitProbe, state: tuple[dict, dict] | None, x: torch.Tensor,
             y: torch.Tensor) -> tuple[float, int, float]:
    """(test loss, correct test predictions, dead-unit fraction) for one seed; ``state`` = that seed's (params,
    buffers)."""
    was_training = model.training
    model.eval()
    run = (lambda inp: functional_call(model, state, (inp,))) if state is not None else model
    loss_sum, correct = 0.0, 0
    chunk = _eval_chunk(x, y)
    for i in range(0, len(x), chunk):
        out = run(x[i : i + chunk])  # [batch, classes] or, for sequences, [batch, classes, time]
        loss_sum += float(F.cross_entropy(out, y[i : i + chunk], reduction="sum"))
        correct += int((out.argmax(1) == y[i : i + chunk]).sum())
    probe.active, probe.dead, probe.total = True, 0, 0
    run(x[:DEAD_BATCH])
    probe.active = False
    model.train(was_training)
    return loss_sum / y.numel(), correct, probe.fraction()


def _eval_chunk(x: torch.Tensor, y: torch.Tensor) -> int:
    """Examples per evaluation chunk: EVAL_CHUNK targets' worth (a sequence holds many)."""
    per_example = max(1, y[0].numel()) if len(y) else 1
    return min(EVAL_CHUNK, max(1, EVAL_TARGETS // per_example))


def _orders(n: int, data_seeds: Sequence[int], epoch: int) -> torch.Tensor:
    """Each seed's permutation of the training set for this epoch, from its own generator."""
    perms = []
    for s in data_seeds:
        g = torch.Generator().manual_seed((s + 1_000_003 * epoch) % (1 << 63))
        perms.append(torch.randperm(n, generator=g))
    return torch.stack(perms)


def _epoch_orders(n: int, data_seeds: Sequence[int], epoch: int, device: torch.device) -> torch.Tensor:
    """The epoch's permutations (drawn on the CPU, so every device sees the same order), on the data's device."""
    return _orders(n, data_seeds, epoch).to(device)


def _activation_params(model: nn.Module) -> dict[str, float]:
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, Activation):
            for pname, p in m.named_parameters():
                if p.numel() == 1:
                    out[f"{name}.{pname}"] = float(p.detach())
    return out


def train_group(task: Task, dataset: Dataset, activation: str, trainable: bool, recipe: Recipe, base_seed: int,
                seed_indices: Sequence[int], *, lr: float | Sequence[float] | None = None, mode: str = "auto",
                progress=None, device: str = "cpu") -> list[TrialResult]:
    """Train all members of one (activation, task, recipe) group at once.

    ``lr``: one rate for every member, or one per member (parallel to ``seed_indices``, which may then repeat a
    seed index: a grid of learning rates x seeds trains as one batch, each seed index from the same initial
    weights and data order at every rate). ``mode``: auto (vectorized when possible), vectorized, vmap (vectorized
    through torch.func even where batched layers would do), or per-seed. ``device``: where to train ("cpu",
    "cuda", "cuda:1"); models are initialised on the CPU first, so a seed index starts from the same weights on
    every device, and data orders are drawn there."""
    lrs = _member_rates(recipe.lr if lr is None else lr, len(seed_indices))
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine ({torch.__version__})")
    dataset = dataset.to(device)
    models = [m.to(device) for m in build_models(task, dataset, activation, trainable, recipe, base_seed,
                                                  seed_indices)]
    data_seeds = [derive_seed(base_seed, task.text, i, "data") for i in seed_indices]
    init_seeds = [derive_seed(base_seed, task.text, i, "init") for i in seed_indices]
    ok, why = can_vectorize(models[0])
    vectorize = mode in ("vectorized", "vmap") or (mode == "auto" and ok and len(models) > 1)
    if mode in ("vectorized", "vmap") and not ok:
        raise ValueError(f"cannot vectorize this model: {why}")
    results = [TrialResult(i, s_init, s_data, rate, vectorized=vectorize, note="" if vectorize else why)
               for i, s_init, s_data, rate in zip(seed_indices, init_seeds, data_seeds, lrs)]
    torch.manual_seed(derive_seed(base_seed, task.text, seed_indices[0], "noise"))  # rrelu, dropout
    if vectorize:
        plan = batched_forward_plan(models[0]) if mode != "vmap" else None
        if plan is not None:
            _train_batched_layers(plan, models, dataset, recipe, lrs, data_seeds, results, progress)
        else:
            _train_vectorized(models, dataset, recipe, lrs, data_seeds, results, progress)
    else:
        for model, res, ds, rate in zip(models, results, data_seeds, lrs):
            _train_one(model, dataset, recipe, rate, ds, res, progress)
    return results


def _member_rates(lr: float | Sequence[float], n: int) -> list[float]:
    if isinstance(lr, (int, float)):
        return [float(lr)] * n
    rates = [float(v) for v in lr]
    if len(rates) != n:
        raise ValueError(f"lr: {len(rates)} learning rates for {n} members; give one rate or one per member")
    return rates


def _steps_per_epoch(n: int, batch: int) -> int:
    return (n + batch - 1) // batch


def _end_epoch(epoch, results, params, buffers, probe_model, probe, dataset, train_losses, group_seconds):
    """Evaluate every seed of a stacked group and append its epoch row (training time shared equally)."""
    for s, res in enumerate(results):
        state = ({k: v[s].detach() for k, v in params.items()}, {k: v[s] for k, v in buffers.items()})
        test_loss, correct, dead = evaluate(probe_model, probe, state, dataset.x_test, dataset.y_test)
        train_loss = float(train_losses[s])
        res.epochs.append(EpochRow(epoch, train_loss, test_loss, correct / dataset.y_test.numel(), dead,
                                   group_seconds / len(results), correct))
        if res.diverged_epoch is None and not math.isfinite(train_loss):
            res.diverged_epoch = epoch


def _finish(results, params, probe_model):
    """Record each seed's trained parameters and its final activation parameters (e.g. trained swish betas)."""
    for s, res in enumerate(results):
        with torch.no_grad():
            for k, p in probe_model.named_parameters():
                p.copy_(params[k][s])
        res.activation_params = _activation_params(probe_model)
        res.final_state = {k: v.detach().to("cpu", copy=True) for k, v in probe_model.state_dict().items()}


# The epoch loops of _vectorized_epochs and _train_batched_layers look alike but stay apart: moving the step into a
# shared closure made training ~25% slower on 2 CPU cores (each step's 1 MB intermediates were freed at return and
# re-faulted on the next allocation instead of being reused).


def _train_vectorized(models, dataset, recipe, lr, data_seeds, results, progress):
    x = dataset.x_train
    n = len(x)
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    probe_model = models[0]
    probe = DeadUnitProbe(probe_model)
    decay = _decay_flags(models[0])
    opt = FunctionalOptimizer(recipe, params, decay, recipe.epochs * _steps_per_epoch(n, recipe.batch_size), lr)

    def loss_fn(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step = vmap(grad_and_value(loss_fn), in_dims=(0, 0, 0, 0), randomness="different")
    S = len(models)
    with _vmappable_attention(x.device):
        _vectorized_epochs(step, params, buffers, opt, dataset, recipe, data_seeds, results, progress, probe_model,
                           probe, S)
    _finish(results, params, probe_model)


def _vmappable_attention(device: torch.device):
    """On the CPU, scaled_dot_product_attention's fused kernel has no vmap batching rule (vmap would loop over the
    seeds); its math backend is plain batched matmuls, which vmap batches. Elsewhere: no change."""
    import contextlib

    if device.type != "cpu":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def _vectorized_epochs(step, params, buffers, opt, dataset, recipe, data_seeds, results, progress, probe_model, probe,
                       S):
    x, y = dataset.x_train, dataset.y_train
    n = len(x)
    for epoch in range(1, recipe.epochs + 1):
        order, loss_sum = _epoch_orders(n, data_seeds, epoch, x.device), torch.zeros(S, device=x.device)
        t0 = time.perf_counter()
        for i in range(0, n, recipe.batch_size):
            idx = order[:, i : i + recipe.batch_size]
            grads, loss = step(params, buffers, x[idx], y[idx])
            opt.step(params, grads)
            loss_sum += loss.detach() * idx.shape[1]
        _end_epoch(epoch, results, params, buffers, probe_model, probe, dataset, loss_sum / n,
                   time.perf_counter() - t0)
        if progress is not None:
            progress(epoch, recipe.epochs)


def _train_one(model, dataset, recipe, lr, data_seed, res, progress):
    x, y = dataset.x_train, dataset.y_train
    n, n_test = len(x), dataset.y_test.numel()
    named = dict(model.named_parameters())
    probe = DeadUnitProbe(model)
    opt = FunctionalOptimizer(recipe, {k: p.data for k, p in named.items()}, _decay_flags(model),
                              recipe.epochs * _steps_per_epoch(n, recipe.batch_size), lr)
    model.train()
    for epoch in range(1, recipe.epochs + 1):
        order = _epoch_orders(n, [data_seed], epoch, x.device)[0]
        t0 = time.perf_counter()
        loss_sum = 0.0
        for i in range(0, n, recipe.batch_size):
            idx = order[i : i + recipe.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            grads = torch.autograd.grad(loss, list(named.values()))
            opt.step({k: p.data for k, p in named.items()}, dict(zip(named, grads)))
            loss_sum += float(loss.detach()) * len(idx)
        seconds = time.perf_counter() - t0
        test_loss, correct, dead = evaluate(model, probe, None, dataset.x_test, dataset.y_test)
        train_loss = loss_sum / n
        res.epochs.append(EpochRow(epoch, train_loss, test_loss, correct / n_test, dead, seconds, correct))
        if res.diverged_epoch is None and not math.isfinite(train_loss):
            res.diverged_epoch = epoch
        if progress is not None:
            progress(epoch, recipe.epochs)
    res.activation_params = _activation_params(model)
    res.final_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def summarize(result: TrialResult, target_accuracy: float, n_test: int) -> dict[str, Any]:
    """The trial's row for the store. The final accuracy is also kept as a count of correct test examples out of
    ``n_test``; there is no best-over-epochs number (chosen on the test set it would be an oracle)."""
    accs = [e.test_acc for e in result.epochs]
    reached = next((e.epoch for e in result.epochs if e.test_acc >= target_accuracy), None)
    finite_time = [e.train_seconds for e in result.epochs]
    return {
        "final_acc": accs[-1] if accs else float("nan"),
        "final_correct": result.epochs[-1].test_correct if result.epochs else None,
        "n_test": n_test,
        "epochs_to_target": reached,
        "auc": sum(accs) / len(accs) if accs else float("nan"),
        "s_per_epoch": sum(finite_time) / len(finite_time) if finite_time else float("nan"),
        "train_seconds": sum(finite_time),
        "dead_final": result.epochs[-1].dead_fraction if result.epochs else float("nan"),
        "final_train_loss": result.epochs[-1].train_loss if result.epochs else float("nan"),
        "final_test_loss": result.epochs[-1].test_loss if result.epochs else float("nan"),  # nats per target
    }


# ----- batched layers: a faster vectorized path for plain MLPs -------------------------------------------------
# vmap + functional_call costs ~3 ms of per-op dispatch per step on 2 CPU cores for the default MLP; running the
# stacked weights through baddbmm directly removes it. Used when the model is an nn.Sequential of Flatten, Linear
# and actlab activations whose parameters are scalars (PReLU with one slope per channel goes through vmap).


def batched_forward_plan(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The layers of ``model`` when it can run as batched layers, else None."""
    if not isinstance(model, nn.Sequential):
        return None
    plan: list[tuple[str, nn.Module]] = []
    for name, m in model.named_children():
        if isinstance(m, nn.Flatten):
            plan.append(("flatten", m))
        elif isinstance(m, nn.Linear):
            plan.append((name, m))
        elif isinstance(m, Activation) and m.spec.kind in ("elementwise", "gated") and \
                all(p.numel() == 1 for p in m.parameters()) and m.spec.weight is None:
            plan.append((name, m))
        else:
            return None
    return plan


def batched_logits(plan, params: dict[str, torch.Tensor], x: torch.Tensor, training: bool,
                   sites: list | None = None) -> torch.Tensor:
    """Forward of S stacked models: ``x`` is [S, B, ...], parameters carry a leading S dimension. ``sites``, when
    given, receives (spec, input, parameter values) at every activation."""
    from actlab.kernels import run

    S = x.shape[0]
    for name, m in plan:
        if name == "flatten":
            x = x.reshape(S, x.shape[1], -1)
        elif isinstance(m, nn.Linear):
            # y^T = W x^T: autograd then yields W's gradient contiguous (x @ W^T would give it transposed, and the
            # optimizer would have to copy it).
            w = params[f"{name}.weight"]
            b = params.get(f"{name}.bias")
            xt = x.transpose(1, 2)
            yt = torch.baddbmm(b.unsqueeze(2), w, xt) if b is not None else torch.bmm(w, xt)
            x = yt.transpose(1, 2)
        else:
            values = dict(m.values)
            for pname in m.trainable:
                values[pname] = params[f"{name}.{pname}"].reshape(S, 1, 1)
            values = {k: values[k] for k in m.spec.params}
            if sites is not None:
                sites.append((m.spec, x, values))
            x = run(m.spec, x, values, training=training)
    return x


def _train_batched_layers(plan, models, dataset, recipe, lr, data_seeds, results, progress):
    x, y = dataset.x_train, dataset.y_train
    n = len(x)
    S = len(models)
    stacked, _ = stack_module_state(models)
    params = {k: v.detach().requires_grad_() for k, v in stacked.items()}
    probe_model = models[0]
    opt = FunctionalOptimizer(recipe, {k: v.data for k, v in params.items()}, _decay_flags(models[0]),
                              recipe.epochs * _steps_per_epoch(n, recipe.batch_size), lr)
    names = list(params)
    for epoch in range(1, recipe.epochs + 1):
        order, loss_sum = _epoch_orders(n, data_seeds, epoch, x.device), torch.zeros(S, device=x.device)
        t0 = time.perf_counter()
        for i in range(0, n, recipe.batch_size):
            idx = order[:, i : i + recipe.batch_size]
            B = idx.shape[1]
            logits = batched_logits(plan, params, x[idx], training=True)
            per_seed = F.cross_entropy(logits.reshape(S * B, -1), y[idx].reshape(-1), reduction="none").view(S, B)
            per_seed = per_seed.mean(1)
            grads = torch.autograd.grad(per_seed.sum(), [params[k] for k in names])  # seeds are independent
            opt.step({k: params[k].data for k in names}, dict(zip(names, grads)))
            loss_sum += per_seed.detach() * B
        _end_epoch_batched(epoch, results, plan, params, dataset, loss_sum / n, time.perf_counter() - t0)
        if progress is not None:
            progress(epoch, recipe.epochs)
    _finish(results, params, probe_model)


@torch.no_grad()
def evaluate_batched(plan, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per seed of a stacked group at once: (test loss, correct predictions, dead-unit fraction), the same numbers
    :func:`evaluate` gives seed by seed."""
    S = next(iter(params.values())).shape[0]
    loss_sum = torch.zeros(S, dtype=torch.float64, device=x.device)
    correct = torch.zeros(S, dtype=torch.long, device=x.device)
    for i in range(0, len(x), EVAL_CHUNK):
        xb, yb = x[i : i + EVAL_CHUNK], y[i : i + EVAL_CHUNK]
        out = batched_logits(plan, params, xb.unsqueeze(0).expand(S, *xb.shape), training=False)
        losses = F.cross_entropy(out.reshape(S * len(xb), -1), yb.repeat(S), reduction="none").view(S, -1)
        loss_sum += losses.sum(1, dtype=torch.float64)
        correct += (out.argmax(-1) == yb).sum(1)
    sites: list = []
    probe = x[:DEAD_BATCH]
    batched_logits(plan, params, probe.unsqueeze(0).expand(S, *probe.shape), training=False, sites=sites)
    dead = torch.zeros(S, device=x.device)
    total = 0
    for spec, inp, values in sites:
        if spec.kind != "elementwise":
            continue
        d = spec.torch_derivative(inp.float(), **values)
        zero = (d == 0).reshape(S, d.shape[1], -1).all(dim=1)
        dead += zero.sum(1)
        total += zero.shape[1]
    return loss_sum / len(x), correct, dead / total if total else dead


def _end_epoch_batched(epoch, results, plan, params, dataset, train_losses, group_seconds):
    test_loss, correct, dead = (t.tolist() for t in evaluate_batched(plan, params, dataset.x_test, dataset.y_test))
    for s, res in enumerate(results):
        train_loss = float(train_losses[s])
        res.epochs.append(EpochRow(epoch, train_loss, test_loss[s], correct[s] / len(dataset.y_test), dead[s],
                                   group_seconds / len(results), correct[s]))
        if res.diverged_epoch is None and not math.isfinite(train_loss):
            res.diverged_epoch = epoch
