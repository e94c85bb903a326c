"""Tasks: data + model family + default recipe, looked up by name like activations
(``"mnist1d"``, ``"mnist1d(model=cnn)"``, ``"mnist1d-mlp(depth=32, norm=batch)"``).

Every model takes its activation from a factory built on :func:`actlab.get`, so any catalogue entry (a trainable
swish beta included) can be compared.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from actlab.catalog.parsing import parse_activation
from actlab.catalog.spec import Param
from actlab.errors import ActlabError, InvalidParameterError
from actlab.experiments.workload import data as datasets
from actlab.experiments.workload import models
from actlab.experiments.workload.recipe import Recipe


class UnknownTaskError(ActlabError, LookupError):
    def __init__(self, name: str):
        close = difflib.get_close_matches(name, list(_TASKS), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown task {name!r}{hint} (valid tasks: {', '.join(sorted(_TASKS))})")

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    load: Callable[[Mapping[str, Any], str | None], datasets.Dataset]
    build: Callable[[Mapping[str, Any], datasets.Dataset, models.ActFactory], nn.Module]
    params: Mapping[str, Param] = field(default_factory=dict)
    recipe: Recipe = Recipe()
    target_accuracy: float = 0.5
    needs_data_dir: bool = False
    reads_data_dir: bool = False  # reads a folder when given one (lm: your own text), else its built-in data
    source: Callable[..., Any] | None = None  # the user's model factory, fingerprinted with the built model
    metric: str = "accuracy"  # what the comparison ranks by: "accuracy" (higher is better) or "bits_per_char"


@dataclass(frozen=True)
class Task:
    """A task with validated parameters; ``text`` is its canonical string form (stored with every trial)."""

    spec: TaskSpec
    params: Mapping[str, Any]
    data_dir: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def text(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.params.items() if v != self.spec.params[k].default]
        return f"{self.spec.name}({', '.join(shown)})" if shown else self.spec.name

    def load(self) -> datasets.Dataset:
        return self.spec.load(self.params, self.data_dir)

    def build(self, dataset: datasets.Dataset, make_act: models.ActFactory) -> nn.Module:
        return self.spec.build(self.params, dataset, make_act)


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    _TASKS[spec.name] = spec
    return spec


def task_names() -> list[str]:
    return sorted(_TASKS)


def task_spec(name: str) -> TaskSpec:
    try:
        return _TASKS[name]
    except KeyError:
        raise UnknownTaskError(name) from None


def resolve_task(text: str, data_dir: str | None = None, **params: Any) -> Task:
    name, positional, inline = parse_activation(text)
    spec = task_spec(name.strip().lower())
    if positional:
        raise InvalidParameterError(spec.name, None, tuple(positional), "task parameters are given as key=value")
    merged = {**inline, **params}
    values = {k: p.default for k, p in spec.params.items()}
    for key, value in merged.items():
        if key not in spec.params:
            raise InvalidParameterError(spec.name, key, value,
                                        f"task {spec.name} has no parameter {key!r}; its parameters are: "
                                        f"{', '.join(spec.params) or 'none'}")
        values[key] = spec.params[key].validate(spec.name, key, value)
    if spec.needs_data_dir and not data_dir:
        raise ActlabError(f"task {spec.name} reads local files: pass --data-dir FOLDER (nothing is downloaded)")
    if data_dir:
        if not (spec.needs_data_dir or spec.reads_data_dir):
            raise ActlabError(f"data_dir={str(data_dir)!r}: task {spec.name} reads no local files (its data ships "
                              "with a package); drop data_dir, or choose a task that reads a folder")
        if not Path(data_dir).is_dir():
            raise ActlabError(f"data_dir={str(data_dir)!r} is not a folder"
                              + (" (it does not exist)" if not Path(data_dir).exists() else ""))
    return Task(spec, values, str(data_dir) if data_dir else None)


# ----- the built-in tasks --------------------------------------------------------------------------------

_MODEL = Param("mlp", choices=("mlp", "cnn"), doc="model family")
_NORM = Param("none", choices=("none", "batch", "batch-noscale", "layer"),
              doc="normalisation after each hidden layer (batch-noscale: batch norm without its learned scale)")


def _mnist1d_model(p, d, make_act):
    if p["model"] == "cnn":
        return models.cnn1d(d.input_shape[0], d.n_classes, make_act, channels=p["width"] // 8, norm=p["norm"])
    return models.mlp(d.input_shape[0], [p["width"]] * p["depth"], d.n_classes, make_act, norm=p["norm"])


register_task(TaskSpec(
    name="mnist1d",
    description="MNIST-1D (4000 train / 1000 test, length 40); MLP 40-256-256-10 or a small 1-D CNN",
    load=lambda p, _: datasets.mnist1d(),
    build=_mnist1d_model,
    params={"model": _MODEL, "width": Param(256, low=1, doc="hidden width (CNN: width/8 channels)"),
            "depth": Param(2, low=1, doc="hidden layers (MLP)"), "norm": _NORM},
    recipe=Recipe(),
    target_accuracy=0.6,
))

register_task(TaskSpec(
    name="mnist1d-mlp",
    description="Deep MLPs on MNIST-1D for depth studies: depth x width hidden layers with optional batch/layer norm",
    load=lambda p, _: datasets.mnist1d(),
    build=lambda p, d, a: models.mlp(d.input_shape[0], [p["width"]] * p["depth"], d.n_classes, a, norm=p["norm"]),
    params={"depth": Param(8, low=1, doc="hidden layers"), "width": Param(64, low=1, doc="hidden width"),
            "norm": _NORM},
    recipe=Recipe(lr=3e-3, epochs=20),
    target_accuracy=0.5,
))


def _digits_model(p, d, make_act):
    if p["model"] == "cnn":
        return models.cnn2d(1, d.n_classes, make_act, channels=16, image_side=8)
    return models.mlp(64, [p["width"]] * p["depth"], d.n_classes, make_act)


register_task(TaskSpec(
    name="digits",
    description="scikit-learn's 8x8 digits (1347 train / 450 test, fixed stratified split, pixels in [0, 1]); MLP "
                "64-128-128-10 or CNN",
    load=lambda p, _: datasets.digits(),
    build=_digits_model,
    params={"model": _MODEL, "depth": Param(2, low=1, doc="hidden layers (MLP)"),
            "width": Param(128, low=1, doc="hidden width (MLP)")},
    recipe=Recipe(lr=3e-3, batch_size=64, epochs=30, weight_decay=0.01),
    target_accuracy=0.9,
))


def _image_model(p, d, make_act):
    c, h = d.input_shape[0], d.input_shape[-1]
    if p["model"] == "cnn":
        return models.cnn2d(c, d.n_classes, make_act, channels=32, image_side=0)
    return models.mlp(c * h * h, [256, 256], d.n_classes, make_act)


for _name, _desc in (("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")):
    register_task(TaskSpec(
        name=_name,
        description=f"{_desc} from the four IDX files in --data-dir (gzipped or not); MLP 784-256-256-10 or CNN",
        load=lambda p, dd, _n=_name: datasets.idx_dataset(_n, dd),  # type: ignore[misc]
        build=_image_model,
        params={"model": _MODEL},
        recipe=Recipe(lr=1e-3, batch_size=128, epochs=10, weight_decay=0.01),
        target_accuracy=0.9 if _name == "mnist" else 0.8,
        needs_data_dir=True,
    ))

register_task(TaskSpec(
    name="cifar10",
    description="CIFAR-10 from the binary batches (data_batch_1..5.bin, test_batch.bin) in --data-dir; MLP or CNN",
    load=lambda p, dd: datasets.cifar10(dd),
    build=_image_model,
    params={"model": Param("cnn", choices=("mlp", "cnn"), doc="model family")},
    recipe=Recipe(lr=1e-3, batch_size=128, epochs=20, weight_decay=0.05),
    target_accuracy=0.5,
    needs_data_dir=True,
))


def _lm_data(p, data_dir):
    from actlab.experiments.workload import text

    if p["context"] < 1:
        raise InvalidParameterError("lm", "context", p["context"], "context must be at least 1")
    return text.text_dataset(p["context"], p["train_chars"], p["eval_chars"], data_dir)


def _lm_model(p, d, make_act):
    from actlab.experiments.workload.transformer import TransformerLM

    return TransformerLM(d.n_classes, p["context"], make_act, d_model=p["d_model"], layers=p["layers"],
                         heads=p["heads"], mlp_ratio=p["mlp_ratio"], norm=p["norm"], positions=p["positions"])


def _lm_params(d_model, layers, heads, context, train_chars, eval_chars):
    return {"d_model": Param(d_model, low=8, doc="model width"), "layers": Param(layers, low=1, doc="blocks"),
            "heads": Param(heads, low=1, doc="attention heads (divide d_model)"),
            "context": Param(context, low=1, doc="characters of context"),
            "mlp_ratio": Param(4.0, low=0.25, high=64.0, doc="ungated MLP width / d_model (gated: 2/3 of it)"),
            "norm": Param("layer", choices=("layer", "rms"), doc="pre-norm: LayerNorm or RMSNorm"),
            "positions": Param("learned", choices=("learned", "rotary"), doc="position encoding"),
            "train_chars": Param(train_chars, low=1, doc="training bytes read from the train files"),
            "eval_chars": Param(eval_chars, low=1, doc="bytes read from the validation and the test files")}


register_task(TaskSpec(
    name="lm",
    description="Byte-level language model on the Python standard library's own source (split by file), a small "
                "pre-norm decoder-only transformer; metric: test bits per character (lower is better); gated "
                "MLPs get 2/3 of the hidden width so parameter counts match. --data-dir: a folder of *.py files",
    load=_lm_data,
    reads_data_dir=True,
    build=_lm_model,
    params=_lm_params(d_model=48, layers=2, heads=4, context=32, train_chars=100_000, eval_chars=30_000),
    recipe=Recipe(lr=3e-3, batch_size=16, epochs=2, weight_decay=0.1),
    target_accuracy=0.3,  # next-byte accuracy, for the epochs-to-target column
    metric="bits_per_char",
))

register_task(TaskSpec(
    name="lm-large",
    description="The lm task at a size meant for a GPU: d_model 256, 6 blocks, 8 heads, context 256, 8 MB of text",
    load=_lm_data,
    reads_data_dir=True,
    build=_lm_model,
    params=_lm_params(d_model=256, layers=6, heads=8, context=256, train_chars=8_000_000, eval_chars=500_000),
    recipe=Recipe(lr=1e-3, batch_size=64, epochs=2, weight_decay=0.1),
    target_accuracy=0.6,
    metric="bits_per_char",
))


# ----- user data from Python -----------------------------------------------------------------------------------


def _as_tensors(data) -> tuple:
    """(x_train, y_train, x_test, y_test) from a Dataset, a 4-tuple of arrays/tensors, or a pair of
    torch.utils.data.Dataset objects (train, test) yielding (x, y)."""
    import numpy as np
    import torch

    if isinstance(data, datasets.Dataset):
        return data.x_train, data.y_train, data.x_test, data.y_test
    if isinstance(data, (tuple, list)) and len(data) == 2 and \
            all(isinstance(d, torch.utils.data.Dataset) for d in data):
        out = []
        for split in data:
            xs, ys = zip(*(split[i] for i in range(len(split))))
            out += [torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(np.asarray(ys))]
        return tuple(out)
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return tuple(torch.as_tensor(np.asarray(d)) if not isinstance(d, torch.Tensor) else d for d in data)
    raise ActlabError("data: expected an actlab Dataset, (x_train, y_train, x_test, y_test), or a pair of "
                      "torch.utils.data.Dataset objects (train, test)")


def _check_model(model: Callable[[models.ActFactory], nn.Module], x, n_classes: int) -> None:
    """Build the model once and run two training examples through it, so a factory that cannot serve the
    comparison fails here, before anything trains, rather than in every trial group."""
    import torch

    sites = []

    def make_act() -> nn.Module:
        sites.append(1)
        return nn.ReLU()

    try:
        net = model(make_act)
    except Exception as error:
        raise ActlabError(f"model: model(make_act) failed ({type(error).__name__}: {error}); expected a function "
                          "of one argument, make_act, that returns an nn.Module") from error
    if not isinstance(net, nn.Module):
        raise ActlabError(f"model: model(make_act) returned {type(net).__name__}, not an nn.Module")
    if not sites:
        raise ActlabError("model: the factory never called make_act(), so every activation would train the same "
                          "network; call make_act() where each activation goes")
    try:
        with torch.no_grad():
            out = net.eval()(x[:2])
    except Exception as error:
        raise ActlabError(f"model: a forward pass on two training examples of shape {tuple(x[:2].shape)} failed "
                          f"({type(error).__name__}: {error})") from error
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] < n_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ActlabError(f"model: its output for two examples is {shape}; expected (2, C) logits with C >= "
                          f"{n_classes}, the number of classes in the labels")


def custom_task(data, model: Callable[[models.ActFactory], nn.Module], *, name: str | None = None,
                target_accuracy: float = 0.5, recipe: Recipe | None = None) -> Task:
    """Register a task from Python data and a model factory; ``model(make_act)`` builds the network, calling
    ``make_act()`` for a fresh activation module at every site. Runs in-process (nothing here is pickled)."""
    import hashlib

    import torch

    x_train, y_train, x_test, y_test = _as_tensors(data)
    for what, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y) or len(x) == 0:
            raise ActlabError(f"data: {what} inputs ({len(x)}) and labels ({len(y)}) must be non-empty and match")
        if y.ndim != 1 or y.is_complex() or bool((y != y.round()).any() if y.is_floating_point() else False) \
                or bool((y < 0).any()):
            raise ActlabError(f"data: {what} labels must be one class index per example (integers >= 0); got "
                              f"shape {tuple(y.shape)}, dtype {y.dtype}")
    if x_test.shape[1:] != x_train.shape[1:]:
        raise ActlabError(f"data: test inputs have shape {tuple(x_test.shape)} and train inputs "
                          f"{tuple(x_train.shape)}; they must agree beyond the first dimension")
    x_train, x_test = x_train.float(), x_test.float()
    y_train, y_test = y_train.long(), y_test.long()
    n_classes = int(torch.cat([y_train, y_test]).max()) + 1
    _check_model(model, x_train, n_classes)
    h = hashlib.sha256()
    for t in (x_train, y_train, x_test, y_test):
        h.update(t.contiguous().numpy().tobytes())
    name = name or f"custom-{h.hexdigest()[:12]}"  # the model's structure and source go into each trial's key
    dataset = datasets.Dataset(name, x_train, y_train, x_test, y_test, n_classes, "tensors given from Python")
    spec = TaskSpec(name=name, description="user data and model from Python", load=lambda p, _: dataset,
                    build=lambda p, d, make_act: model(make_act), recipe=recipe or Recipe(),
                    target_accuracy=target_accuracy, source=model)
    _TASKS[name] = spec  # re-registering the same data and model replaces the entry
    return Task(spec, {})
