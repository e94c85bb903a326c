"""Lightning: ``trainer = Trainer(callbacks=[ActivationMonitor()])`` watches every activation site of the
LightningModule while it trains and logs each window's statistics through the trainer's loggers.

Every ``log_every_n_steps`` training batches (Lightning's own setting by default) the callback closes the
monitor's window and logs ``actlab/<site>/<statistic>`` (dead, saturated, means, standard deviations, gradient
norm) to every logger the trainer has, at the trainer's global step; that read is the only host sync. Warnings
follow :func:`actlab.monitor`'s thresholds. ``callback.monitor`` is the :class:`actlab.monitor.ActivationMonitor`
(its ``summary()`` works after fitting). Works with ``lightning`` and with ``pytorch_lightning``.
"""

from __future__ import annotations

from typing import Any

from actlab.monitor import ActivationMonitor as _Monitor
from actlab.monitor.core import check_callback_options
from actlab.monitor.report import flat_metrics

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - the older package name
    try:
        from pytorch_lightning.callbacks import Callback  # type: ignore[assignment]
    except ImportError as exc:
        raise ImportError("actlab.integrations.lightning needs Lightning: pip install lightning") from exc

__all__ = ["ActivationMonitor"]


class ActivationMonitor(Callback):
    """A Lightning callback around :class:`actlab.monitor.ActivationMonitor`.

    ``log_every_n_steps``: training batches per window (default: the trainer's ``log_every_n_steps``);
    ``example``: an input to find activation functions called inside ``forward``; every other keyword
    (``every``, ``saturation``, ``warn_dead``, ``sites``, ``roles``, ``unit_dim``...) goes to the monitor. Each
    optimizer step is a step (its batches' forward and backward passes, whatever ``training_step`` calls; with
    ``accumulate_grad_batches`` several batches make one), and windows count optimizer steps, as Lightning's
    ``log_every_n_steps`` does."""

    def __init__(self, log_every_n_steps: int | None = None, example: Any = None, prefix: str = "actlab",
                 **options: Any) -> None:
        super().__init__()
        check_callback_options("ActivationMonitor", log_every_n_steps, options)
        self.log_every_n_steps = log_every_n_steps
        self.example, self.prefix, self.options = example, prefix, options
        self.monitor: _Monitor | None = None
        self._in_step = False
        self._global_step = -1

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is None or self.monitor.model is not pl_module:  # a later fit of another module: its own
            self.monitor = _Monitor(pl_module, self.example, window=None, steps="manual", **self.options)
        self.monitor.start()
        self._in_step, self._global_step = False, trainer.global_step

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.monitor is not None and self.monitor.running and not self._in_step:
            self.monitor.step_begin()
            self._in_step = True

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        monitor = self.monitor
        if monitor is None or not monitor.running or trainer.global_step == self._global_step:
            return  # accumulating: the optimizer step, and the monitor's step, go on over the next batch
        self._global_step = trainer.global_step
        monitor.step_end()
        self._in_step = False
        every = self.log_every_n_steps or int(getattr(trainer, "log_every_n_steps", None) or 50)
        if monitor.window_steps("current")[1] < every:
            return
        reports = monitor.end_window() or monitor.reports()
        metrics = flat_metrics(reports, self.prefix)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None:
            self.monitor.stop()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.stop()
