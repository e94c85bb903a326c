"""Monte-Carlo signal propagation through a random deep MLP at initialisation, side by side with the mean-field
prediction, and dead/saturated unit statistics of any model via forward hooks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from actlab import catalog
from actlab.analysis import meanfield
from actlab.catalog import ActivationSpec
from actlab.errors import ActlabError
from actlab.nn import Activation, get


@dataclass
class Propagation:
    activation: str
    depth: int
    width: int
    sigma_w: float
    sigma_b: float
    mean: list[float]  # per layer: mean of pre-activations (Monte Carlo)
    variance: list[float]  # per layer: variance of pre-activations (Monte Carlo)
    correlation: list[float]  # per layer: correlation of two inputs' pre-activations (Monte Carlo)
    grad_norm: list[float]  # per layer: norm of d(output . v)/d(pre-activation), v random (Monte Carlo)
    q_mean_field: list[float]  # per layer: the variance map iterated from the first layer's variance
    c_mean_field: list[float]  # per layer: the correlation map iterated from the first layer's correlation
    chi: float | None  # sigma_w^2 E[f'(sqrt(q*) z)^2] at the variance fixed point (None without one)
    extras: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def _init_linear(layer: nn.Linear, sigma_w: float, sigma_b: float, gen: torch.Generator) -> None:
    layer.weight.normal_(0.0, sigma_w / math.sqrt(layer.in_features), generator=gen)
    layer.bias.normal_(0.0, sigma_b, generator=gen) if sigma_b > 0 else layer.bias.zero_()


def propagate(act: str | ActivationSpec, depth: int = 20, width: int = 512, sigma_w: float = math.sqrt(2.0),
              sigma_b: float = 0.0, input_correlation: float = 0.5, samples: int = 256, seed: int = 0,
              mean_field: bool = True) -> Propagation:
    """Push ``samples`` pairs of unit-variance inputs with correlation ``input_correlation`` through a random
    ``depth`` x ``width`` MLP with N(0, sigma_w^2 / fan_in) weights and N(0, sigma_b^2) biases (float64)."""
    for name, value, minimum in (("depth", depth, 1), ("width", width, 1), ("samples", samples, 2)):
        if not isinstance(value, int) or value < minimum:
            raise ValueError(f"propagate: {name} = {value!r} must be an integer >= {minimum}")
    if not (sigma_w > 0 and sigma_b >= 0):
        raise ValueError(f"propagate: sigma_w = {sigma_w!r} must be > 0 and sigma_b = {sigma_b!r} >= 0")
    if not -1.0 <= input_correlation <= 1.0:
        raise ValueError(f"propagate: input_correlation = {input_correlation!r} must be in [-1, 1]")
    resolved = catalog.resolve(act)
    if resolved.spec.kind != "elementwise":  # a gated kind halves the width, softmax couples the units
        raise ActlabError(f"propagate: {resolved.spec.name} is {resolved.spec.kind}; signal propagation through a "
                          "fixed-width MLP needs an elementwise activation")
    gen = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(width, width).double() for _ in range(depth)]
    for layer in layers:
        _init_linear(layer, sigma_w, sigma_b, gen)
    f = get(resolved.spec, **resolved.params).double()
    a = torch.randn(samples, width, generator=gen, dtype=torch.float64)
    b = input_correlation * a + math.sqrt(1 - input_correlation**2) * torch.randn(samples, width, generator=gen,
                                                                                    dtype=torch.float64)
    x = torch.cat([a, b]).requires_grad_(False)
    means, variances, corrs, pre_acts = [], [], [], []
    h = x
    with torch.enable_grad():
        for layer in layers:
            z = layer(h)
            z.retain_grad()
            pre_acts.append(z)
            zd = z.detach()
            means.append(float(zd.mean()))
            variances.append(float(zd.var()))
            za, zb = zd[:samples], zd[samples:]
            corrs.append(float(((za * zb).mean(1) / torch.sqrt((za * za).mean(1) * (zb * zb).mean(1))).mean()))
            h = f(z)
        v = torch.randn(h.shape, generator=gen, dtype=torch.float64)
        (h * v).sum().backward()
    grad_norm = [float(z.grad.norm() / math.sqrt(z.shape[0])) for z in pre_acts]
    q_mf, c_mf, chi_value = [], [], None
    if mean_field and resolved.spec.kind == "elementwise":
        q, c = variances[0], corrs[0]
        for _ in range(depth):
            q_mf.append(q)
            c_mf.append(c)
            q_next = meanfield.variance_map(resolved.text, q, sigma_w, sigma_b)
            c = meanfield.correlation_map(resolved.text, c, q, sigma_w, sigma_b) * q / q_next if q_next > 0 else c
            q = q_next
        fp = meanfield.fixed_point(resolved.text, sigma_w, sigma_b)
        chi_value = fp.chi
    return Propagation(resolved.text, depth, width, sigma_w, sigma_b, means, variances, corrs, grad_norm, q_mf, c_mf,
                       chi_value)


@dataclass
class UnitStats:
    layer: str
    activation: str
    units: int
    dead: float  # fraction of units whose derivative is 0 for every example
    saturated: float  # fraction of units whose |derivative| < threshold for at least 99% of examples
    mean_output: float
    std_output: float


@torch.no_grad()
def unit_stats(model: nn.Module, x: torch.Tensor, saturation_threshold: float = 1e-3) -> list[UnitStats]:
    """Dead and saturated units of every actlab elementwise activation in ``model`` on the batch ``x``."""
    out: list[UnitStats] = []
    hooks = []

    def hook(name: str) -> Callable[..., None]:
        def fn(module: Activation, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            z = inputs[0].detach().double()
            d = module.derivative(z)
            flat = d.reshape(z.shape[0], -1).abs()
            dead = (flat == 0).all(dim=0)
            saturated = ((flat < saturation_threshold).double().mean(dim=0) >= 0.99)
            y = output.detach().double()
            out.append(UnitStats(name, module.spec.name, flat.shape[1], float(dead.double().mean()),
                                 float(saturated.double().mean()), float(y.mean()), float(y.std())))
        return fn

    for name, m in model.named_modules():
        if isinstance(m, Activation) and m.spec.kind == "elementwise":
            hooks.append(m.register_forward_hook(hook(name)))
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return out
