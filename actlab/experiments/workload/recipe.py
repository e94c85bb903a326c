"""A training recipe: optimizer, learning rate, schedule, batch size, epochs, weight decay, initialisation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from actlab.errors import ActlabError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "constant")
INITS = ("default", "recommended", "kaiming", "xavier", "lecun")


class ConfigError(ActlabError, ValueError):
    """A study or recipe setting that is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class Recipe:
    """How each model is trained. ``adamw`` decouples weight decay (Loshchilov & Hutter 2019); ``adam`` adds it
    to the gradient; ``sgd`` uses ``momentum``. ``init``: ``default`` keeps PyTorch's layer initialisation;
    the others re-draw Linear/Conv weights (kaiming: He normal with the activation's measured gain;
    ``recommended``: the one the activation's spec names, e.g. LeCun normal for SELU)."""

    optimizer: str = "adamw"
    lr: float = 1e-2
    batch_size: int = 100
    epochs: int = 25
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"
    init: str = "default"

    def __post_init__(self) -> None:
        checks = {
            "optimizer": self.optimizer in OPTIMIZERS,
            "schedule": self.schedule in SCHEDULES,
            "init": self.init in INITS,
            "lr": _num(self.lr) and self.lr > 0 and math.isfinite(self.lr),
            "batch_size": _int(self.batch_size) and self.batch_size > 0,
            "epochs": _int(self.epochs) and self.epochs > 0,
            "weight_decay": _num(self.weight_decay) and self.weight_decay >= 0 and math.isfinite(self.weight_decay),
            "momentum": _num(self.momentum) and 0 <= self.momentum < 1,
        }
        allowed = {
            "optimizer": f"one of {OPTIMIZERS}", "schedule": f"one of {SCHEDULES}", "init": f"one of {INITS}",
            "lr": "a number > 0", "batch_size": "an integer > 0", "epochs": "an integer > 0",
            "weight_decay": "a number >= 0", "momentum": "a number in [0, 1)",
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"recipe: {key} = {getattr(self, key)!r} is not allowed; expected {allowed[key]}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: Recipe | None = None) -> Recipe:
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"recipe: unknown key {key!r}; known keys: {', '.join(sorted(known))}")
        return replace(base or cls(), **dict(values))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
