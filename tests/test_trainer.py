"""The trainer: vectorized training equals the per-seed loop, pairing, determinism, divergence, dead units."""

from __future__ import annotations

import math

import pytest
import torch

import actlab
from actlab.experiments.training.trainer import DeadUnitProbe, build_models, evaluate, train_group
from actlab.experiments.workload.data import Dataset, mnist1d
from actlab.experiments.workload.recipe import Recipe
from actlab.experiments.workload.tasks import resolve_task

SMALL = Recipe(epochs=2, batch_size=200)


def _small_data():
    d = mnist1d()
    return Dataset("small", d.x_train[:1000], d.y_train[:1000], d.x_test[:400], d.y_test[:400], 10, "subset")


@pytest.mark.parametrize("vector_mode", ["vectorized", "vmap"])
@pytest.mark.parametrize("activation,trainable,task_text", [
    ("relu", False, "mnist1d(width=64)"), ("swish", True, "mnist1d(width=64)"), ("swiglu", False, "mnist1d(width=64)"),
    ("prelu", False, "mnist1d(width=64)"), ("swish", True, "mnist1d(model=cnn, width=64)"),
])
def test_vectorized_equals_per_seed_loop(activation, trainable, task_text, vector_mode):
    """Batched layers (MLPs) and vmap (any model) both match training each seed alone."""
    task = resolve_task(task_text)
    data = _small_data()
    vec = train_group(task, data, activation, trainable, SMALL, 0, [0, 1, 2], mode=vector_mode)
    loop = train_group(task, data, activation, trainable, SMALL, 0, [0, 1, 2], mode="per-seed")
    assert all(r.vectorized for r in vec) and not any(r.vectorized for r in loop)
    for a, b in zip(vec, loop):
        for ea, eb in zip(a.epochs, b.epochs):
            assert ea.train_loss == pytest.approx(eb.train_loss, rel=1e-4)
            assert ea.test_loss == pytest.approx(eb.test_loss, rel=1e-4)
            assert abs(ea.test_acc - eb.test_acc) <= 0.005  # at most 2 of 400 predictions flip
            assert ea.dead_fraction == pytest.approx(eb.dead_fraction, abs=0.01)
        for k, v in a.activation_params.items():
            assert v == pytest.approx(b.activation_params[k], rel=1e-4)


def test_same_seed_index_same_initial_weights_across_activations():
    task = resolve_task("mnist1d")
    d = mnist1d()
    relu = build_models(task, d, "relu", False, Recipe(), 0, [0, 1])
    swish = build_models(task, d, "swish", True, Recipe(), 0, [0, 1])
    for a, b in zip(relu, swish):
        for (ka, pa), (kb, pb) in zip(a.named_parameters(), [kv for kv in b.named_parameters() if "beta" not in kv[0]]):
            assert ka == kb and torch.equal(pa, pb)
    assert not torch.equal(relu[0][1].weight, relu[1][1].weight)  # different seed indices differ


def test_training_is_deterministic():
    task = resolve_task("mnist1d(width=32)")
    data = _small_data()
    a = train_group(task, data, "mish", False, SMALL, 7, [0, 1])
    b = train_group(task, data, "mish", False, SMALL, 7, [0, 1])
    assert [e.test_loss for r in a for e in r.epochs] == [e.test_loss for r in b for e in r.epochs]


def test_divergence_is_counted_not_a_crash():
    task = resolve_task("mnist1d(width=32)")
    recipe = Recipe(epochs=2, batch_size=200, optimizer="sgd", lr=1e6, weight_decay=0.0, schedule="constant")
    res = train_group(task, _small_data(), "squared_relu", False, recipe, 0, [0, 1])
    assert all(r.status == "diverged" and r.diverged_epoch == 1 for r in res)
    assert all(math.isnan(r.epochs[-1].train_loss) for r in res)


def test_dead_unit_probe_counts_units_dead_for_the_whole_batch():
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), actlab.get("relu"), torch.nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([-1.0, -2.0, 1.0, 2.0, -0.5, 3.0]))
    probe = DeadUnitProbe(model)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    _, _, dead = evaluate(model, probe, None, x, y)
    assert dead == pytest.approx(3 / 6)
    swapped = torch.nn.Sequential(torch.nn.Linear(4, 6), actlab.get("leaky_relu"), torch.nn.Linear(6, 2))
    swapped.load_state_dict(model.state_dict())
    assert evaluate(swapped, DeadUnitProbe(swapped), None, x, y)[2] == 0.0


def test_batchnorm_models_fall_back_to_the_loop_and_say_so():
    task = resolve_task("mnist1d-mlp(depth=2, width=16, norm=batch)")
    res = train_group(task, _small_data(), "relu", False, SMALL, 0, [0, 1])
    assert not res[0].vectorized and "BatchNorm" in res[0].note
    with pytest.raises(ValueError, match="cannot vectorize"):
        train_group(task, _small_data(), "relu", False, SMALL, 0, [0, 1], mode="vectorized")


def test_training_on_cuda_without_cuda_is_a_clear_error():
    from actlab.experiments.workload.tasks import resolve_task

    task = resolve_task("mnist1d")
    data = task.load()
    recipe = task.spec.recipe
    if torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):
        train_group(task, data, "relu", False, recipe, 0, [0], device="cuda")


def test_recommended_init_is_each_activations_own():
    """init="recommended" reads the spec: LeCun normal for SELU (its self-normalising condition), Glorot for tanh,
    He with the measured gain for the rest."""
    from actlab import catalog

    assert (catalog.spec("selu").init, catalog.spec("tanh").init, catalog.spec("relu").init) == \
        ("lecun", "xavier", "kaiming")
    task = resolve_task("mnist1d-mlp(depth=3, width=512)")
    data = task.load()
    for act, std in (("selu", 1 / math.sqrt(512)), ("tanh", math.sqrt(2 / 1024)),
                     ("relu", math.sqrt(2) / math.sqrt(512))):
        model = build_models(task, data, act, False, Recipe(init="recommended"), 0, [0])[0]
        w = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][1].weight  # hidden 512 -> 512
        assert float(w.std()) == pytest.approx(std, rel=0.02), act
