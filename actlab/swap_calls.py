"""Replace activation *functions* called inside a model's forward (``F.gelu(h)`` in a custom module), which
:func:`actlab.swap` cannot see: there is no module or attribute to replace, only a call.

Opt-in, because a call is only found by running the model: :func:`find_calls` runs one forward pass on an example
input under a ``TorchFunctionMode`` and lists each call site, that is each (calling module, activation function)
pair; :func:`swap_calls` then gives each selected site its own actlab module, registered on the calling module as
``<function>_swapped`` (so trainable parameters are trained, saved in the state dict and moved by ``.to()``), and
from then on the model's forward runs under a mode that routes those calls to it.

Roles are decided by the function, since a call carries no graph around it:

- **hidden**: relu, leaky_relu, elu, celu, selu, gelu, silu, mish, relu6, hardswish, rrelu (the functions, their
  in-place forms and the tensor methods);
- **gate**: sigmoid, hardsigmoid (``x * torch.sigmoid(s)`` is how gates are written);
- **output**: tanh, softsign, logsigmoid, softplus (squashing and positivity transforms: logit soft-capping,
  variances, step sizes).

By default only hidden calls are replaced. Calls made inside an activation module (``nn.GELU`` calling ``F.gelu``,
transformers' ``NewGELUActivation`` calling ``torch.tanh``) belong to that module: they are not call sites, and
:func:`actlab.swap` is what replaces the module. The routing is Python: a mode that sees every torch call in the
forward and hooks on every module call, tens of microseconds per forward pass (fwd+bwd of a 4-layer MLP, width 256:
1.12x at batch 100, 1.02x at batch 1024 on a 2-core CPU; benchmarks/bench_swap_calls.py). torch.compile traces
through it and gives the swapped output.
"""

from __future__ import annotations

import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as torch_module
from torch.overrides import TorchFunctionMode

from actlab import catalog
from actlab.nn import Activation, get
from actlab.swap import ROLES, Where, check_roles, check_where, recognize, selected

__all__ = ["CallSite", "find_calls", "observe_calls", "swap_calls"]
log = logging.getLogger(__name__)

_T = torch.Tensor
# function -> (catalogue name, role, in place)
_CALLS: dict[Any, tuple[str, str, bool]] = {}
for _name, _kind, _functions, _inplace in [
    ("relu", "hidden", (F.relu, torch.relu, _T.relu), (torch.relu_, _T.relu_)),
    ("leaky_relu", "hidden", (F.leaky_relu,), (F.leaky_relu_,)),
    ("elu", "hidden", (F.elu,), (F.elu_,)),
    ("celu", "hidden", (F.celu,), (F.celu_,)),
    ("selu", "hidden", (F.selu, torch.selu), (torch.selu_,)),
    ("gelu", "hidden", (F.gelu,), ()),
    ("swish", "hidden", (F.silu,), ()),
    ("mish", "hidden", (F.mish,), ()),
    ("relu6", "hidden", (F.relu6,), ()),
    ("hardswish", "hidden", (F.hardswish,), ()),
    ("rrelu", "hidden", (F.rrelu,), (F.rrelu_,)),
    ("sigmoid", "gate", (torch.sigmoid, F.sigmoid, _T.sigmoid), (torch.sigmoid_, _T.sigmoid_)),
    ("hardsigmoid", "gate", (F.hardsigmoid,), ()),
    ("tanh", "output", (torch.tanh, F.tanh, _T.tanh), (torch.tanh_, _T.tanh_)),
    ("softsign", "output", (F.softsign,), ()),
    ("log_sigmoid", "output", (F.logsigmoid,), ()),
    ("softplus", "output", (F.softplus,), ()),
]:
    _CALLS.update({f: (_name, _kind, False) for f in _functions})
    _CALLS.update({f: (_name, _kind, True) for f in _inplace})

# catalogue name -> the out-of-place function (same positional arguments as its in-place forms and methods)
_OUT_OF_PLACE = {name: f for f, (name, _, inplace) in reversed(list(_CALLS.items())) if not inplace}

_INSTALLED = "_actlab_calls"  # on a calling module: catalogue name -> attribute of its replacement module
_HOOKED = "_actlab_call_hooks"  # on the root model: whether the hooks that enter and leave the mode are there


