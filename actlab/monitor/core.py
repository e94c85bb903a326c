"""ActivationMonitor: dead, saturated and gradient-flow statistics of every activation site in users' own training.

A training step is a forward pass of the monitored model in training mode with gradients enabled (a model called
twice per step counts two: with an even ``every`` the same one of the two is always sampled; use an odd ``every``
or ``steps="manual"`` there). On every ``every``-th step the monitor hooks each site for that step; on the others
only two hooks on the model itself run, which count the step.
Forwards in eval mode or without gradients, and the recomputation of checkpointed blocks during backward, are not
observed. A site whose derivative or statistics raise is turned off with a warning: the monitor never stops the
user's training. Compiled models (``torch.compile``) are refused: a compiled graph does not follow the hooks'
coming and going from step to step. ``grad_norm`` is the gradient as backward computes it, a mixed-precision loss scale
included. Statistics accumulate on the
tensors' device over a window of ``window`` steps; nothing is read to the host until someone asks (a summary, a
logger, the warnings), and then one transfer reads every site at once.

Definitions (per site, over the window's sampled steps):

- ``dead``: fraction of units whose derivative ``|f'(x)|`` is at most ``dead_below`` (default 0: exactly zero)
  for every example seen, the ReLU that never fires;
- ``saturated``: fraction of derivative values below ``saturation`` (default 0.01): a sigmoid or tanh at its flat
  tails, and for ReLU the outputs on its zero side;
- ``in_mean``, ``in_std``, ``out_mean``, ``out_std``: of the site's inputs and outputs;
- ``grad_norm``: the L2 norm of the gradient flowing back into the site's output, averaged over steps (NaN where
  backward never reached the site).
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from actlab.errors import lab_hint
from actlab.monitor.report import SiteReport, flat_metrics
from actlab.monitor.sites import MonitoredSite, autograd_derivative, discover
from actlab.monitor.window import SiteWindow
from actlab.swap import Where
from actlab.swap_calls import observe_calls

if TYPE_CHECKING:
    import pandas

__all__ = ["ActivationHealthWarning", "ActivationMonitor", "SiteReport", "check_callback_options", "monitor"]
log = logging.getLogger(__name__)


class ActivationHealthWarning(UserWarning):
    """A site crossed a monitor threshold (many dead units, most outputs saturated)."""


class _Window:
    """Every site's accumulators for one window of steps."""

    def __init__(self, sites: Sequence[MonitoredSite], first_step: int) -> None:
        self.sites = {id(s): SiteWindow() for s in sites}
        self.first_step = first_step
        self.steps = 0
        self.sampled = 0


