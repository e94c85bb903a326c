"""actlab: a laboratory for neural-network activation functions.

The public contract (see DESIGN.md)::

    actlab.names()                      # sorted canonical names
    actlab.spec("SiLU")                 # the spec: formula, params, reference, derivative, properties
    actlab.get("swish(beta=1.5)")       # a torch.nn.Module
    actlab.functional.swish(x, beta=1.5)
    actlab.swap(model, "gelu")          # replace every activation in a model; returns how many
    actlab.register(spec)               # add a third-party activation
"""

from actlab import functional, nn
from actlab.catalog import ActivationSpec, Param, Reference, names, register, spec, unregister
from actlab.errors import (
    ActivationSyntaxError,
    ActlabError,
    InvalidParameterError,
    ShapeError,
    UnknownActivationError,
)
from actlab.nn import Activation, get
from actlab.swap import find_activations, swap

__version__ = "0.1.0"

__all__ = [
    "Activation", "ActivationSpec", "ActivationSyntaxError", "ActlabError", "InvalidParameterError", "Param",
    "Reference", "ShapeError", "UnknownActivationError", "find_activations", "functional", "get", "names", "nn",
    "register", "spec", "swap", "unregister", "__version__",
]