@dataclass(frozen=True)
class CallSite:
    """An activation function called inside a module's forward: the module's path ("" for the model itself), the
    catalogue name of the function, its role, and how many times one forward pass called it."""

    path: str
    function: str
    role: str
    calls: int


class _ModuleStack:
    """The modules running now, innermost last, kept by global forward hooks while a mode is active."""

    def __init__(self) -> None:
        self._local = threading.local()  # the hooks are global, the modules running are each thread's own
        self._handles: list[Any] = []
        self._users = 0

    @property
    def modules(self) -> list[nn.Module]:
        local = self._local.__dict__
        if "modules" not in local:
            local["modules"], local["activations"] = [], 0
        return local["modules"]

    @property
    def activations(self) -> int:
        """How many of this thread's running modules are activation modules: calls inside those are not sites."""
        self.modules  # noqa: B018  (creates this thread's state)
        return self._local.activations

    @activations.setter
    def activations(self, value: int) -> None:
        self.modules  # noqa: B018
        self._local.activations = value

    def push(self, module: nn.Module, *_: Any) -> None:
        self.modules.append(module)
        self.activations += _is_activation(module)

    def pop(self, module: nn.Module, *_: Any) -> None:
        if self.modules and self.modules[-1] is module:
            self.modules.pop()
            self.activations -= _is_activation(module)

    def __enter__(self) -> _ModuleStack:
        if self._users == 0:
            self._handles = [torch_module.register_module_forward_pre_hook(self.push),
                             torch_module.register_module_forward_hook(self.pop, always_call=True)]
        self._users += 1
        return self

    def __exit__(self, *_: Any) -> None:
        self._users -= 1
        if self._users == 0:
            for handle in self._handles:
                handle.remove()
            self._handles = []
            self.modules.clear()
            self.activations = 0  # this thread's; another thread's stack empties as its modules return


_STACK = _ModuleStack()
_ACTIVATION_TYPES: dict[type, bool] = {}


def _is_activation(module: nn.Module) -> bool:
    kind = type(module)
    if kind not in _ACTIVATION_TYPES:
        _ACTIVATION_TYPES[kind] = isinstance(module, Activation) or recognize(module) is not None
    return _ACTIVATION_TYPES[kind]


def _caller(func: Any) -> nn.Module | None:
    """The module whose forward made this activation call, or None (not an activation function, no module running,
    or inside an activation module, whose own calls are not sites)."""
    if func in _CALLS and _STACK.modules and not _STACK.activations:
        return _STACK.modules[-1]
    return None


class _Record(TorchFunctionMode):
    """Counts the activation calls each module makes (outside activation modules)."""

    def __init__(self, paths: Mapping[int, str]) -> None:
        super().__init__()
        self.paths = paths
        self.counts: dict[tuple[str, Any], int] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        module = _caller(func)
        path = None if module is None else self.paths.get(id(module))
        if path is not None:
            key = (path, _CALLS[func][0])
            self.counts[key] = self.counts.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


class _Route(TorchFunctionMode):
    """Sends the calls of the installed sites to their replacement modules."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        caller = _caller(func)
        if caller is not None:
            installed = caller.__dict__.get(_INSTALLED)
            name, _, inplace = _CALLS[func]
            if installed and name in installed:
                x = args[0] if args else kwargs["input"]
                replacement = getattr(caller, installed[name])
                if not (inplace or _asks_in_place(func, args, kwargs)):
                    return replacement(x)
                # in place, as the caller asked (it may ignore the result); the replacement's backward keeps a copy
                # of the input, which the write would otherwise change under it
                return x.copy_(replacement(x.clone() if x.requires_grad else x))
        return func(*args, **kwargs)


class _Observe(TorchFunctionMode):
    """Reports each activation call a module's forward makes (outside activation modules): see observe_calls."""

    def __init__(self, before: Callable[..., Any], after: Callable[..., None]) -> None:
        super().__init__()
        self.before, self.after = before, after

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        caller = _caller(func)
        if caller is None:
            return func(*args, **kwargs)
        name = _CALLS[func][0]
        x = args[0] if args else kwargs["input"]
        rest = args[1:]
        where = _inplace_position(func)
        if where is not None:
            rest = rest[:where - 1]
        options = {k: v for k, v in kwargs.items() if k not in ("input", "inplace", "out")}
        pure = _OUT_OF_PLACE[name]
        token = self.before(caller, name, x, lambda t: pure(t, *rest, **options))
        result = func(*args, **kwargs)
        self.after(caller, name, result, token)
        return result


