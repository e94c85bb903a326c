"""Notebook display: a spec's, a comparison result's and actlab.plot's figures."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import actlab


@pytest.mark.parametrize("name", actlab.names())
def test_every_spec_displays(name):
    page = actlab.spec(name)._repr_html_()
    spec = actlab.spec(name)
    assert f"<code>{name}</code>" in page and "$$" in page
    assert all(f"<code>{p}</code>" in page for p in spec.params)
    assert page.count("<polyline") == (0 if spec.kind == "normalizing" else 2)


def test_spec_svg_follows_the_reference():
    """The solid curve's points are f on [-5, 5] in the SVG's coordinates: relu's turns at x = 0 and rises."""
    page = actlab.spec("relu")._repr_html_()
    solid = re.search(r'<polyline fill="none" stroke="#1f77b4"[^>]*points="([^"]+)"', page).group(1)
    points = np.array([[float(v) for v in p.split(",")] for p in solid.split()])
    left, right = points[points[:, 0] < 130], points[points[:, 0] > 131]
    assert np.ptp(left[:, 1]) < 1e-6  # flat where x < 0
    assert np.all(np.diff(right[:, 1]) < 0)  # rising (SVG's y grows downward) where x > 0


def test_plot_draws_functions_and_derivatives():
    fig = actlab.plot("swish", "gelu(approximate='tanh')", "swish(beta=4)")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "swish(beta=4.0)" in labels and "swish(beta=4.0)'" in labels
    x, y = fig.axes[0].lines[0].get_data()
    np.testing.assert_allclose(y, actlab.spec("swish").reference(x), rtol=1e-12)
    assert not any(label.endswith("'") for label in
                   (line.get_label() for line in actlab.plot("mish", derivative=False).axes[0].lines))
    with pytest.raises(actlab.UnknownActivationError):
        actlab.plot("swishh")
    with pytest.raises(ValueError, match="at least one"):
        actlab.plot()
    with pytest.raises(TypeError, match="derivative="):
        actlab.plot("relu", derivative="yes")
    with pytest.raises(ValueError, match="x_range"):
        actlab.plot("relu", x_range=(2, -2))


def test_comparison_result_displays_its_table_and_verdicts(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] > 0).long()
    model = lambda make_act: nn.Sequential(nn.Linear(6, 16), make_act(), nn.Linear(16, 2))  # noqa: E731
    result = actlab.compare("relu", "tanh", data=(x[:150], y[:150], x[150:], y[150:]), model=model, seeds=3,
                            epochs=2, lr=0.01, store=str(tmp_path / "n.db"))
    page = result._repr_html_()
    assert page.count("<tr>") == 1 + 2  # header and a row per activation
    assert "relu" in page and "tanh" in page and "Verdicts" in page
    assert "<li>" in page and "paired by seed" in page
    assert "3 seeds" in page

