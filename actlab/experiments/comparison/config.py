"""A study: which activations, on which task, with which recipe and seeds. Built from CLI flags or a TOML file.

TOML keys (all optional except ``activations``)::

    activations = ["swish", "leaky_relu", "swish(beta=1.0, trainable=True)"]
    task = "mnist1d"            # or "mnist1d-mlp(depth=32, norm='batch')"
    seeds = 10
    base_seed = 0
    tune_lr = [3e-4, 1e-3, 3e-3] # the grid each activation's lr is chosen from, on a validation split
                                 # (default: the recipe's lr / 3, x 1, x 3; a [recipe] lr without tune_lr pins it)
    tune_seeds = 2
    validation_fraction = 0.2
    baseline = "swish"          # compared with each other activation (default: the first listed)
    all_pairs = false           # every pair instead (Holm over k(k-1)/2 tests: needs more seeds)
    cost = true                 # time each activation's training step in interleaved rounds
    store = "runs/actlab.db"
    study = "my-study"
    data_dir = "/data/mnist"    # for tasks that read a folder (mnist, fashion-mnist, cifar10, lm); mnist1d refuses it
    jobs = 1
    mode = "auto"               # auto | vectorized | per-seed
    backend = "local"           # or "ray": each trial group a Ray task
    address = "head-node:6379"  # ray only; without it a local Ray instance is started
    cpus_per_group = 1          # ray only: resources per group (gpus_per_group may be a fraction)
    gpus_per_group = 0
    max_retries = 2             # ray only: retries of a group whose worker died
    [tune]                      # other recipe fields chosen with the lr, per activation, on the validation split
    weight_decay = [0.0, 0.05]  # (every combination trains: the grid's size multiplies the tuning's cost)
    [recipe]
    optimizer = "adamw"  lr = 0.01  batch_size = 100  epochs = 25  weight_decay = 0.05  schedule = "cosine"
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from actlab.experiments.workload.recipe import ConfigError, Recipe

DEFAULT_STORE = "runs/actlab.db"
GRID_FACTORS = (1 / 3, 1.0, 3.0)  # the default lr grid around the recipe's rate


@dataclass(frozen=True)
class StudyConfig:
    activations: tuple[str, ...]
    task: str = "mnist1d"
    seeds: int = 10
    base_seed: int = 0
    recipe: Recipe | None = None  # None: the task's default recipe
    tune_lr: tuple[float, ...] | None = None  # None: the default grid, unless the recipe's lr is given (pinned)
    tune_seeds: int = 2  # seeds per rate of the grid: the curve, not the verdict, so fewer than the final runs
    validation_fraction: float = 0.2
    store: str = DEFAULT_STORE
    study: str | None = None
    data_dir: str | None = None
    jobs: int = 1
    mode: str = "auto"
    force: bool = False
    backend: str = "local"
    address: str | None = None
    cpus_per_group: float = 1.0
    gpus_per_group: float = 0.0
    max_retries: int = 2
    baseline: str | None = None
    all_pairs: bool = False
    cost: bool = True
    recipe_overrides: Mapping[str, Any] = field(default_factory=dict)
    tune: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # recipe field -> values, chosen with the lr
    device: str = "cpu"  # where local groups train: "cpu", "cuda" or "cuda:N" (seed-vectorized on one GPU)

    def __post_init__(self) -> None:
        if not self.activations:
            raise ConfigError("activations: give at least one activation to compare")
        for key, minimum in (("seeds", 1), ("tune_seeds", 1), ("jobs", 1)):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                raise ConfigError(f"{key} = {v!r} is not allowed; expected an integer >= {minimum}")
        if (not isinstance(self.base_seed, int) or isinstance(self.base_seed, bool) or self.base_seed < 0
                or self.base_seed >= 2**63):
            raise ConfigError(f"base_seed = {self.base_seed!r} is not allowed; expected an integer with "
                              "0 <= base_seed < 2**63 (the store keeps it as a 64-bit integer)")
        if self.tune_lr is not None and not self.tune_lr:
            raise ConfigError("tune_lr: give at least one learning rate (or leave it out for the default grid)")
        for lr in self.tune_lr or ():
            if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (lr > 0 and math.isfinite(lr)):
                raise ConfigError(f"tune_lr: {lr!r} is not allowed; every learning rate must be a number > 0")
        if self.tune_lr is not None and len({float(lr) for lr in self.tune_lr}) < len(self.tune_lr):
            raise ConfigError(f"tune_lr = {list(self.tune_lr)!r} lists a value twice")
        if not (isinstance(self.validation_fraction, float) and 0 < self.validation_fraction < 1):
            raise ConfigError(f"validation_fraction = {self.validation_fraction!r}; expected a number in (0, 1)")
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"backend = {self.backend!r} is not allowed; expected 'local' or 'ray'")
        if self.address is not None and self.backend != "ray":
            raise ConfigError(f"address = {self.address!r} needs backend = 'ray'")
        for key in ("cpus_per_group", "gpus_per_group"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{key} = {v!r} is not allowed; expected a number >= 0")
        if self.cpus_per_group == 0 and self.gpus_per_group == 0:
            raise ConfigError("cpus_per_group and gpus_per_group are both 0; a group needs some resource")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries = {self.max_retries!r} is not allowed; expected an integer >= 0")
        _check_device(self.device, self.backend)
        if self.mode not in ("auto", "vectorized", "vmap", "per-seed"):
            raise ConfigError(f"mode = {self.mode!r}; expected auto, vectorized, vmap or per-seed")
        object.__setattr__(self, "tune", _checked_tune(self.tune))  # frozen: the validated, normalised grid

    def settings_grid(self) -> list[dict[str, Any]]:
        """Every combination of the tuned recipe fields' values (``[{}]`` when only the lr is tuned)."""
        keys = sorted(self.tune)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.tune[k] for k in keys))]

    def with_recipe(self, default: Recipe) -> Recipe:
        return Recipe.from_mapping(dict(self.recipe_overrides), base=self.recipe or default)

    def lr_grid(self, recipe: Recipe) -> tuple[float, ...] | None:
        """The rates each activation's lr is chosen from, or None when one lr is pinned (a recipe lr given
        without a grid): then every activation trains at ``recipe.lr`` and the verdict says so."""
        if self.tune_lr:
            return tuple(sorted(set(self.tune_lr)))
        if "lr" in self.recipe_overrides:
            return None
        return tuple(float(f"{recipe.lr * f:.3g}") for f in GRID_FACTORS)