class observe_calls:  # noqa: N801  (a context manager used like a function)
    """While active, report the activation calls made inside modules' forwards: ``before(caller, name, x, call)``
    runs before the call (``x`` is its input, not yet written by an in-place call; ``call(t)`` computes the same
    activation out of place, with the call's own arguments such as a slope) and ``after(caller, name, result,
    token)`` after it, ``token`` being what ``before`` returned. Only calls made directly by a module (not inside
    an activation module) are reported, as :func:`find_calls` lists them."""

    def __init__(self, before: Callable[..., Any], after: Callable[..., None], running: nn.Module | None = None
                 ) -> None:
        self._mode = _Observe(before, after)
        self._running = running  # a module whose forward has already begun (entered from its own pre-hook)

    def __enter__(self) -> observe_calls:
        _STACK.__enter__()
        if self._running is not None and not (_STACK.modules and _STACK.modules[-1] is self._running):
            _STACK.push(self._running)  # the global hooks began after its call did
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)
        if self._running is not None:
            _STACK.pop(self._running)
        _STACK.__exit__()


_INPLACE_POSITION: dict[Any, int | None] = {}


def _asks_in_place(func: Any, args: Any, kwargs: Mapping[str, Any]) -> bool:
    """``F.relu(x, inplace=True)``, or ``F.relu(x, True)``: the caller may ignore the result."""
    if "inplace" in kwargs:
        return bool(kwargs["inplace"])
    where = _inplace_position(func)
    return where is not None and len(args) > where and bool(args[where])


def _inplace_position(func: Any) -> int | None:
    """Where ``inplace`` stands among ``func``'s positional arguments, or None."""
    if func not in _INPLACE_POSITION:  # inspect.signature costs tens of microseconds: once per function
        try:
            parameters = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):  # builtins without a signature have no inplace argument
            parameters = []
        _INPLACE_POSITION[func] = parameters.index("inplace") if "inplace" in parameters else None
    return _INPLACE_POSITION[func]


def _paths(model: nn.Module) -> dict[int, str]:
    return {id(m): path for path, m in model.named_modules(remove_duplicate=False)}


def _run(model: nn.Module, example: Any) -> None:
    args, kwargs = (example, {}) if isinstance(example, tuple) else \
        ((), example) if isinstance(example, dict) else ((example,), {})
    with torch.no_grad():
        model(*args, **kwargs)


