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


def compare(*activations: str, task: str = "mnist1d", seeds: int = 10, store: str = "runs/actlab.db", **options):
    """Run (or resume) a comparison from Python; returns an
    :class:`actlab.experiments.compare.ComparisonResult`. Options are StudyConfig fields (``tune_lr``,
    ``base_seed``, ``jobs``, ``mode``, ``force``, ``study``, ``data_dir``) and recipe keys (``epochs``, ``lr``,
    ``batch_size``, ``optimizer``, ``weight_decay``, ``schedule``, ``init``, ``momentum``)."""
    from actlab.experiments.compare import run_comparison
    from actlab.experiments.config import StudyConfig, merge

    config = merge(StudyConfig(activations=tuple(activations), task=task, seeds=seeds, store=str(store)), **options)
    return run_comparison(StudyConfig(**config.__dict__), command=f"actlab.compare{activations!r}")


def load_results(path: str = "runs/actlab.db", epochs: bool = False):
    """The trials in a results store as a pandas DataFrame (``epochs=True``: one row per trial and epoch)."""
    from actlab.experiments.store import load_results as _load

    return _load(path, epochs=epochs)

__version__ = "0.1.0"

__all__ = [
    "Activation", "ActivationSpec", "ActivationSyntaxError", "ActlabError", "InvalidParameterError", "Param",
    "Reference", "ShapeError", "UnknownActivationError", "compare", "find_activations", "functional", "get",
    "load_results", "names", "nn",
    "register", "spec", "swap", "unregister", "__version__",
]