def _check_fraction(name: str, value: Any, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        allowed = "a fraction in [0, 1] or None (no warning)" if allow_none else "a fraction in [0, 1]"
        raise ValueError(f"monitor: {name}={value!r} is out of range; {allowed}")
    return float(value)


def _check_count(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "a positive int" + (" or None" if allow_none else "")
        raise ValueError(f"monitor: {name}={value!r} is not allowed; {allowed}")
    return value


class ActivationMonitor:
    """Per-site activation health of ``model`` while it trains. Prefer :func:`actlab.monitor`, which builds and
    starts one.

    ``example``: an input (a tensor, a tuple of positional arguments or a dict of keyword arguments) on which the
    model runs once to find activation *functions* called inside ``forward`` (``F.gelu(h)``); without it, module
    and attribute sites only. ``sites``: the names to watch (default every site of ``roles``, which default to all
    three: hidden, gate, output); ``where``: a class, a glob over paths or a predicate, as in :func:`actlab.swap`.
    ``every``: sample one training step in ``every`` (default 32: a sampled step costs about as much again as the
    activations' own forward and backward, so sampling keeps the flagship MLP's step within 5%; ``every=1`` watches
    every step); ``window``: steps per window (default 256, so 8 sampled steps; None: one window from the start
    until :meth:`reset`). ``saturation``: derivative magnitude below which an output counts as saturated;
    ``dead_below``: at or below which a unit counts as inactive on an example. ``warn_dead`` / ``warn_saturated``:
    warn (:class:`ActivationHealthWarning`, once per site until it recovers) when a closed window's fraction
    exceeds them; None turns that warning off. ``unit_dim``: the axis that holds units, for every site or by site
    name. ``steps``: ``"forward"`` (default) counts each forward pass of ``model`` in training mode with
    gradients enabled as a step; ``"manual"``: :meth:`step_begin` and :meth:`step_end` mark them (what the
    Lightning and Hugging Face callbacks do, since a trainer's step may not call the model's own forward).
    """

    def __init__(self, model: nn.Module, example: Any = None, *, sites: Iterable[str] | None = None,
                 where: Where = None, roles: Iterable[str] | None = None, every: int = 32, window: int | None = 256,
                 saturation: float = 0.01, dead_below: float = 0.0, warn_dead: float | None = 0.5,
                 warn_saturated: float | None = 0.95, unit_dim: int | Mapping[str, int] | None = None,
                 steps: str = "forward") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"monitor: model must be a torch.nn.Module, got {type(model).__name__}")
        if hasattr(model, "_orig_mod") or getattr(model, "_compiled_call_impl", None) is not None:
            raise ValueError(f"monitor: model {type(model).__name__} is compiled (torch.compile): a compiled graph "
                             "does not follow the monitor's hooks from step to step, so it would record the first "
                             "sampled step and nothing after; monitor the model uncompiled")
        if steps not in ("forward", "manual"):
            raise ValueError(f"monitor: steps={steps!r} must be 'forward' (each training-mode forward of the model "
                             "with gradients on is a step) or 'manual' (step_begin()/step_end() mark the steps)")
        self.steps_by = steps
        self.every: int = _check_count("every", every)  # type: ignore[assignment]  # never None here
        self.window = _check_count("window", window, allow_none=True)
        if isinstance(saturation, bool) or not isinstance(saturation, (int, float)) or \
                not (math.isfinite(saturation) and saturation > 0):
            raise ValueError(f"monitor: saturation={saturation!r} is out of range; a finite derivative magnitude "
                             "above 0 (default 0.01)")
        if isinstance(dead_below, bool) or not isinstance(dead_below, (int, float)) or \
                not (math.isfinite(dead_below) and 0 <= dead_below < saturation):
            raise ValueError(f"monitor: dead_below={dead_below!r} is out of range; a derivative magnitude in "
                             f"[0, saturation={saturation}) (default 0: exactly zero)")
        self.saturation, self.dead_below = float(saturation), float(dead_below)
        self.warn_dead = _check_fraction("warn_dead", warn_dead)
        self.warn_saturated = _check_fraction("warn_saturated", warn_saturated)
        found = discover(model, example, where=where, roles=roles, unit_dim=unit_dim)
        if sites is not None:
            wanted = [sites] if isinstance(sites, str) else list(sites)
            names = [s.name for s in found]
            if not wanted:
                raise ValueError(f"monitor: sites=[] names no site; leave it out to watch every site ({names})")
            unknown = [n for n in wanted if n not in names]
            if unknown:
                raise ValueError(f"monitor: sites={unknown!r}: no such activation site; the model's sites: {names}")
            found = [s for s in found if s.name in wanted]
        if not found:
            hint = "" if example is not None else (" (activation functions called inside forward, such as "
                                                    "F.gelu(h), are found only with example=an input)")
            raise ValueError(f"monitor: model {type(model).__name__} has no activation site to monitor{hint}")
        self.model = model
        self.sites: list[MonitoredSite] = found
        self._calls = {(id(s.owner), s.activation): s for s in found if s.kind == "call"}
        self.steps = 0
        self._armed = False
        self._running = False
        self._handles: list[Any] = []
        self._site_handles: list[Any] = []
        self._pending: dict[int, list[Any]] = {}
        self._observer: observe_calls | None = None
        self._wrapped: list[tuple[MonitoredSite, Any, _WatchedFunction]] = []
        self._order: dict[int, int] = {}
        self._off: dict[int, str] = {}  # site id -> why it was turned off
        self._current = _Window(found, 1)
        self._closed: _Window | None = None
        self.windows_closed = 0
        self._listeners: list[Callable[[ActivationMonitor, list[SiteReport]], None]] = []
        self._warned: set[tuple[str, str]] = set()

    # ----- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> ActivationMonitor:
        """Attach to the model (idempotent); returns the monitor."""
        if self._running:
            return self
        model = self.model
        self._handles = [model.register_forward_pre_hook(_Hook(self._forward_begins)),
                         model.register_forward_hook(_Hook(self._forward_ends), always_call=True)]
        for site in self.sites:
            if site.kind == "attribute":
                original = getattr(site.owner, site.attribute)  # type: ignore[arg-type]
                wrapper = _WatchedFunction(original, self, site)
                self._wrapped.append((site, original, wrapper))
                setattr(site.owner, site.attribute, wrapper)  # type: ignore[arg-type]
        self._running = True
        return self

    def stop(self) -> ActivationMonitor:
        """Detach from the model and close the current window; what was measured stays readable."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._disarm()
        self._exit_calls()
        for site, original, wrapper in self._wrapped:
            if getattr(site.owner, site.attribute, None) is wrapper:  # type: ignore[arg-type]  # not swapped since
                setattr(site.owner, site.attribute, original)  # type: ignore[arg-type]
        self._wrapped = []
        self._running = False
        self.end_window()
        return self

    def __enter__(self) -> ActivationMonitor:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    def reset(self) -> None:
        """Forget every window; the next step starts a new one."""
        self._current = _Window(self.sites, self.steps + 1)
        self._closed = None
        self._warned.clear()

    # ----- steps --------------------------------------------------------------------------------------------------

    def step_begin(self) -> None:
        """Start a training step by hand (``steps="manual"``: trainers' callbacks call this and :meth:`step_end`
        around each optimizer step, its forward and backward passes inside; in your own loop, use try/finally)."""
        if not self._running:
            raise RuntimeError("monitor: step_begin() on a stopped monitor; call start() first")
        self._disarm()
        self._begin()

    def step_end(self) -> None:
        """End the training step :meth:`step_begin` started."""
        self._disarm()

    def _forward_begins(self, model: nn.Module, args: Any) -> None:
        if not (model.training and torch.is_grad_enabled()) or _in_backward():
            return
        if self.steps_by == "forward":
            self._begin()
        if self._armed and self._calls:  # calls are watched while the model's forward runs, never longer
            self._observer = observe_calls(self._call_input, self._call_output, running=model)
            self._observer.__enter__()

    def _forward_ends(self, *_: Any) -> None:
        self._exit_calls()
        if self.steps_by == "forward":
            self._disarm()

    def _exit_calls(self) -> None:
        if self._observer is not None:
            observer, self._observer = self._observer, None
            observer.__exit__(None, None, None)

    def _begin(self) -> None:
        if self.window is not None and self._current.steps >= self.window:
            self.end_window()
        self.steps += 1
        self._current.steps += 1
        if (self.steps - 1) % self.every == 0:
            self._current.sampled += 1
            self._armed = True
            # the sites' hooks exist on sampled steps only: the other steps run the model as if unwatched
            for site in self.sites:
                if site.kind == "module":
                    self._site_handles.append(site.owner.register_forward_pre_hook(
                        _Hook(functools.partial(self._module_input, site))))
                    self._site_handles.append(site.owner.register_forward_hook(
                        _Hook(functools.partial(self._module_output, site)), always_call=True))

    def _disarm(self) -> None:
        self._armed = False
        self._pending.clear()
        for handle in self._site_handles:
            handle.remove()
        self._site_handles = []

    def _observing(self) -> bool:
        return self._armed and self.model.training and torch.is_grad_enabled() and not _in_backward()

    # ----- observations -------------------------------------------------------------------------------------------

    def _window_of(self, site: MonitoredSite) -> SiteWindow:
        key = id(site)
        if key not in self._order:
            self._order[key] = len(self._order)
        return self._current.sites[key]

    def _turn_off(self, site: MonitoredSite, exc: BaseException) -> None:
        self._off[id(site)] = f"{type(exc).__name__}: {exc}"
        message = (f"actlab monitor: site {site.name} ({site.activation}) is turned off: observing it raised "
                   f"{type(exc).__name__}: {exc}")
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    @torch.no_grad()
    def _observe_input(self, site: MonitoredSite, x: Any, derivative: Callable[[torch.Tensor], torch.Tensor] | None
                       ) -> tuple[SiteWindow, int] | None:
        if id(site) in self._off or not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
            return None
        try:
            x = x.detach()
            d = derivative(x) if derivative is not None else None
            window = self._window_of(site)
            axis = site.units_axis(d.dim()) if d is not None else 0
            return window, window.observe_input(x, d, axis, self.saturation, self.dead_below)
        except Exception as exc:  # the user's training goes on; the site says why it stopped
            self._turn_off(site, exc)
            return None

    @torch.no_grad()
    def _observe_output(self, site: MonitoredSite, token: tuple[SiteWindow, int] | None, y: Any) -> None:
        if token is None or not isinstance(y, torch.Tensor) or id(site) in self._off:
            return
        window, row = token
        try:
            window.observe_output(row, y.detach())
            if y.requires_grad:
                y.register_hook(functools.partial(_gradient, window, row))
        except Exception as exc:
            self._turn_off(site, exc)

    def _module_input(self, site: MonitoredSite, module: nn.Module, args: Any) -> None:
        if not self._observing():
            return
        token = self._observe_input(site, args[0] if args else None, site.derivative)
        self._pending.setdefault(id(site), []).append(token)

    def _module_output(self, site: MonitoredSite, module: nn.Module, args: Any, output: Any) -> None:
        stack = self._pending.get(id(site))
        if stack:
            self._observe_output(site, stack.pop(), output)

    def _call_input(self, caller: nn.Module, name: str, x: Any, call: Callable[[torch.Tensor], torch.Tensor]) -> Any:
        site = self._calls.get((id(caller), name))
        if site is None or not self._observing():
            return None
        return site, self._observe_input(site, x, autograd_derivative(call))

    def _call_output(self, caller: nn.Module, name: str, result: Any, token: Any) -> None:
        if token is not None:
            self._observe_output(token[0], token[1], result)

    # ----- windows and reading ------------------------------------------------------------------------------------

    def end_window(self) -> list[SiteReport] | None:
        """Close the current window now (the monitor does this by itself every ``window`` steps, and at stop()) and
        start the next; with listeners or warnings on, reads the closed window (one host sync) and returns its
        reports."""
        if self._current.steps == 0:
            return None
        self._closed, self._current = self._current, _Window(self.sites, self.steps + 1)
        self.windows_closed += 1
        if not (self._listeners or self.warn_dead is not None or self.warn_saturated is not None):
            return None
        reports = self._read(self._closed)
        self._check(reports, self._closed)
        for listener in self._listeners:
            listener(self, reports)
        return reports

    def reports(self, which: str = "last") -> list[SiteReport]:
        """Each site's statistics, in the order the sites first ran (then sites that never ran). ``which``:
        ``"last"`` (default) the last closed window, or the current one before any has closed; ``"current"``
        the window still open."""
        return self._read(self._chosen(which))

    def _chosen(self, which: str) -> _Window:
        if which not in ("last", "current"):
            raise ValueError(f"monitor: which={which!r} must be 'last' or 'current'")
        if which == "last" and self.window is not None and self._current.steps >= self.window:
            self.end_window()  # complete: the next step would close it
        return self._current if which == "current" or self._closed is None else self._closed

    def _read(self, window: _Window) -> list[SiteReport]:
        packed = [(site, window.sites[id(site)]) for site in self.sites]
        tensors = [w.packed() for _, w in packed]
        present = [t for t in tensors if t is not None]
        values = None
        if present:  # one transfer (per device) for every site
            devices = {t.device for t in present}
            joined = torch.cat(present) if len(devices) == 1 else torch.cat([t.cpu() for t in present])
            values = joined.cpu().numpy().astype("float64")
        out: list[SiteReport] = []
        offset = 0
        for (site, w), t in zip(packed, tensors):
            stats = None
            if t is not None and values is not None:
                stats = w.unpack(values[offset: offset + t.numel()])
                offset += t.numel()
            out.append(SiteReport(site, stats, self._order.get(id(site), len(self._order) + len(out))))
        out.sort(key=lambda r: r.order)
        return out

    def window_steps(self, which: str = "last") -> tuple[int, int, int]:
        """(first step, steps, sampled steps) of the window :meth:`reports` reads."""
        chosen = self._chosen(which)
        return chosen.first_step, chosen.steps, chosen.sampled

    def summary(self, which: str = "last") -> pandas.DataFrame:
        """One row per site (columns ``site``, ``role``, ``activation``, ``kind``, ``units``, ``observations``,
        ``dead``, ``saturated``, ``in_mean``, ``in_std``, ``out_mean``, ``out_std``, ``grad_norm``), in the order
        the sites ran; the window's steps are in ``.attrs``. Needs pandas (the lab extra)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise lab_hint(exc, "monitor.summary() (monitor.reports() gives the same numbers without it)") from exc
        frame = pd.DataFrame([r.row() for r in self.reports(which)])
        first, steps, sampled = self.window_steps(which)
        frame.attrs.update({"first_step": first, "steps": steps, "sampled_steps": sampled, "every": self.every,
                            "saturation": self.saturation, "dead_below": self.dead_below})
        return frame

    def metrics(self, which: str = "last", prefix: str = "actlab") -> dict[str, float]:
        """Flat ``{"actlab/<site>/<statistic>": value}`` for loggers (NaN values left out)."""
        return flat_metrics(self.reports(which), prefix)

    # ----- warnings and loggers -----------------------------------------------------------------------------------

    def _check(self, reports: list[SiteReport], window: _Window) -> None:
        for report in reports:
            s = report.stats
            if s is None:
                continue
            for kind, value, limit, what in (
                    ("dead", s.dead, self.warn_dead, f"of its {s.units} units dead"),
                    ("saturated", s.saturated, self.warn_saturated, f"of its outputs saturated (|f'| < "
                                                                    f"{self.saturation:g})")):
                key = (report.site.name, kind)
                if limit is None or not math.isfinite(value) or value <= limit:
                    self._warned.discard(key)  # recovered: it may warn again
                    continue
                if key in self._warned or (kind == "saturated" and (report.site.name, "dead") in self._warned):
                    continue  # said already (dead units saturate too: one warning says both)
                self._warned.add(key)
                message = (f"actlab monitor: site {report.site.name} ({report.site.activation}): {100 * value:.0f}% "
                           f"{what} over steps {window.first_step}-{window.first_step + window.steps - 1}")
                log.warning(message)
                warnings.warn(message, ActivationHealthWarning, stacklevel=2)

    def add_listener(self, listener: Callable[[ActivationMonitor, list[SiteReport]], None]) -> None:
        """Call ``listener(monitor, reports)`` each time a window closes."""
        self._listeners.append(listener)

    def log_to(self, writer: Any, prefix: str = "actlab") -> ActivationMonitor:
        """Write every closed window's statistics to ``writer`` (a TensorBoard ``SummaryWriter``, or anything with
        ``add_scalar(tag, value, global_step)``) as ``<prefix>/<site>/<statistic>`` at the window's last step."""
        if not callable(getattr(writer, "add_scalar", None)):
            raise TypeError(f"monitor.log_to: writer={writer!r} has no add_scalar(tag, value, global_step); pass a "
                            "torch.utils.tensorboard.SummaryWriter or the like")

        def write(monitor: ActivationMonitor, reports: list[SiteReport]) -> None:
            for tag, value in flat_metrics(reports, prefix).items():
                writer.add_scalar(tag, value, monitor.steps)

        self.add_listener(write)
        return self

    # ----- display ------------------------------------------------------------------------------------------------

    def plot(self, which: str = "last", statistics: Sequence[str] = ("dead", "saturated", "grad_norm")) -> Any:
        """A matplotlib figure: each statistic against the sites in the order they ran (depth)."""
        from actlab.monitor.display import plot_reports

        return plot_reports(self.reports(which), statistics, self.window_steps(which))

    def _repr_html_(self) -> str:
        from actlab.monitor.display import reports_html

        return reports_html(self.reports(), self.window_steps(), every=self.every, saturation=self.saturation,
                            limits={"dead": self.warn_dead, "saturated": self.warn_saturated})

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        sites = f"{len(self.sites)} site{'' if len(self.sites) == 1 else 's'}"
        return f"ActivationMonitor({sites}, {state}, step {self.steps}, every={self.every}, window={self.window})"


def _in_backward() -> bool:
    """Whether autograd's engine is running (a checkpointed block recomputing its forward during backward)."""
    return torch._C._current_graph_task_id() != -1


def _inert(*_: Any) -> None:
    """What a monitor's hook becomes in a pickled or copied model: nothing."""


def _inert_hook() -> Any:
    return _inert


class _Hook:
    """A monitor's hook on a module. Pickled or deep-copied with its module (torch.save(model), copy.deepcopy for an
    EMA), it becomes inert instead of taking the monitor, its sites and their closures along."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return _inert_hook, ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return _inert


class _WatchedFunction:
    """A function stored as a model's attribute (``self.activation = F.gelu``), observed on sampled steps. It pickles
    and deep-copies as the function itself, so saving or copying a monitored model saves the model, not the monitor,
    and actlab.swap still recognizes the site."""

    def __init__(self, original: Any, monitor: ActivationMonitor, site: MonitoredSite) -> None:
        self._actlab_watched_original = original
        self._monitor, self._site = monitor, site
        functools.update_wrapper(self, original)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        original, monitor = self._actlab_watched_original, self._monitor
        if not monitor._observing():
            return original(x, *args, **kwargs)
        token = monitor._observe_input(self._site, x, self._site.derivative)
        y = original(x, *args, **kwargs)
        monitor._observe_output(self._site, token, y)
        return y

    def __reduce__(self) -> tuple[Any, ...]:
        return operator.itemgetter(0), ((self._actlab_watched_original,),)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self._actlab_watched_original


def _gradient(window: SiteWindow, row: int, grad: torch.Tensor) -> None:
    with torch.no_grad():
        window.observe_gradient(row, grad.detach())


def check_callback_options(owner: str, log_every_n_steps: Any, options: Mapping[str, Any]) -> None:
    """What a trainer callback accepts before it builds its monitor: its own cadence, and no window= or steps=
    (the callback marks the steps and closes a window each time it logs)."""
    if log_every_n_steps is not None and (isinstance(log_every_n_steps, bool) or
                                          not isinstance(log_every_n_steps, int) or log_every_n_steps < 1):
        raise ValueError(f"{owner}: log_every_n_steps={log_every_n_steps!r} must be a positive int or None (the "
                         "trainer's own logging cadence)")
    for fixed in ("window", "steps"):
        if fixed in options:
            raise ValueError(f"{owner}: {fixed}= is the callback's to set (it marks the steps and closes a window "
                             "each time it logs: log_every_n_steps=)")


def monitor(model: nn.Module, example: Any = None, **options: Any) -> ActivationMonitor:
    """Start monitoring every activation site of ``model``; returns the running :class:`ActivationMonitor` (also a
    context manager: ``with actlab.monitor(model) as m: ...`` detaches at the end). See ActivationMonitor for the
    options (``every``, ``window``, ``saturation``, ``warn_dead``, ``sites``, ``roles``, ``unit_dim``...)."""
    return ActivationMonitor(model, example, **options).start()