def find_calls(model: nn.Module, example: Any, *, roles: Iterable[str] | None = None,
               where: Where = None) -> list[CallSite]:
    """Every activation function ``model``'s forward calls on ``example`` (a tensor, a tuple of positional
    arguments or a dict of keyword arguments), by calling module and function, outside activation modules.
    ``roles`` and ``where`` (a glob over the calling module's path, or a predicate ``(path, module) -> bool``)
    filter the list."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"find_calls: model must be a torch.nn.Module, got {type(model).__name__}")
    check_where(where)
    wanted = check_roles(roles) if roles is not None else ROLES
    paths = _paths(model)
    modules = dict(model.named_modules())
    record = _Record(paths)
    modes = [(m, m.training) for m in model.modules()]  # each module's own: a frozen backbone stays in eval
    model.eval()  # one pass to look, without touching batch-norm statistics or dropout's generator
    try:
        with _STACK, record:
            _run(model, example)
    finally:
        for m, training in modes:
            m.training = training
    sites = [CallSite(path, name, _role(name), n) for (path, name), n in record.counts.items()]
    return [s for s in sorted(sites, key=lambda s: (s.path, s.function))
            if s.role in wanted and selected(where, s.path, modules.get(s.path))]


def _label(site: CallSite) -> str:
    return f"{site.path or '<model>'}:{site.function}"


def _role(name: str) -> str:
    return next(role for n, role, _ in _CALLS.values() if n == name)


def _target_for(to: Any) -> Callable[[CallSite], str | None]:
    if isinstance(to, Mapping):
        table = {}
        for key, target in to.items():
            if not isinstance(key, str):
                raise TypeError(f"swap_calls: mapping key {key!r} must be an activation name (a call has no class)")
            table[catalog.spec(key).name] = _checked(target)
        return lambda site: table.get(site.function)
    target = _checked(to)
    return lambda site: target


def _checked(to: Any) -> str:
    if not isinstance(to, str):
        raise TypeError(f"swap_calls: to={to!r} must be an activation name or string form such as "
                        "'swish(beta=1.5)'")
    module = get(to)  # validates the name and its parameters before anything changes
    if module.spec.kind != "elementwise":
        raise ValueError(f"swap_calls: to={to!r} is {module.spec.kind}; a call site can only take an elementwise "
                         "activation (the tensors around it keep their shape)")
    return to


def swap_calls(model: nn.Module, to: str | Mapping[str, str], example: Any, *, where: Where = None,
               exclude: Where = None, roles: Iterable[str] = ("hidden",), dry_run: bool = False) -> int:
    """Replace the activation functions ``model``'s forward calls (found by running it once on ``example``) with
    ``to``; return how many call sites were (or, with ``dry_run``, would be) replaced.

    ``to``: an activation name or string form (``"swish(beta=1.5, trainable=True)"``), or a mapping from the
    called function's catalogue name to one (``{"gelu": "mish", "relu": "leaky_relu"}``; ``F.silu`` is
    ``"swish"``). ``where`` / ``exclude``: a glob over the calling module's path or a predicate. ``roles``: as in
    :func:`actlab.swap`, by function (see the module docstring). Each site gets its own module, on the calling
    module as ``<function>_swapped``, on the device and dtype of the calling module's parameters. A swap that
    matches nothing warns. Module activations are :func:`actlab.swap`'s job: use both for a complete swap.
    """
    check_where(exclude, "exclude")
    wanted = check_roles(roles)
    choose = _target_for(to)
    every = find_calls(model, example, where=where)
    kept = [s for s in every if s.role not in wanted]
    modules = dict(model.named_modules())
    plan: list[tuple[CallSite, str]] = []
    for site in every:
        if site.role not in wanted or (exclude is not None and selected(exclude, site.path, modules.get(site.path))):
            continue
        target = choose(site)
        if target is not None:
            plan.append((site, target))
    if not plan:
        why = f"; kept by role: {', '.join(f'{_label(s)} ({s.role})' for s in kept)}" if kept else ""
        warnings.warn(f"swap_calls: no activation call matched (where={where!r}, exclude={exclude!r}, "
                      f"roles={wanted}){why}", stacklevel=2)
    log.info("swap_calls: %d call site(s) %s: %s", len(plan), "would be replaced" if dry_run else "replaced",
             ", ".join(_label(s) for s, _ in plan) or "none")
    if dry_run or not plan:
        return len(plan)
    for site, target in plan:
        caller = modules[site.path]
        new = get(target)
        reference = next((p for p in caller.parameters() if p.is_floating_point()), None)
        if reference is not None:
            new = new.to(device=reference.device, dtype=reference.dtype)
        new.train(caller.training)
        attribute = f"{site.function}_swapped"
        caller.add_module(attribute, new)
        caller.__dict__.setdefault(_INSTALLED, {})[site.function] = attribute
    _install(model)
    return len(plan)


def _install(model: nn.Module) -> None:
    """From now on the model's forward runs under the routing mode (once per model, however many swaps). The hooks
    are module-level functions of the module they are called with, so a deepcopy or a pickle of the model routes
    its own calls to its own replacement modules."""
    if model.__dict__.get(_HOOKED):
        return
    model.register_forward_pre_hook(_enter)
    model.register_forward_hook(_leave, always_call=True)
    model.__dict__[_HOOKED] = True


_ROUTES: list[_Route] = []


def _enter(model: nn.Module, *_: Any) -> None:
    _STACK.__enter__()
    if not (_STACK.modules and _STACK.modules[-1] is model):  # the global hooks began after the model's own
        _STACK.push(model)
    mode = _Route()
    mode.__enter__()
    _ROUTES.append(mode)


def _leave(model: nn.Module, *_: Any) -> None:
    _ROUTES.pop().__exit__(None, None, None)
    _STACK.pop(model)
    _STACK.__exit__()
