"""actlab: a laboratory for neural-network activation functions.

The public contract (see DESIGN.md)::

    actlab.names()                      # sorted canonical names
    actlab.spec("SiLU")                 # the spec: formula, params, reference, derivative, properties
    actlab.get("swish(beta=1.5)")       # a torch.nn.Module
    actlab.functional.swish(x, beta=1.5)
    actlab.swap(model, "gelu")          # replace the hidden activations in a model (gates kept); returns how many
    actlab.swap_calls(model, "gelu", x) # replace F.gelu(...) and the like called inside forward (found by a run)
    actlab.register(spec)               # add a third-party activation
    actlab.monitor(model)               # dead, saturated and gradient-flow statistics while a model trains
    actlab.plot("swish", "gelu")        # a matplotlib figure of the functions and their derivatives
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from actlab import catalog, functional, nn
from actlab.catalog import ActivationSpec, Param, Reference, names, register, spec, unregister
from actlab.errors import (
    ActivationSyntaxError,
    ActlabError,
    InvalidParameterError,
    ShapeError,
    UnknownActivationError,
    lab_hint,
)
from actlab.monitor import ActivationMonitor, monitor
from actlab.nn import Activation, get
from actlab.swap import find_activations, swap
from actlab.swap_calls import find_calls, swap_calls

if TYPE_CHECKING:  # the lab's types, for annotations only: the core imports neither pandas nor the lab
    import pandas

    from actlab.experiments.comparison.compare import ComparisonResult

# The library logs to "actlab" and stays quiet unless the application configures logging (the CLI shows warnings,
# or more with --log-level).
logging.getLogger("actlab").addHandler(logging.NullHandler())


def compare(*activations: str, task: str = "mnist1d", seeds: int = 10, store: str = "runs/actlab.db",
            data: Any = None, model: Callable[[Callable[[], torch.nn.Module]], torch.nn.Module] | None = None,
            **options: Any) -> ComparisonResult:
    """Run (or resume) a comparison from Python; returns an
    :class:`actlab.experiments.comparison.compare.ComparisonResult`. Each activation trains at its own lr, chosen
    on a validation split from a grid around the recipe's (``tune_lr=`` gives the grid; ``lr=`` alone pins one
    rate for all); ``tune={"weight_decay": [0, 0.05]}`` chooses other recipe fields with it. Options are StudyConfig
    fields (``tune_lr``, ``tune``, ``tune_seeds``, ``baseline``, ``all_pairs``,
    ``cost``, ``base_seed``, ``jobs``, ``mode``, ``force``, ``study``, ``data_dir``) and recipe keys (``epochs``,
    ``lr``, ``batch_size``, ``optimizer``, ``weight_decay``, ``schedule``, ``init``, ``momentum``).

    Your own data: ``data=(x_train, y_train, x_test, y_test)`` (tensors or arrays; or a pair of
    ``torch.utils.data.Dataset``) and ``model=lambda make_act: nn.Sequential(..., make_act(), ...)``, which
    builds the network calling ``make_act()`` for a fresh activation module at each site."""
    try:
        from actlab.experiments.comparison.compare import run_comparison
        from actlab.experiments.comparison.config import StudyConfig, merge
        from actlab.experiments.workload.tasks import custom_task
    except ImportError as exc:
        raise lab_hint(exc, "actlab.compare") from exc

    if (data is None) != (model is None):
        raise ActlabError("compare: give both data= and model= (or neither, to use a named task)")
    if data is not None and model is not None:
        if options.get("jobs", 1) != 1:
            raise ActlabError("compare: a task built from Python data and a model factory runs in-process (jobs=1)")
        task = custom_task(data, model).text
    config = merge(StudyConfig(activations=tuple(activations), task=task, seeds=seeds, store=str(store)), **options)
    return run_comparison(StudyConfig(**config.__dict__), command=f"actlab.compare{activations!r}")


def plot(*activations: str, derivative: bool = True, x_range: tuple[float, float] = (-5.0, 5.0),
         ax: Any = None) -> Any:
    """A matplotlib figure of each activation (solid) and, with ``derivative=True``, its derivative (dashed, same
    colour): ``actlab.plot("swish", "gelu", "swish(beta=4)")``. Gated kinds draw their gate. ``ax``: draw into
    existing axes. Needs matplotlib (the lab extra)."""
    if not activations:
        raise ValueError("plot: name at least one activation, e.g. actlab.plot('swish', 'gelu')")
    if not isinstance(derivative, bool):
        raise TypeError(f"plot: derivative={derivative!r} must be True or False")
    low, high = (float(v) for v in x_range)
    if not (low < high) or not all(abs(v) < float("inf") for v in (low, high)):
        raise ValueError(f"plot: x_range={x_range!r} must be two finite numbers, low < high")
    resolved = [catalog.resolve(a) for a in activations]  # unknown names fail before matplotlib loads
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise lab_hint(exc, "actlab.plot") from exc
    from actlab.analysis.plots import plot_activations

    return plot_activations(resolved, ax=ax, x_range=(low, high), derivative=derivative)


def load_results(path: str = "runs/actlab.db", epochs: bool = False) -> pandas.DataFrame:
    """The trials in a results store as a pandas DataFrame (``epochs=True``: one row per trial and epoch)."""
    try:
        from actlab.experiments.results.store import load_results as _load

        return _load(path, epochs=epochs)
    except ImportError as exc:
        raise lab_hint(exc, "actlab.load_results") from exc

__version__ = "0.1.0"

__all__ = [
    "Activation", "ActivationMonitor", "ActivationSpec", "ActivationSyntaxError", "ActlabError",
    "InvalidParameterError", "Param", "Reference", "ShapeError", "UnknownActivationError", "compare",
    "find_activations", "find_calls", "functional", "get", "load_results", "monitor", "names", "nn", "plot", "register",
    "spec", "swap", "swap_calls", "unregister", "__version__",
]
