"""PyTorch modules, one class per activation in the catalogue (``actlab.nn.Swish``, ``actlab.nn.LeakyReLU``...),
all subclasses of :class:`Activation`. Build them by name with :func:`actlab.get`.

Trainable parameters are ``nn.Parameter``s (swish ``beta`` with ``trainable=True``; prelu's ``weight``
always, one slope or one per channel), so they are saved in ``state_dict``, moved by ``.to()`` and seen by
optimizers. Fixed parameters are plain attributes shown by ``extra_repr``. The output dtype follows the input.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from actlab import catalog
from actlab.catalog.spec import ActivationSpec
from actlab.errors import InvalidParameterError
from actlab.kernels import eager_call, learned_call, native_call, run
from actlab.kernels.dispatch import channel_view

__all__ = ["Activation", "get", "module_class"]

_WORDS = {
    "relu": "ReLU", "prelu": "PReLU", "rrelu": "RReLU", "elu": "ELU", "celu": "CELU", "selu": "SELU",
    "gelu": "GELU", "glu": "GLU", "reglu": "ReGLU", "geglu": "GEGLU", "swiglu": "SwiGLU", "relu6": "ReLU6",
}
_CLASSES: dict[str, type[Activation]] = {}  # canonical name -> class


class Activation(nn.Module):
    """Base class of actlab's activation modules. ``spec`` is the class's catalogue entry.

    Construct with the activation's parameters as keywords; ``trainable=True`` turns every parameter that
    allows it into an ``nn.Parameter`` (or pass a list of names). ``inplace=True`` (as for ``nn.ReLU``) is honoured
    where PyTorch's native op has an in-place form and ignored otherwise, so the classes work as timm's
    ``act_layer`` and torchvision's ``activation_layer``.
    """

    spec: ClassVar[ActivationSpec]

    def __init__(self, *args: Any, trainable: bool | Iterable[str] = False, inplace: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, **params: Any) -> None:
        super().__init__()
        spec = self.spec
        unknown = [k for k in params if k not in spec.params]
        if unknown:
            allowed = ", ".join([*spec.params, "trainable", "inplace", "device", "dtype"])
            raise TypeError(f"{type(self).__name__}() got unexpected keyword argument(s) "
                            f"{', '.join(map(repr, unknown))}; it takes: {allowed}")
        if len(args) > len(spec.params):
            raise InvalidParameterError(
                spec.name, None, args, f"{spec.name} takes at most {len(spec.params)} positional parameter(s)"
            )
        for key, value in zip(spec.params, args):
            if key in params:
                raise InvalidParameterError(spec.name, key, value, f"parameter {key!r} is given twice")
            params[key] = value
        values = spec.resolve_params(params)
        self.inplace = bool(inplace)
        self.trainable = self._trainable_names(trainable)
        self.values = {k: v for k, v in values.items() if k not in self.trainable}
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        if spec.weight is not None:
            param, size = spec.weight
            self.weight = nn.Parameter(torch.full((values[size],), float(values[param]), device=device, dtype=dtype))
        else:
            for name in self.trainable:
                self.register_parameter(name, nn.Parameter(self._initial(name, values, factory)))
        self._bind()

    def _initial(self, name: str, values: dict[str, Any], factory: dict[str, Any]) -> torch.Tensor:
        """A learned parameter's first value: a vector parameter's numbers, one value per channel where the spec
        learns per channel and more than one is asked for, else a scalar."""
        spec = self.spec
        value, param = values[name], spec.params[name]
        if param.length is not None:
            shape: tuple[int, ...] = (param.length,)
        elif spec.per_channel is not None and values[spec.per_channel] > 1:
            shape = (values[spec.per_channel],)
        else:
            shape = ()
        if param.sample is not None and name in spec.learned:
            return torch.as_tensor(param.sample(shape)).to(**{k: v for k, v in factory.items() if v is not None})
        if param.length is not None:
            return torch.tensor(value, **factory)
        return torch.full(shape, float(value), **factory)

    def __getattr__(self, name: str) -> Any:
        """A fixed parameter reads as an attribute (``act.beta``), as PyTorch's modules show theirs."""
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a fixed parameter (``act.beta = 2.0``) validates it and rebinds forward, as assigning
        ``negative_slope`` on nn.LeakyReLU changes what it computes; it was stored and never read."""
        if name == "inplace" and "_bound" in self.__dict__:  # hooks code turns inplace off after construction
            self.__dict__["inplace"] = bool(value)
            self._bind()
            return
        values = self.__dict__.get("values")
        if values is not None and name in values:
            spec = self.spec
            if (spec.weight is not None and name == spec.weight[1]) or name == spec.per_channel:
                raise AttributeError(f"{type(self).__name__}.{name} sizes the learned weight; build a new module")
            resolved = spec.resolve_params({**values, name: value})
            self.__dict__["values"] = {k: resolved[k] for k in values}
            self._bind()
            return
        super().__setattr__(name, value)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_bound"] = state["_bound_learned"] = state["_bound_native"] = None  # bound closures: rebuilt on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.inplace = state.get("inplace", False)  # modules pickled before inplace= existed
        self._bind()

    def _bind(self) -> None:
        """Forward's shortcuts, decided once: ``_bound``, PyTorch's op bound to fixed parameters (the native
        module's cost), or else the lean eager path of an activation PyTorch lacks (:func:`eager_call`);
        ``_bound_native``, an op that takes the learned tensors itself (F.prelu), called with them; ``_bound_learned``,
        the lean paths for trained tensors otherwise (:func:`learned_call`, a trained swish beta)."""
        spec = self.spec
        self._bound = self._bound_learned = None
        if not self.trainable:
            inplace = native_call(spec, self.values, inplace=True) if self.inplace else None
            self._bound = inplace or native_call(spec, self.values) or eager_call(spec, self.values)
        takes_tensors = bool(self.trainable) and spec.native is not None and spec.native_covers(
            **self.parameter_values())
        self._bound_native = self._native_with_tensors() if takes_tensors else None
        if self.trainable and not takes_tensors and spec.weight is None:
            self._bound_learned = learned_call(spec, self.values, self.trainable)

    def _native_with_tensors(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The native op called with the fixed parameters and the learned tensors, looked up per call (a parameter
        may be replaced) but without the module's attribute machinery: at small sizes that costs a few percent."""
        native, fixed, parameters, spec = self.spec.native, dict(self.values), self._parameters, self.spec
        assert native is not None
        pairs = [(spec.weight[0], "weight")] if spec.weight is not None else [(name, name) for name in self.trainable]

        def call(x: torch.Tensor) -> torch.Tensor:
            return native(x, **fixed, **{name: parameters[attr] for name, attr in pairs})
        return call

    def _trainable_names(self, trainable: bool | Iterable[str]) -> tuple[str, ...]:
        spec = self.spec
        allowed = spec.trainable_params
        if spec.weight is not None:
            return (spec.weight[0],)
        if spec.learned:  # always learned; trainable=True adds the others that may be
            extra = () if trainable is False or trainable is None else tuple(allowed) if trainable is True else \
                ((trainable,) if isinstance(trainable, str) else tuple(trainable))
            for name in extra:
                if name not in allowed and name not in spec.learned:
                    raise InvalidParameterError(spec.name, "trainable", name,
                                                f"trainable parameters of {spec.name}: {', '.join(allowed)}")
            return tuple(k for k in spec.params if k in spec.learned or k in extra)
        if trainable is False or trainable is None:
            return ()
        if trainable is True:
            if not allowed:
                raise InvalidParameterError(
                    spec.name, "trainable", True, f"{spec.name} has no parameter that can be trained"
                )
            return allowed
        names = (trainable,) if isinstance(trainable, str) else tuple(trainable)
        for name in names:
            if name not in allowed:
                what = ", ".join(allowed) if allowed else "none"
                raise InvalidParameterError(spec.name, "trainable", name,
                                            f"trainable parameters of {spec.name}: {what}")
        return names

    def parameter_values(self) -> dict[str, Any]:
        """The parameters as used in forward, in the spec's order (the order the kernels take them in): Python
        values, or the tensors of trainable ones."""
        learned = self._learned()
        return {k: learned[k] if k in learned else self.values[k] for k in self.spec.params}

    def _learned(self) -> dict[str, torch.Tensor]:
        spec = self.spec
        if spec.weight is not None:
            return {spec.weight[0]: self.weight}
        return {name: getattr(self, name) for name in self.trainable}

    def current_params(self) -> dict[str, Any]:
        """Plain Python values of every parameter (trainable ones read from their tensors)."""
        out = dict(self.values)
        if self.spec.weight is not None:
            param = self.spec.weight[0]
            w = self.weight.detach()
            out[param] = float(w.reshape(-1)[0]) if w.numel() else self.values.get(param)
        else:
            for name in self.trainable:
                tensor = getattr(self, name).detach()
                out[name] = float(tensor) if tensor.numel() == 1 else tuple(tensor.tolist())
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bound = self._bound
        if bound is not None and not (self.training and self.spec.stochastic):
            return bound(x)
        learned = self._bound_learned
        if learned is not None:  # a trained beta: the lean paths with the module's decisions made once
            parameters = self._parameters
            return learned(x, *[parameters[name] for name in self.trainable])
        native = self._bound_native
        if native is not None:  # PReLU: F.prelu with the learned slopes
            if type(x) is torch.Tensor:
                return native(x)
            # tracers (torch.fx's Proxy) see the slopes as the module's attributes
            return self.spec.native(x, **self.values, **self._learned())  # type: ignore[misc]  # set for PReLU
        # Fixed parameters only: ``values`` is complete and in the spec's order, and run() does not change it.
        params = self.values if not self.trainable else self.parameter_values()
        return run(self.spec, x, params, training=self.training)

    @torch.no_grad()
    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """f'(x) elementwise, in x's dtype, at the module's current parameters (per-channel PReLU slopes
        included); only for elementwise activations."""
        if self.spec.kind != "elementwise":
            raise TypeError(f"{self.spec.name}: derivative() is defined for elementwise activations only")
        params = {k: (v.detach().to(x.dtype) if isinstance(v, torch.Tensor) else v)
                  for k, v in self.parameter_values().items()}
        if self.spec.per_channel is not None:  # as forward applies them: along dim 1
            params = {k: channel_view(v, x) if self.spec.params[k].length is None else v for k, v in params.items()}
        return self.spec.torch_derivative(x, **params)

    def extra_repr(self) -> str:
        if self.spec.weight is not None:
            size = self.spec.weight[1]
            return f"{size}={self.values[size]}" + (", inplace=True" if self.inplace else "")
        shown = [f"{k}={v!r}" for k, v in self.values.items()]
        if self.trainable:
            shown.append(f"trainable={self.trainable!r}")
        if self.inplace:
            shown.append("inplace=True")
        return ", ".join(shown)


def class_name(name: str) -> str:
    """``leaky_relu`` -> ``LeakyReLU``; any other text becomes a valid identifier."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    camel = "".join(_WORDS.get(p.lower(), p[:1].upper() + p[1:]) for p in parts) or "Activation"
    if not camel[0].isalpha():
        camel = "Act" + camel
    return camel


def module_class(spec: ActivationSpec | str) -> type[Activation]:
    """The module class for a spec (created once, and published as ``actlab.nn.<ClassName>``)."""
    if isinstance(spec, str):
        spec = catalog.spec(spec)
    cls = _CLASSES.get(spec.name)
    if cls is not None and cls.spec is spec:
        return cls
    name = class_name(spec.name)
    existing = vars(sys.modules[__name__]).get(name)
    if isinstance(existing, type) and issubclass(existing, Activation) and existing.spec.name != spec.name:
        name = f"{name}_{abs(hash(spec.name)) % 10**8}"
    doc = f"{spec.summary}\n\nFormula: ${spec.formula}$\n\nReferences:\n" + "\n".join(
        f"    {r}" for r in spec.references
    )
    cls = type(name, (Activation,), {"spec": spec, "__doc__": doc, "__module__": __name__, "__qualname__": name})
    _CLASSES[spec.name] = cls
    setattr(sys.modules[__name__], name, cls)
    return cls


def get(activation: str | ActivationSpec, *, trainable: bool | Iterable[str] = False, inplace: bool = False,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None, **params: Any) -> Activation:
    """A new module for ``activation``: a name, an alias or the string form ``"swish(beta=1.5)"``.

    Keyword parameters merge with those in the string. ``trainable=True`` makes every parameter that allows it
    an ``nn.Parameter`` (``get("swish", trainable=True)``: beta is learned); the string may say it too,
    ``get("swish(beta=1.5, trainable=True)")``, the one syntax get, swap, show and compare all read. ``device`` and
    ``dtype`` place learned parameters, as PyTorch's factory keywords do.
    """
    resolved = catalog.resolve(activation, params)
    return module_class(resolved.spec)(trainable=trainable or resolved.trainable, inplace=inplace, device=device,
                                       dtype=dtype, **resolved.params)


def __getattr__(name: str) -> type[Activation]:
    """Classes of activations registered after import, and for unpickling in a fresh process."""
    for canonical in catalog.names():
        if class_name(canonical) == name or name.startswith(class_name(canonical) + "_"):
            return module_class(canonical)
    raise AttributeError(f"module 'actlab.nn' has no attribute {name!r}")


for _name in catalog.names():
    module_class(_name)
del _name