def _check_device(device: Any, backend: str) -> None:
    """A device that is there, before anything trains."""
    if not isinstance(device, str) or not (device == "cpu" or device == "cuda" or
                                           (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"device = {device!r} is not allowed; expected 'cpu', 'cuda' or 'cuda:N'")
    if device == "cpu":
        return
    if backend != "local":
        raise ConfigError(f"device = {device!r} is for local runs; on Ray, gpus_per_group places groups on GPUs")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device[5:]) if ":" in device else 0
    if index >= count:
        seen = f"{count} CUDA device{'' if count == 1 else 's'}" if count else "no CUDA device"
        raise ConfigError(f"device = {device!r}: this machine has {seen} (torch {torch.__version__}); use device "
                          "= 'cpu' or run where a GPU is visible")


def _checked_tune(tune: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The tuned recipe fields' values, each checked by the recipe itself; numbers for a float field become floats,
    so 0 and 0.0 are one setting (and one trial key)."""
    tunable = sorted(f.name for f in fields(Recipe) if f.name != "lr")
    defaults = Recipe()
    out = {}
    for key, values in tune.items():
        if key == "lr":
            raise ConfigError("tune: the learning rate's grid is tune_lr (--tune-lr), not tune.lr")
        if key not in tunable:
            raise ConfigError(f"tune: {key!r} is not a recipe field; tunable fields: {', '.join(tunable)}")
        if not isinstance(values, (tuple, list)) or not values:
            raise ConfigError(f"tune.{key} = {values!r}: give a non-empty list of values")
        if isinstance(getattr(defaults, key), float):
            values = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
        for value in values:
            try:
                Recipe(**{key: value})
            except ConfigError as exc:
                raise ConfigError(f"tune.{key}: {exc}") from None
        if len(set(values)) != len(values):
            raise ConfigError(f"tune.{key} = {list(values)!r} lists a value twice")
        out[key] = tuple(values)
    return out


class StudyFile(BaseModel):
    """The keys a study file may hold and their types (strict: ``seeds = "10"`` or ``seeds = true`` is an error,
    an integer where a float goes is accepted). ``StudyFile.model_json_schema()`` is the file's JSON schema; the
    values are checked further by :class:`StudyConfig` (ranges) and :class:`Recipe` (the ``[recipe]`` table)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    activations: list[str]
    task: str | None = None
    seeds: int | None = None
    base_seed: int | None = None
    tune_lr: list[float] | None = None
    tune_seeds: int | None = None
    validation_fraction: float | None = None
    store: str | None = None
    study: str | None = None
    data_dir: str | None = None
    jobs: int | None = None
    mode: str | None = None
    recipe: dict[str, Any] | None = None
    backend: str | None = None
    address: str | None = None
    cpus_per_group: float | None = None
    gpus_per_group: float | None = None
    max_retries: int | None = None
    baseline: str | None = None
    all_pairs: bool | None = None
    cost: bool | None = None
    tune: dict[str, list[Any]] | None = None
    device: str | None = None


def setting_value(value: Any) -> str:
    """A tuned field's value as the tables show it: ``0.05``, ``100``, ``'sgd'``."""
    return repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)


