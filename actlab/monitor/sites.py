"""The activation sites a monitor watches, and how each one's derivative and units are read.

A site is what :func:`actlab.swap.find_activations` reports (a module, or a function stored as an attribute) or
what :func:`actlab.swap_calls.find_calls` reports (a function called inside a module's forward). For each, the
monitor needs f'(x) at the site's own parameters and the axis that holds its units:

- **derivative**: what actlab's backward computes for an upstream gradient of ones (its fused kernels where it has
  them, the closed form otherwise), for actlab's modules at their parameters and for torch's own modules with a
  catalogue name at theirs (PyTorch and actlab share parameter names: ``negative_slope``, ``alpha``, ``beta``,
  ``approximate``); trained parameters use the module's closed form; for anything else (PReLU, other libraries'
  modules, function attributes, calls) forward-mode AD on the site itself (one ``torch.func.jvp`` with a unit
  tangent, the site's parameters and the call's own arguments included);
- **units**: a feature, or a channel. Channels sit on dim 1 after a convolution or a channel-first norm; otherwise
  (linear layers, transformers' ``(batch, tokens, features)``) units sit on the last dim. The layer registered
  just before the site in its parent decides; ``unit_dim=`` overrides it.

Gated actlab modules (GLU family) are read on their gate half: ``a * g(b)`` is dead where ``g'(b)`` is zero for
every example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from actlab import catalog
from actlab.kernels.function import backward_math
from actlab.nn import Activation
from actlab.swap import TORCH_ACTIVATIONS, Where, find_activations
from actlab.swap_calls import find_calls

__all__ = ["MonitoredSite", "discover"]

Derivative = Callable[[torch.Tensor], torch.Tensor]

_CHANNELS_FIRST = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                   nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                   nn.InstanceNorm3d, nn.GroupNorm)
_CHANNELS_LAST = (nn.Linear, nn.LayerNorm, nn.Embedding)
# torch classes whose catalogue derivative takes the module's own attributes; PReLU (per-channel learned slopes)
# and RReLU (random slopes in training) go through forward-mode AD on the module instead
_PARAMETERS_BY_NAME = tuple(t for t in TORCH_ACTIVATIONS if t not in (nn.PReLU, nn.RReLU))


@dataclass
class MonitoredSite:
    """One watched site. ``name``: the module path, or ``path:function`` for a call site (``<model>:gelu`` for a
    call in the model's own forward). ``kind``: ``module``, ``attribute`` or ``call``. ``unit_dim``: None decides
    from the tensor (dim 1 where ``channels_first``, else the last dim)."""

    name: str
    role: str
    activation: str
    kind: str
    owner: nn.Module  # the module itself (module sites) or the module holding the attribute or making the call
    attribute: str | None
    derivative: Derivative | None  # module and attribute sites; calls get theirs per call from the call's arguments
    channels_first: bool
    unit_dim: int | None = None
    gated: bool = False

    def units_axis(self, ndim: int) -> int:
        if self.unit_dim is not None:
            return self.unit_dim if self.unit_dim >= 0 else ndim + self.unit_dim
        return 1 if self.channels_first and ndim >= 2 else ndim - 1


def forward_mode_derivative(fn: Callable[[torch.Tensor], torch.Tensor]) -> Derivative:
    """f'(x) of an elementwise ``fn`` by one jvp with a unit tangent (no graph kept)."""
    def derivative(x: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(fn, (x,), (torch.ones_like(x),))[1]

    return derivative


def kernel_derivative(spec: catalog.ActivationSpec, params: dict[str, Any]) -> Derivative:
    """f'(x) as actlab's backward computes it with an upstream gradient of ones: the fused kernel where there is
    one (swish's is aten's silu_backward, a tenth of its closed form's cost on a 100 x 256 CPU tensor), the
    closed form otherwise."""
    def derivative(x: torch.Tensor) -> torch.Tensor:
        return backward_math(spec, x, torch.ones_like(x), params, True, {})[0]

    return derivative


def _module_derivative(module: nn.Module, recognized: str) -> tuple[Derivative | None, bool]:
    """(f' at the module's parameters, gated) for a module site."""
    if isinstance(module, Activation):
        spec = module.spec
        if spec.kind == "elementwise":
            if module.trainable or spec.weight is not None or spec.stochastic:
                return module.derivative, False
            return kernel_derivative(spec, spec.resolve_params(module.values)), False
        if spec.kind == "gated" and spec.gate is not None:
            gate = spec.gate
            values = gate.resolve_params({k: v for k, v in module.values.items() if k in gate.params})
            return lambda x: gate.torch_derivative(x.chunk(2, dim=-1)[1], **values), True
        return None, False
    if type(module) in _PARAMETERS_BY_NAME and recognized in catalog.names():
        spec = catalog.spec(recognized)
        return kernel_derivative(spec, spec.resolve_params({p: getattr(module, p) for p in spec.params
                                                            if hasattr(module, p)})), False
    if getattr(module, "inplace", False) is True:
        return forward_mode_derivative(lambda t: module.forward(t.clone())), False
    return forward_mode_derivative(module.forward), False


def _channels_first(parent: nn.Module, attribute: str | None) -> bool:
    """Whether the layer registered before ``attribute`` in ``parent`` puts its units on dim 1."""
    previous = None
    for name, child in parent.named_children():
        if name == attribute:
            break
        if isinstance(child, (*_CHANNELS_FIRST, *_CHANNELS_LAST)):
            previous = child
    if previous is None and attribute is None:  # a call site: the caller's learned layers decide
        learned = [m for m in parent.modules() if isinstance(m, (*_CHANNELS_FIRST, *_CHANNELS_LAST))]
        previous = learned[-1] if learned else None
    return isinstance(previous, _CHANNELS_FIRST)


def discover(model: nn.Module, example: Any = None, *, where: Where = None, roles: Any = None,
             unit_dim: int | Mapping[str, int] | None = None) -> list[MonitoredSite]:
    """Every activation site of ``model`` (and, with ``example``, every activation call its forward makes on it)."""
    sites: list[MonitoredSite] = []
    for found in find_activations(model, where, roles=roles):
        if found.recognized_as is None:
            continue
        if isinstance(found.current, nn.Module):
            derivative, gated = _module_derivative(found.current, found.recognized_as)
            kind, owner, attribute = "module", found.current, None
            channels_first = _channels_first(found.parent, found.attribute)
        else:
            derivative, gated = forward_mode_derivative(found.current), False
            kind, owner, attribute = "attribute", found.parent, found.attribute
            channels_first = _channels_first(found.parent, found.attribute)
        sites.append(MonitoredSite(found.path, found.role, found.recognized_as, kind, owner, attribute, derivative,
                                   channels_first, unit_dim=-1 if gated else None, gated=gated))
    if example is not None:
        modules = dict(model.named_modules())
        for call in find_calls(model, example, roles=roles, where=where):
            owner = modules[call.path]
            sites.append(MonitoredSite(f"{call.path or '<model>'}:{call.function}", call.role, call.function, "call",
                                       owner, None, None, _channels_first(owner, None)))
    _apply_unit_dims(sites, unit_dim)
    return sites


def _apply_unit_dims(sites: list[MonitoredSite], unit_dim: int | Mapping[str, int] | None) -> None:
    if unit_dim is None:
        return
    if isinstance(unit_dim, Mapping):
        names = {s.name for s in sites}
        unknown = sorted(set(unit_dim) - names)
        if unknown:
            raise ValueError(f"monitor: unit_dim names site(s) {unknown} that the model does not have; its sites: "
                             f"{sorted(names)}")
        for site in sites:
            if site.name in unit_dim:
                site.unit_dim = _checked_dim(unit_dim[site.name])
        return
    dim = _checked_dim(unit_dim)
    for site in sites:
        site.unit_dim = dim


def _checked_dim(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"monitor: unit_dim={value!r} must be an int (the axis that holds the units) or a mapping "
                        "from site name to int")
    return value
