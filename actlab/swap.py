"""Replace the activations inside an existing model.

An activation site is either a submodule (torch's own activation classes, actlab's modules, or a class from
another library recognised by its name, such as timm's ``Swish`` or transformers' ``GELUActivation``) or a plain
function stored as an attribute (``TransformerEncoderLayer(activation=F.gelu)`` keeps ``self.activation =
F.gelu``). Each site gets a module of its own, so per-channel parameters are never shared between sites.

Each site has a role, and by default only **hidden** activations are replaced, which is what "swap the activation"
means to a user. The role is decided from the model's graph where torch.fx can trace it:

- **gate**: a sigmoid or hard-sigmoid whose output multiplies another tensor (squeeze-excitation blocks). The
  activation of a gated MLP written by hand (``act(x W) * (x V)``, LLaMA's SiLU) stays hidden: swapping it is how
  SwiGLU becomes GEGLU;
- **output**: a squashing activation (sigmoid, hard-sigmoid, tanh, softsign, log-sigmoid) whose output reaches the
  model's output with nothing learned in between (a classifier's final sigmoid);
- **hidden**: everything else.

Where the model cannot be traced (data-dependent control flow, as in most Hugging Face models), names decide: a
site called ``gate`` or ``scale_activation``, or a sigmoid-like one inside a squeeze-excitation module, is a gate;
a tanh under a ``pooler`` is an output (BERT's pooler). ``roles=`` chooses which roles are replaced.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import operator
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actlab import catalog, functional
from actlab.errors import UnknownActivationError
from actlab.nn import Activation, get

__all__ = ["ROLES", "Site", "find_activations", "recognize", "swap"]
log = logging.getLogger(__name__)

ROLES = ("hidden", "gate", "output")

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
    role: str = "hidden"  # hidden | gate | output (see the module docstring)


def recognize(obj: Any) -> str | None:
    """The catalogue name an activation module or function corresponds to, ``"activation"`` when it is an
    activation outside the catalogue, or None when it is not an activation."""
    obj = getattr(obj, "_actlab_watched_original", obj)  # a function attribute the monitor is watching
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


def check_where(where: Where, option: str = "where") -> None:
    if where is None or isinstance(where, (type, str)) or callable(where):
        return
    if isinstance(where, tuple) and all(isinstance(w, type) for w in where):
        return
    raise TypeError(f"swap: {option}={where!r} must be None, a class (or tuple of classes), a glob over module "
                    "paths such as 'encoder.*', or a predicate (path, module) -> bool")


def selected(where: Where, path: str, obj: Any) -> bool:
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


def find_activations(model: nn.Module, where: Where = None, *, roles: Iterable[str] | None = None) -> list[Site]:
    """Every activation site in ``model`` (modules and function attributes) with its role, optionally filtered by
    ``where`` and by ``roles`` (default: every role)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"find_activations: model must be a torch.nn.Module, got {type(model).__name__}")
    check_where(where)
    wanted = check_roles(roles)
    sites = _all_sites(model, where)
    _assign_roles(model, sites)
    return [s for s in sites if s.role in wanted]


def check_roles(roles: Iterable[str] | None) -> tuple[str, ...]:
    if roles is None:
        return ROLES
    if isinstance(roles, str):
        roles = (roles,)
    roles = tuple(roles)
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"swap: roles={roles!r}: each role must be one of {ROLES}")
    return roles


def _all_sites(model: nn.Module, where: Where) -> list[Site]:
    sites: list[Site] = []
    for parent_path, parent in _walk(model):
        for attr, child in parent._modules.items():
            if child is None:
                continue
            name = recognize(child)
            path = f"{parent_path}.{attr}" if parent_path else attr
            if name is not None and selected(where, path, child):
                sites.append(Site(parent, attr, path, child, name))
        for attr, value in vars(parent).items():
            if attr.startswith("_") or isinstance(value, (nn.Module, torch.Tensor)) or not callable(value):
                continue
            name = recognize(value)
            path = f"{parent_path}.{attr}" if parent_path else attr
            if name is not None and selected(where, path, value):
                sites.append(Site(parent, attr, path, value, name))
    return sites


# ----- roles ------------------------------------------------------------------------------------------------------

_MUL = {operator.mul, operator.imul, torch.mul}
_PASS_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "contiguous", "expand",
                 "expand_as", "float", "to", "type_as", "clone"}
_PASS_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, operator.getitem}
_GATE_NAME = re.compile(r"(^|_)(gate|scale_activation)($|_)", re.IGNORECASE)
_SE_CLASS = re.compile(r"squeeze.?excit|^se(module|block|layer)?$|effectivese", re.IGNORECASE)
_SIGMOID_LIKE = {"sigmoid", "hardsigmoid"}
_SQUASHING = {"sigmoid", "hardsigmoid", "tanh", "softsign", "log_sigmoid"}


