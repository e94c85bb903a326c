"""Replace the activations inside an existing model.

An activation site is either a submodule (torch's own activation classes, actlab's modules, or a class from
another library recognised by its name, such as timm's ``Swish`` or transformers' ``GELUActivation``) or a plain
function stored as an attribute (``TransformerEncoderLayer(activation=F.gelu)`` keeps ``self.activation =
F.gelu``). Each site gets a module of its own, so per-channel parameters are never shared between sites.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actlab import catalog, functional
from actlab.errors import UnknownActivationError
from actlab.nn import Activation, get

__all__ = ["Site", "find_activations", "recognize", "swap"]

# torch.nn's elementwise and gated activation classes. The softmax family normalises (attention weights, class
# probabilities) and nn.Identity is a placeholder: neither is a hidden-unit nonlinearity to swap.
TORCH_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus,
    nn.Sigmoid, nn.Tanh, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish, nn.Softsign, nn.LogSigmoid, nn.GLU, nn.Threshold,
    nn.Hardtanh, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink,
)
_NOT_SWAPPED = {"identity", "softmax"}

# Functions that may be stored as an activation attribute (e.g. TransformerEncoderLayer.activation).
_TORCH_FUNCTIONS = {
    F.relu, F.leaky_relu, F.elu, F.celu, F.selu, F.gelu, F.silu, F.mish, F.softplus, F.relu6, F.hardsigmoid,
    F.hardswish, F.softsign, F.logsigmoid, F.glu, F.hardtanh, F.tanhshrink, F.rrelu, F.prelu, torch.relu,
    torch.sigmoid, torch.tanh, F.sigmoid, F.tanh,
}

# Words that other libraries put around an activation's name: "GELUActivation", "MemoryEfficientSwish".
_AFFIXES = re.compile(
    r"^(?:new|fast|quick|memory|efficient|me|jit|approx|approximate|torch|custom|my)+|"
    r"(?:activation|act|layer|module|fn|function|jit|me|auto|op|v\d)+$",
    re.IGNORECASE,
)

Where = None | str | type | tuple | Callable[[str, nn.Module], bool]


@dataclass
class Site:
    """One activation in a model: the parent holding it, the attribute name, and what is there now."""

    parent: nn.Module
    attribute: str
    path: str
    current: Any  # an nn.Module, or a function stored as an attribute
    recognized_as: str | None


def recognize(obj: Any) -> str | None:
    """The catalogue name an activation module or function corresponds to, ``"activation"`` when it is an
    activation outside the catalogue, or None when it is not an activation."""
    if isinstance(obj, Activation):
        return None if obj.spec.name in _NOT_SWAPPED or obj.spec.kind == "normalizing" else obj.spec.name
    if isinstance(obj, TORCH_ACTIVATIONS):
        return _name_from_class(type(obj).__name__) or "activation"
    if isinstance(obj, nn.Module):
        if any(True for _ in obj.children()):
            return None
        return _name_from_class(type(obj).__name__)
    if callable(obj) and (obj in _TORCH_FUNCTIONS or getattr(obj, "__module__", None) == functional.__name__):
        return _name_from_class(getattr(obj, "__name__", "")) or "activation"
    return None


def _name_from_class(class_name: str) -> str | None:
    for candidate in (class_name, _AFFIXES.sub("", class_name), _AFFIXES.sub("", _AFFIXES.sub("", class_name))):
        if not candidate:
            continue
        try:
            found = catalog.lookup(candidate)[0]
        except UnknownActivationError:
            continue
        if found.name not in _NOT_SWAPPED and found.kind != "normalizing":
            return found.name
    return None


def _selected(where: Where, path: str, obj: Any) -> bool:
    if where is None:
        return True
    if isinstance(where, (type, tuple)):
        return isinstance(obj, where)
    if isinstance(where, str):
        return fnmatch.fnmatchcase(path, where)
    if callable(where):
        return bool(where(path, obj))
    raise TypeError(f"swap: where={where!r} must be None, a class (or tuple of classes), a glob over module paths, "
                    "or a predicate (path, module) -> bool")


def find_activations(model: nn.Module, where: Where = None) -> list[Site]:
    """Every activation site in ``model`` (modules and function attributes), optionally filtered by ``where``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"find_activations: model must be a torch.nn.Module, got {type(model).__name__}")
    sites: list[Site] = []
    for parent_path, parent in _walk(model):
        for attr, child in parent._modules.items():
            if child is None:
                continue
            name = recognize(child)
            path = f"{parent_path}.{attr}" if parent_path else attr
            if name is not None and _selected(where, path, child):
                sites.append(Site(parent, attr, path, child, name))
        for attr, value in vars(parent).items():
            if attr.startswith("_") or isinstance(value, (nn.Module, torch.Tensor)) or not callable(value):
                continue
            name = recognize(value)
            path = f"{parent_path}.{attr}" if parent_path else attr
            if name is not None and _selected(where, path, value):
                sites.append(Site(parent, attr, path, value, name))
    return sites


def _walk(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for path, module in model.named_modules(remove_duplicate=False):
        if recognize(module) is None or module is model:
            yield path, module


def _placement(site: Site, model: nn.Module) -> tuple[torch.device | None, torch.dtype | None]:
    for source in (site.current, site.parent, model):
        if isinstance(source, nn.Module):
            for tensor in (*source.parameters(recurse=True), *source.buffers(recurse=True)):
                if tensor.is_floating_point():
                    return tensor.device, tensor.dtype
    return None, None


def _factory(to: Any) -> Callable[[], nn.Module]:
    if isinstance(to, nn.Module):
        return lambda: copy.deepcopy(to)
    if isinstance(to, (str, catalog.ActivationSpec)):
        get(to)  # validate once, before anything in the model changes
        return lambda: get(to)
    if isinstance(to, type) and issubclass(to, nn.Module):
        return to
    if callable(to):
        return to
    raise TypeError(f"swap: to={to!r} must be an activation name, a spec, a module, a module class or a factory")


def swap(model: nn.Module, to: Any, where: Where = None) -> int:
    """Replace activations in ``model`` with ``to`` and return how many were replaced.

    ``to``: a name or string form (``"swish(beta=1.5)"``), a spec, a module (copied per site), a module class, or a
    zero-argument factory. ``where`` selects sites: a class or tuple of classes (``nn.ReLU``), a glob over the
    dotted module path (``"encoder.*"``), or a predicate ``(path, current) -> bool``. Each site gets its own new
    module, placed on the device and dtype of the module it replaces (or of its parent).
    """
    make = _factory(to)
    sites = find_activations(model, where)
    replacements = []
    for site in sites:
        new: Any = make()
        if not isinstance(new, nn.Module):
            raise TypeError(f"swap: the factory returned {type(new).__name__}, not an nn.Module")
        device, dtype = _placement(site, model)
        if device is not None:
            new = new.to(device=device, dtype=dtype)
        new.train(model.training)
        replacements.append((site, new))
    for site, module in replacements:
        new = module
        if site.attribute in site.parent._modules:
            site.parent._modules[site.attribute] = new
        else:
            site.parent.__dict__.pop(site.attribute, None)
            setattr(site.parent, site.attribute, new)
        if hasattr(site.parent, "activation_relu_or_gelu"):
            # TransformerEncoderLayer's inference fast path hard-codes relu/gelu by this flag: turn it off.
            setattr(site.parent, "activation_relu_or_gelu", 0)  # noqa: B010  (a plain attribute, not a module)
    return len(replacements)
