"""The activation sites a monitor watches, and how each one's derivative and units are read.

A site is what :func:`actlab.swap.find_activations` reports (a module, or a function stored as an attribute) or
what :func:`actlab.swap_calls.find_calls` reports (a function called inside a module's forward). For each, the
monitor needs f'(x) at the site's own parameters and the axis that holds its units:

- **derivative**: what actlab's backward computes for an upstream gradient of ones (its fused kernels where it has
  them, the closed form otherwise), for actlab's modules at their parameters and for torch's own modules with a
  catalogue name at theirs (PyTorch and actlab share parameter names: ``negative_slope``, ``alpha``, ``beta``,
  ``approximate``); trained parameters use the module's closed form; RReLU's is at its mean slope (drawing its
  random slopes again would move the training run's random stream); for anything else (PReLU, other libraries'
  modules, function attributes, calls) autograd on the site itself (its backward with an upstream gradient of
  ones, the site's parameters and the call's own arguments included: this works for custom autograd Functions
  too, which forward-mode AD does not);
- **units**: a feature, or a channel. The layer registered before the site in its parent (or the last layer inside
  a block registered before it) decides: after a convolution or a channel-first norm, channels on dim 1; after a
  linear layer or a layer norm, the last dim (transformers' ``(batch, tokens, features)``, ConvNeXt's channels-last
  MLP). With no such layer, 4-D and 5-D inputs take dim 1 (images, volumes) and others the last dim.
  ``unit_dim=`` overrides it.

Gated modules (actlab's GLU family, ``nn.GLU``) are read on their gate half: ``a * g(b)`` is dead where ``g'(b)``
is zero for every example. A module used at several places (one ``nn.ReLU`` called by many blocks) is one site,
named by all its paths: its numbers pool every call.
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
_PLACES_UNITS = (*_CHANNELS_FIRST, *_CHANNELS_LAST)
# torch classes whose catalogue derivative takes the module's own attributes; PReLU (per-channel learned slopes)
# and RReLU (random slopes in training) go through forward-mode AD on the module instead
_PARAMETERS_BY_NAME = tuple(t for t in TORCH_ACTIVATIONS if t not in (nn.PReLU, nn.RReLU, nn.GLU))


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
    channels_first: bool | None  # None: no layer before the site says
    unit_dim: int | None = None
    gated: bool = False

    def units_axis(self, ndim: int) -> int | None:
        """The axis of ``ndim`` that holds units, or None when ``unit_dim`` does not fit a tensor of that rank."""
        if self.unit_dim is not None:
            axis = self.unit_dim if self.unit_dim >= 0 else ndim + self.unit_dim
            return axis if 0 <= axis < ndim else None
        first = self.channels_first if self.channels_first is not None else ndim >= 4
        return 1 if first and ndim >= 2 else ndim - 1


def autograd_derivative(fn: Callable[[torch.Tensor], torch.Tensor], clone: bool = False) -> Derivative:
    """f'(x) of an elementwise ``fn`` through its own backward with an upstream gradient of ones (``clone``: for an
    in-place ``fn``, which must not write the caller's tensor)."""
    def derivative(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            t = x.detach().clone() if clone else x.detach()
            t.requires_grad_(True)
            y = fn(t)
            return torch.autograd.grad(y, t, torch.ones_like(y))[0]

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
    if type(module) is nn.GLU:  # a * sigmoid(b), halves along module.dim
        dim = module.dim
        sigmoid = catalog.spec("sigmoid")
        return lambda x: sigmoid.torch_derivative(x.chunk(2, dim=dim)[1]), True
    if type(module) is nn.RReLU:
        rrelu = catalog.spec("rrelu")
        values = rrelu.resolve_params({"lower": module.lower, "upper": module.upper})
        return lambda x: rrelu.torch_derivative(x, **values), False
    if type(module) in _PARAMETERS_BY_NAME and recognized in catalog.names():
        spec = catalog.spec(recognized)
        return kernel_derivative(spec, spec.resolve_params({p: getattr(module, p) for p in spec.params
                                                            if hasattr(module, p)})), False
    return autograd_derivative(module.forward, clone=getattr(module, "inplace", False) is True), False


def _last_layer(module: nn.Module) -> nn.Module | None:
    """``module`` itself when it is a layer that places units, else the last such layer inside it."""
    if isinstance(module, _PLACES_UNITS):
        return module
    found = [m for m in module.modules() if isinstance(m, _PLACES_UNITS)]
    return found[-1] if found else None


def _channels_first(parent: nn.Module, attribute: str | None) -> bool | None:
    """Whether the layer before ``attribute`` in ``parent`` puts units on dim 1 (None: no layer says). For a call
    site (``attribute`` None), the calling module's last layer."""
    previous = None
    for name, child in parent.named_children():
        if name == attribute:
            break
        previous = _last_layer(child) or previous
    if previous is None:
        return None
    return isinstance(previous, _CHANNELS_FIRST)


def discover(model: nn.Module, example: Any = None, *, where: Where = None, roles: Any = None,
             unit_dim: int | Mapping[str, int] | None = None) -> list[MonitoredSite]:
    """Every activation site of ``model`` (and, with ``example``, every activation call its forward makes on it)."""
    sites: list[MonitoredSite] = []
    shared: dict[int, MonitoredSite] = {}
    for found in find_activations(model, where, roles=roles):
        if found.recognized_as is None:
            continue
        channels_first = _channels_first(found.parent, found.attribute)
        if isinstance(found.current, nn.Module):
            if id(found.current) in shared:  # the same module at another path: one site, every path in its name
                shared[id(found.current)].name += f", {found.path}"
                continue
            derivative, gated = _module_derivative(found.current, found.recognized_as)
            kind, owner, attribute = "module", found.current, None
        else:
            derivative, gated = autograd_derivative(found.current), False
            kind, owner, attribute = "attribute", found.parent, found.attribute
        gate_dim = (found.current.dim if isinstance(found.current, nn.GLU) else -1) if gated else None
        site = MonitoredSite(found.path, found.role, found.recognized_as, kind, owner, attribute, derivative,
                             channels_first, unit_dim=gate_dim, gated=gated)
        if kind == "module":
            shared[id(found.current)] = site
        sites.append(site)
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
    if not -6 <= value <= 5:
        raise ValueError(f"monitor: unit_dim={value!r} is out of range; an axis of the activations' inputs, -6 to 5")
    return value
