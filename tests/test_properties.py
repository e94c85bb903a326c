"""Measured properties: the claims each spec makes hold, and known values come out."""

from __future__ import annotations

import math

import pytest

import actlab
from actlab.catalog.properties import measure


@pytest.mark.parametrize("name", actlab.names())
def test_declared_properties_match_measured(name):
    spec = actlab.spec(name)
    props = spec.properties
    for key, claimed in spec.claims.items():
        measured = props[key]
        if isinstance(claimed, float) and measured is not None:
            assert measured == pytest.approx(claimed, abs=1e-5), key
        else:
            assert measured == claimed, f"{name}.{key}: claimed {claimed!r}, measured {measured!r}"


def test_known_gains_and_moments():
    assert actlab.spec("relu").properties.gain == pytest.approx(math.sqrt(2), rel=1e-8)
    assert actlab.spec("selu").properties.gain == pytest.approx(1.0, abs=1e-6)
    assert actlab.spec("selu").properties.mean == pytest.approx(0.0, abs=1e-6)
    assert actlab.spec("tanh").properties.mean == pytest.approx(0.0, abs=1e-12)
    assert actlab.spec("relu").properties.mean == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-8)
    # leaky relu with slope a: E[f^2] = (1 + a^2) / 2
    a = 0.2
    gain = measure(actlab.spec("leaky_relu"), negative_slope=a).gain
    assert gain == pytest.approx(math.sqrt(2 / (1 + a * a)), rel=1e-8)


def test_parameters_change_measured_properties():
    swish = actlab.spec("swish")
    assert swish.measure(beta=0.0).monotonic is True  # x / 2
    assert swish.measure(beta=0.0).slope_at_0 == pytest.approx(0.5)
    assert swish.measure(beta=0.05).monotonic is False  # the dip moves out to x = -1.28 / beta = -25.6
    assert actlab.spec("leaky_relu").measure(negative_slope=0.0).bounded_below is True
    assert actlab.spec("elu").measure(alpha=2.0).smooth is False  # slopes 2 and 1 meet at 0
    assert actlab.spec("threshold_relu").measure(threshold=0.0).continuous is True


def test_output_ranges():
    assert actlab.spec("swish").properties.output_range[0] == pytest.approx(-0.27846454, abs=1e-7)
    # at x = -1.19243 (mpmath)
    assert actlab.spec("mish").properties.output_range[0] == pytest.approx(-0.30884341, abs=1e-7)
    assert actlab.spec("gelu").properties.output_range[0] == pytest.approx(-0.16997120, abs=1e-7)
    assert actlab.spec("relu6").properties.output_range == (0.0, 6.0)
    # the normalizing kinds state their range (a sample's extremes printed softmax's as [1.404e-28, 1])
    assert actlab.spec("softmax").properties.output_range == (0.0, 1.0)
    assert actlab.spec("log_softmax").properties.output_range == (-math.inf, 0.0)


def test_gated_report_their_gate():
    props = actlab.spec("swiglu").properties
    assert props.of == "gate" and props.gain == pytest.approx(actlab.spec("swish").properties.gain)
