"""timm: name any actlab activation where timm takes an activation, ``act_layer="actlab:swish(beta=1.5)"``.

timm builds its activations through ``timm.layers.get_act_layer`` / ``create_act_layer`` (modules) and
``get_act_fn`` (functions), which look names up in two tables. After :func:`register`, those tables also resolve
strings that start with ``actlab:``, the rest in actlab's one syntax, so

    timm.create_model("resnet18", act_layer="actlab:swish(beta=1.5, trainable=True)")
    timm.layers.create_act_layer("actlab:mish", inplace=True)

build actlab modules, and ``get_act_fn("actlab:gelu(approximate='tanh')")`` returns the function. A model's own
``act_layer`` argument, or :func:`layer` (a class-like factory timm calls as ``act_layer(inplace=True)``), works
without registering. timm is imported here only.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from actlab import catalog
from actlab.functional import function_for
from actlab.nn import Activation, get

PREFIX = "actlab:"


def _elementwise(activation: str) -> None:
    """timm puts an activation between layers of fixed widths: a gated kind (half the width out) or a normalizing
    one (softmax over the features) would fail deep inside the model with a shape error, so it is refused here."""
    kind = catalog.resolve(activation).spec.kind
    if kind == "gated":
        raise ValueError(f"actlab.integrations.timm: {activation!r} is gated: it halves the last dimension, so the "
                         "layer after it would get half the features it expects; timm's act_layer takes elementwise "
                         "activations (build the gated MLP with its first layer doubled instead)")
    if kind != "elementwise":
        raise ValueError(f"actlab.integrations.timm: {activation!r} is {kind} (a distribution over the features), "
                         "not an activation timm can place between layers; use an elementwise one")


def layer(activation: str) -> functools.partial[Activation]:
    """A factory timm can call as ``act_layer(inplace=True)`` or ``act_layer()``: each call builds a new module for
    ``activation`` (validated now, so a bad string or a gated kind fails before timm builds anything)."""
    get(activation)
    _elementwise(activation)
    return functools.partial(get, activation)


def function(activation: str) -> functools.partial[torch.Tensor]:
    """``activation`` as a plain function of a tensor (``get_act_fn``'s contract); trainable parameters are refused,
    since a function has nowhere to keep them."""
    resolved = catalog.resolve(activation)
    _elementwise(activation)
    if resolved.trainable:
        raise ValueError(f"actlab.integrations.timm: {activation!r} asks for trainable parameters, which a function "
                         "cannot hold; use it as a layer (act_layer=) instead")
    return functools.partial(function_for(resolved.spec), **resolved.params)


class _WithActlab(dict[str, Any]):
    """One of timm's name tables, answering ``actlab:`` names as well."""

    def __init__(self, table: dict[str, Any], make: Any) -> None:
        super().__init__(table)
        self._make = make

    def __missing__(self, key: Any) -> Any:
        if isinstance(key, str) and key.startswith(PREFIX):
            return self._make(key[len(PREFIX):])
        raise KeyError(key)


def register() -> None:
    """Teach timm's activation tables the ``actlab:`` prefix (idempotent). Needs timm installed."""
    try:
        from timm.layers import create_act
    except ImportError as exc:  # pragma: no cover - the plug-in is only called by users of timm
        raise ImportError("actlab.integrations.timm needs timm: pip install timm") from exc
    # get_act_layer / get_act_fn read these module globals on every call, so replacing them reaches every caller.
    if not isinstance(create_act._ACT_LAYER_DEFAULT, _WithActlab):
        create_act._ACT_LAYER_DEFAULT = _WithActlab(create_act._ACT_LAYER_DEFAULT, layer)
    if not isinstance(create_act._ACT_FN_DEFAULT, _WithActlab):
        create_act._ACT_FN_DEFAULT = _WithActlab(create_act._ACT_FN_DEFAULT, function)