def settings_text(settings: Mapping[str, Any]) -> str:
    """``{"weight_decay": 0.05}`` -> ``"weight_decay=0.05"`` (``""`` when only the lr is tuned)."""
    return ", ".join(f"{k}={setting_value(v)}" for k, v in sorted(settings.items()))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"study file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"study file {str(path)!r} is a directory; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"study file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"study file {str(path)!r} is not UTF-8 text, so not TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"study file {str(path)!r} is not valid TOML: {exc}") from None


def config_from_mapping(raw: Mapping[str, Any], source: str = "study") -> StudyConfig:
    """A study from the keys of a study file; the first problem raises ConfigError naming the key and ``source``."""
    try:
        parsed = StudyFile.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_problem(exc)}") from None
    values = {k: v for k, v in parsed.model_dump(exclude_unset=True).items() if v is not None}
    recipe = values.pop("recipe", None)
    values["activations"] = tuple(values["activations"])
    if "tune_lr" in values:
        values["tune_lr"] = tuple(values["tune_lr"])
    if "tune" in values:
        values["tune"] = {k: tuple(v) for k, v in values["tune"].items()}
    if recipe is not None:
        try:
            Recipe.from_mapping(recipe)
        except ConfigError as exc:
            raise ConfigError(f"{source}: [recipe] {exc}") from None
        values["recipe_overrides"] = dict(recipe)
    return StudyConfig(**values)


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
             "bool_type": "true or false", "list_type": "a list", "dict_type": "a table"}


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = error["loc"]
    key = ".".join(str(part) for part in where)
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}; known keys: {', '.join(sorted(StudyFile.model_fields))}"
    if error["type"] == "missing":
        return f"missing key {key!r}"
    top = str(where[0])
    value = error["input"]
    if len(where) > 1:  # an item of a list: name the list and the item
        return f"key {top!r}: item {where[1]} = {value!r} should be {_EXPECTED.get(error['type'], error['msg'])}"
    return f"key {top!r} = {value!r} should be {_EXPECTED.get(error['type'], error['msg'])}"


def load_study_file(path: str | Path) -> StudyConfig:
    """Read a study file; unknown keys or wrong types raise ConfigError naming the key and the file."""
    return config_from_mapping(_read_toml(Path(path)), source=str(path))


def merge(config: StudyConfig, **changes: Any) -> StudyConfig:
    """Override fields (what the caller gives now wins over the study file); recipe keys go to the recipe; None
    leaves a field as it is. ``lr`` pins the rate (over a grid the study had) and cannot come with ``tune_lr``."""
    recipe_keys = {f.name for f in fields(Recipe)}
    config_keys = {f.name for f in fields(StudyConfig)} - {"recipe_overrides"}
    unknown = sorted(k for k in changes if k not in recipe_keys | config_keys)
    if unknown:
        raise ConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"options: {', '.join(sorted(config_keys))}; recipe keys: {', '.join(sorted(recipe_keys))}")
    if changes.get("lr") is not None and changes.get("tune_lr") is not None:
        raise ConfigError("lr pins one learning rate for every activation and tune_lr chooses each one's from a "
                          "grid: give one of them")
    recipe = dict(config.recipe_overrides)
    top: dict[str, Any] = {}
    for k, v in changes.items():
        if v is None:
            continue
        (recipe if k in recipe_keys else top)[k] = v
    if changes.get("lr") is not None:
        top["tune_lr"] = None  # a pinned lr given now wins over a grid the study (file) had
    return replace(config, recipe_overrides=recipe, **top)