def _assign_roles(model: nn.Module, sites: list[Site]) -> None:
    by_graph = _roles_from_graph(model, sites)
    for site in sites:  # a name that says gate or output wins; otherwise the graph decides where it could trace
        by_name = _role_from_names(site)
        site.role = by_name if by_name != "hidden" else by_graph.get(site.path, "hidden")


def _roles_from_graph(model: nn.Module, sites: list[Site]) -> dict[str, str]:
    """path -> role for the module sites torch.fx sees; {} when the model cannot be traced."""
    paths = {s.path for s in sites if isinstance(s.current, nn.Module)}
    if not paths:
        return {}

    class Leaves(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return qualname in paths or super().is_leaf_module(m, qualname)

    try:
        graph = Leaves().trace(model)
    except Exception:  # data-dependent control flow, unsupported ops: names decide instead
        return {}
    modules = dict(model.named_modules())
    recognized = {s.path: s.recognized_as for s in sites}
    roles = {}
    for node in graph.nodes:
        if node.op == "call_module" and node.target in paths:
            path = str(node.target)
            multiplies, reaches_output = _uses(node, modules, paths)
            roles[path] = ("gate" if multiplies and recognized[path] in _SIGMOID_LIKE else
                           "output" if reaches_output and recognized[path] in _SQUASHING else "hidden")
    return roles


def _passes_through(node: torch.fx.Node, modules: Mapping[str, nn.Module], paths: set[str]) -> bool:
    """A node that carries its input on unchanged in meaning: reshapes, indexing, dropout and other modules with
    nothing learned (activations excepted)."""
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    if node.op == "call_function":
        return node.target in _PASS_FUNCTIONS
    if node.op == "call_module":
        m = modules.get(str(node.target))
        return m is not None and str(node.target) not in paths and not any(True for _ in m.parameters())
    return False


def _uses(node: torch.fx.Node, modules: Mapping[str, nn.Module], paths: set[str]) -> tuple[bool, bool]:
    """(its output multiplies another tensor, its output reaches the model's output), following pass-through
    nodes."""
    frontier, seen = [node], {node}
    multiplies = output = False
    while frontier:
        current = frontier.pop()
        for user in current.users:
            if user.op == "output":
                output = True
            elif (user.op == "call_function" and user.target in _MUL) or \
                    (user.op == "call_method" and user.target in ("mul", "mul_")):
                others = [a for a in user.args if a is not current]
                multiplies = multiplies or any(isinstance(a, torch.fx.Node) for a in others)
            elif _passes_through(user, modules, paths) and user not in seen:
                seen.add(user)
                frontier.append(user)
    return multiplies, output


def _role_from_names(site: Site) -> str:
    last = site.path.rsplit(".", 1)[-1]
    if _GATE_NAME.search(last):
        return "gate"
    if site.recognized_as in _SIGMOID_LIKE and _SE_CLASS.search(type(site.parent).__name__):
        return "gate"
    if site.recognized_as in _SQUASHING and "pooler" in site.path.lower().split("."):
        return "output"
    return "hidden"


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
        _refuse_non_elementwise(to)
        return lambda: copy.deepcopy(to)
    if isinstance(to, (str, catalog.ActivationSpec)):
        _refuse_non_elementwise(get(to))  # validate once, before anything in the model changes
        return lambda: get(to)
    if isinstance(to, type) and issubclass(to, nn.Module):
        return to
    if callable(to):
        return to
    raise TypeError(f"swap: to={to!r} must be an activation name, a spec, a module, a module class or a factory")


def _update_configs(model: nn.Module, to: Any, replaced: list[Site], every: list[Site] | None) -> None:
    """A Hugging Face model rebuilds its hidden activations from ``config.hidden_act`` on load: point it at the new
    activation (``"actlab:<to>"``) when the swap replaced every hidden site with one named activation, so a
    save/reload keeps the swap; otherwise warn that a reload would restore the old one."""
    configs: dict[int, Any] = {}
    for m in model.modules():
        config = getattr(m, "config", None)
        if config is not None and hasattr(config, "hidden_act"):
            configs[id(config)] = config
    if not configs or not replaced:
        return
    sites = every if every is not None else find_activations(model)  # the model's every site, roles assigned
    hidden = {s.path for s in sites if s.role == "hidden"}
    complete = isinstance(to, str) and hidden <= {s.path for s in replaced}
    if not complete:
        warnings.warn("swap: this Hugging Face model's config.hidden_act was left as it was (the swap did not replace "
                      "every hidden activation with one named activation), so save_pretrained/from_pretrained would "
                      "build the old activation again", stacklevel=3)
        return
    from actlab.integrations import transformers as hf

    hf.register()
    for config in configs.values():
        config.hidden_act = hf.hidden_act(to)


def _refuse_non_elementwise(module: nn.Module) -> None:
    spec = getattr(module, "spec", None)
    if spec is not None and spec.kind == "gated":
        raise ValueError(f"swap: {spec.name} is gated: it halves the last dimension, so the layer after each site "
                         "would get half the features it expects; swap cannot resize the layers around a site. Build "
                         "the model with the gated activation (its layer before doubled) instead")
    if spec is not None and spec.kind == "normalizing":
        raise ValueError(f"swap: {spec.name} is normalizing: it makes each row a distribution (attention weights, "
                         "class probabilities), not a hidden activation; swap replaces hidden activations")


def _pick(to: Any) -> Callable[[Site], Callable[[], nn.Module] | None]:
    """For a mapping ``{nn.ReLU: "gelu", "silu": "mish"}``: each site's factory by its class or catalogue name
    (None: the site is left alone); otherwise one factory for every site."""
    if not isinstance(to, Mapping):
        make = _factory(to)
        return lambda site: make
    table = []
    for key, target in to.items():
        if isinstance(key, str):
            key = catalog.spec(key).name  # unknown names fail before anything changes
        elif not (isinstance(key, type) and issubclass(key, nn.Module)):
            raise TypeError(f"swap: mapping key {key!r} must be an nn.Module class or an activation name")
        table.append((key, _factory(target)))

    def choose(site: Site) -> Callable[[], nn.Module] | None:
        for key, make in table:
            if isinstance(key, str) and site.recognized_as == key or \
                    isinstance(key, type) and isinstance(site.current, key):
                return make
        return None

    return choose


def swap(model: nn.Module, to: Any, where: Where = None, *, exclude: Where = None,
         roles: Iterable[str] = ("hidden",), dry_run: bool = False) -> int:
    """Replace activations in ``model`` with ``to`` and return how many were (or, with ``dry_run``, would be)
    replaced.

    ``to``: a name or string form (``"swish(beta=1.5, trainable=True)"``), a spec, a module (copied per site), a
    module class, a zero-argument factory, or a mapping ``{nn.ReLU: "gelu", "silu": "mish"}`` (keys: classes or
    catalogue names; sites matching no key are left alone). Gated kinds are refused: they halve the width.

    ``where`` / ``exclude`` select and drop sites: a class or tuple of classes (``nn.ReLU``), a glob over the dotted
    module path (``"encoder.*"``), or a predicate ``(path, current) -> bool``. ``roles``: which roles are replaced
    (default only hidden activations; gates and output nonlinearities are kept; see the module docstring).
    ``find_activations`` in this module lists every site with its role. Each site gets its own new module, placed on
    the device and dtype of the module it replaces (or of its parent). A swap that matches nothing warns.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"swap: model must be a torch.nn.Module, got {type(model).__name__}")
    check_where(where)
    check_where(exclude, "exclude")
    wanted = check_roles(roles)
    choose = _pick(to)
    every = find_activations(model, where)
    kept = [s for s in every if s.role not in wanted]
    sites = [s for s in every if s.role in wanted and not (exclude is not None and selected(exclude, s.path,
                                                                                              s.current))]
    replacements = []
    for site in sites:
        make = choose(site)
        if make is None:
            continue
        new: Any = make()
        if not isinstance(new, nn.Module):
            raise TypeError(f"swap: the factory returned {type(new).__name__}, not an nn.Module")
        device, dtype = _placement(site, model)
        if device is not None:
            new = new.to(device=device, dtype=dtype)
        new.train(model.training)
        replacements.append((site, new))
    if not replacements:
        why = f"; kept by role: {', '.join(f'{s.path} ({s.role})' for s in kept)}" if kept else ""
        warnings.warn(f"swap: no activation matched (where={where!r}, exclude={exclude!r}, roles={wanted}){why}. "
                      "Activation functions called inside forward (F.gelu(h)) are not modules: "
                      "actlab.swap_calls(model, to, example_input) finds and replaces those", stacklevel=2)
    log.info("swap: %d site(s) %s: %s; kept by role: %s", len(replacements),
             "would be replaced" if dry_run else "replaced", ", ".join(s.path for s, _ in replacements) or "none",
             ", ".join(f"{s.path} ({s.role})" for s in kept) or "none")
    if dry_run:
        return len(replacements)
    _update_configs(model, to, [site for site, _ in replacements], every if where is None else None)
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
