"""A site's report over one window: what the summary table, the loggers and the displays read."""

from __future__ import annotations

import math
from typing import Any

from actlab.monitor.sites import MonitoredSite
from actlab.monitor.window import WindowStats

__all__ = ["STATISTICS", "SiteReport", "flat_metrics"]

STATISTICS = ("dead", "saturated", "in_mean", "in_std", "out_mean", "out_std", "grad_norm")


class SiteReport:
    """A site's identity and its statistics over one window (``stats`` is None where the site did not run)."""

    __slots__ = ("site", "stats", "order")

    def __init__(self, site: MonitoredSite, stats: WindowStats | None, order: int) -> None:
        self.site, self.stats, self.order = site, stats, order

    def row(self) -> dict[str, Any]:
        s = self.stats
        values = {k: (math.nan if s is None else getattr(s, k)) for k in STATISTICS}
        return {"site": self.site.name, "role": self.site.role, "activation": self.site.activation,
                "kind": self.site.kind, "units": 0 if s is None else s.units,
                "observations": 0 if s is None else s.observations, **values}


def flat_metrics(reports: list[SiteReport], prefix: str = "actlab") -> dict[str, float]:
    """``{"<prefix>/<site>/<statistic>": value}`` for loggers, NaN values left out."""
    out: dict[str, float] = {}
    for report in reports:
        if report.stats is None:
            continue
        for name in STATISTICS:
            value = getattr(report.stats, name)
            if math.isfinite(value):
                out[f"{prefix}/{report.site.name}/{name}"] = float(value)
    return out
