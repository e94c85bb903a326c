"""Hugging Face transformers: name any actlab activation in a config, ``hidden_act="actlab:swish(beta=1.5)"``.

After :func:`register`, transformers' activation table (``ACT2FN``, which every model uses to build its hidden
activation from ``config.hidden_act``) resolves strings that start with ``actlab:`` with :func:`actlab.get`, the
rest of the string in actlab's one syntax (``"actlab:swish(beta=1.5, trainable=True)"``). The string is what
``save_pretrained`` writes to config.json, so ``from_pretrained`` builds the same activation again, and its trained
parameters load with the weights, provided the loading process has registered actlab too: otherwise transformers
answers ``KeyError: 'actlab:...'``. Call :func:`register` first, or load with
``actlab.integrations.transformers.from_pretrained(AutoModel, path)``, which does both.

``ActivationMonitorCallback`` (a ``TrainerCallback``) runs :func:`actlab.monitor` inside ``Trainer.train`` and
adds its statistics to the trainer's logs. transformers is imported here only.
"""

from __future__ import annotations

from typing import Any

from actlab.nn import get

PREFIX = "actlab:"


def hidden_act(activation: str) -> str:
    """The config string for an actlab activation: ``hidden_act("gelu")`` -> ``"actlab:gelu"`` (validated)."""
    get(activation)
    return PREFIX + activation


def register() -> None:
    """Teach transformers' ``ACT2FN`` the ``actlab:`` prefix (idempotent). Needs transformers installed."""
    try:
        from transformers import activations
    except ImportError as exc:  # pragma: no cover - the plug-in is only called by users of transformers
        raise ImportError("actlab.integrations.transformers needs transformers: pip install transformers") from exc
    table = activations.ACT2FN
    if getattr(type(table), "_actlab", False):
        return

    base: Any = type(table)

    class WithActlab(base):
        _actlab = True

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str) and key.startswith(PREFIX):
                return get(key[len(PREFIX):])
            return super().__getitem__(key)

        def __contains__(self, key: Any) -> bool:
            return (isinstance(key, str) and key.startswith(PREFIX)) or super().__contains__(key)

    table.__class__ = WithActlab


def from_pretrained(cls: Any, path: Any, **kwargs: Any) -> Any:
    """``cls.from_pretrained(path, **kwargs)`` after :func:`register`: the remedy when a saved model's config says
    ``hidden_act="actlab:..."`` and this process never registered actlab (transformers would answer a bare
    ``KeyError: 'actlab:...'``). ``cls`` is any transformers class with ``from_pretrained`` (``AutoModel``,
    ``BertForSequenceClassification``...)."""
    if not callable(getattr(cls, "from_pretrained", None)):
        raise TypeError(f"from_pretrained: cls={cls!r} has no from_pretrained(); pass a transformers model class "
                        "such as AutoModel")
    register()
    return cls.from_pretrained(path, **kwargs)


_BUILT: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    # the callback subclasses transformers' TrainerCallback, so it is built (and transformers imported) on first use
    if name == "ActivationMonitorCallback":
        if name not in _BUILT:
            _BUILT[name] = _callback_class()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _callback_class() -> Any:
    try:
        from transformers import TrainerCallback
    except ImportError as exc:  # pragma: no cover - the plug-in is only called by users of transformers
        raise ImportError("actlab.integrations.transformers needs transformers: pip install transformers") from exc
    from actlab.monitor import ActivationMonitor
    from actlab.monitor.core import check_callback_options
    from actlab.monitor.report import flat_metrics

    class ActivationMonitorCallback(TrainerCallback):
        """A Hugging Face ``TrainerCallback`` around :class:`actlab.monitor.ActivationMonitor`: each optimizer
        step (its micro-batches' forward and backward passes included) is a monitor step.

        By default a window closes whenever the trainer logs (``logging_steps``), and its statistics
        (``actlab/<site>/<statistic>``) join that log entry in ``trainer.state.log_history`` and the ``logs`` that
        callbacks after this one see. ``log_every_n_steps=`` gives the callback its own cadence (its own
        log_history entries). The reporting integrations that ``report_to`` adds run before user callbacks, so
        they do not see these values: pass ``writer=`` (a TensorBoard ``SummaryWriter``) to write them there.
        ``callback.monitor`` is the monitor (``summary()`` after training); other keywords (``every``,
        ``saturation``, ``warn_dead``, ``sites``, ``roles``...) go to it."""

        def __init__(self, log_every_n_steps: int | None = None, example: Any = None, writer: Any = None,
                     prefix: str = "actlab", **options: Any) -> None:
            check_callback_options("ActivationMonitorCallback", log_every_n_steps, options)
            if writer is not None and not callable(getattr(writer, "add_scalar", None)):
                raise TypeError(f"ActivationMonitorCallback: writer={writer!r} has no add_scalar(); pass a "
                                "torch.utils.tensorboard.SummaryWriter or None")
            self.log_every_n_steps, self.example, self.writer, self.prefix = log_every_n_steps, example, writer, prefix
            self.options = options
            self.monitor: ActivationMonitor | None = None
            self._pending: dict[str, float] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if self.monitor is None:
                if model is None:
                    raise ValueError("ActivationMonitorCallback: the trainer passed no model to on_train_begin")
                self.monitor = ActivationMonitor(model, self.example, window=None, steps="manual", **self.options)
                if self.writer is not None:
                    self.monitor.log_to(self.writer, self.prefix)
            self.monitor.start()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.monitor is not None and self.monitor.running:
                self.monitor.step_begin()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            monitor = self.monitor
            if monitor is None or not monitor.running:
                return
            monitor.step_end()
            steps = monitor.window_steps("current")[1]
            own = self.log_every_n_steps
            if not ((own is not None and steps >= own) or (own is None and control.should_log and steps)):
                return
            reports = monitor.end_window() or monitor.reports()
            metrics = flat_metrics(reports, self.prefix)
            if own is not None:
                state.log_history.append({**metrics, "step": state.global_step})
            else:
                self._pending = metrics

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # logging_strategy="epoch": the trainer logs now; the window closes with it
            monitor = self.monitor
            if monitor is not None and self.log_every_n_steps is None and control.should_log and \
                    monitor.window_steps("current")[1]:
                self._pending = flat_metrics(monitor.end_window() or monitor.reports(), self.prefix)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not self._pending:
                return
            if logs is not None:
                logs.update(self._pending)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(self._pending)
            self._pending = {}

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            monitor = self.monitor
            if monitor is None:
                return
            left = monitor.window_steps("current")[1]
            monitor.stop()  # closes the last window
            if left or self._pending:  # steps since the last log (logging_strategy="no" too): their own entry
                metrics = self._pending or flat_metrics(monitor.reports(), self.prefix)
                state.log_history.append({**metrics, "step": state.global_step})
                self._pending = {}

    ActivationMonitorCallback.__module__ = __name__
    return ActivationMonitorCallback
