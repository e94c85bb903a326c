"""Model families. Every hidden nonlinearity is a fresh module from ``make_act()`` (so trainable parameters are
per layer); gated activations halve the width, so the layer before them doubles it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ActFactory = Callable[[], nn.Module]


def _expansion(make_act: ActFactory) -> int:
    spec = getattr(make_act(), "spec", None)
    return 2 if spec is not None and spec.kind == "gated" else 1


class Shift(nn.Module):
    """A learned per-feature (per-channel) bias: batch norm's beta without its gamma."""

    def __init__(self, width: int, dims: int = 0):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(width))
        self.view = (-1,) + (1,) * dims  # channels sit in dim 1 of (N, C, ...) inputs

    def forward(self, x):
        return x + self.bias.view(self.view) if x.dim() > 2 else x + self.bias


def _norm(kind: str, width: int, dims: int = 0) -> nn.Module | None:
    if kind == "none":
        return None
    batch = (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[dims]
    if kind == "batch":
        return batch(width)
    if kind == "batch-noscale":  # Keras's BatchNormalization(scale=False): normalise, shift, no learned scale
        return nn.Sequential(batch(width, affine=False), Shift(width, dims))
    if kind == "layer":
        return nn.LayerNorm(width) if dims == 0 else nn.GroupNorm(1, width)
    raise ValueError(f"norm {kind!r}")


def mlp(in_features: int, widths: list[int], n_classes: int, make_act: ActFactory, norm: str = "none") -> nn.Sequential:
    """Linear -> [norm] -> activation, repeated, then a linear classifier."""
    k = _expansion(make_act)
    layers: list[nn.Module] = [nn.Flatten()]
    prev = in_features
    for w in widths:
        layers.append(nn.Linear(prev, w * k))
        n = _norm(norm, w * k)
        if n is not None:
            layers.append(n)
        layers.append(make_act())
        prev = w
    layers.append(nn.Linear(prev, n_classes))
    return nn.Sequential(*layers)


class ChannelsLast(nn.Module):
    """Apply a gated activation over channels: move dim 1 last, apply, move it back."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act

    def forward(self, x):
        return self.act(x.movedim(1, -1)).movedim(-1, 1)


def _conv_act(make_act: ActFactory) -> nn.Module:
    act = make_act()
    spec = getattr(act, "spec", None)
    return ChannelsLast(act) if spec is not None and spec.kind == "gated" else act


def _conv_block(conv: nn.Module, width: int, norm: str, dims: int, make_act: ActFactory) -> list[nn.Module]:
    """conv -> [norm] -> activation (gated kinds act over channels)."""
    n = _norm(norm, width, dims)
    return [conv, *([n] if n is not None else []), _conv_act(make_act)]


def cnn1d(length: int, n_classes: int, make_act: ActFactory, channels: int = 32, norm: str = "none") -> nn.Sequential:
    """A small 1-D CNN for MNIST-1D: three conv layers (stride 2), global average pool, linear classifier."""
    k = _expansion(make_act)
    layers: list[nn.Module] = [nn.Unflatten(1, (1, length))]
    prev = 1
    for _ in range(3):
        layers += _conv_block(nn.Conv1d(prev, channels * k, 5, stride=2, padding=2), channels * k, norm, 1, make_act)
        prev = channels
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels, n_classes)]
    return nn.Sequential(*layers)


def cnn2d(in_channels: int, n_classes: int, make_act: ActFactory, channels: int = 32, norm: str = "none",
          image_side: int = 8) -> nn.Sequential:
    """A small 2-D CNN: conv-act-conv-act (stride 2) twice, global average pool, linear classifier."""
    k = _expansion(make_act)
    layers: list[nn.Module] = []
    if image_side and in_channels == 1:
        layers.append(nn.Unflatten(1, (1, image_side, image_side)))
    prev = in_channels
    for stride in (1, 2, 1, 2):
        layers += _conv_block(nn.Conv2d(prev, channels * k, 3, stride=stride, padding=1), channels * k, norm, 2,
                              make_act)
        prev = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, n_classes)]
    return nn.Sequential(*layers)
