"""Activation health in users' own training: ``actlab.monitor(model)`` watches every activation site (dead units,
saturation, input and output moments, gradient flow) with statistics kept on the device and read once."""

from actlab.monitor.core import ActivationHealthWarning, ActivationMonitor, monitor
from actlab.monitor.report import SiteReport
from actlab.monitor.window import WindowStats

__all__ = ["ActivationHealthWarning", "ActivationMonitor", "SiteReport", "WindowStats", "monitor"]
