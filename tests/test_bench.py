"""actlab bench kernels: runs on CPU, reports every field, and the memory claim holds."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from actlab.kernels.bench import bench_kernels

runner = CliRunner()


def test_bench_kernels_cli_writes_json(tmp_path):
    out = tmp_path / "k.json"
    result = runner.invoke(app, ["bench", "kernels", "--size", "4096", "--names", "swish,relu,swiglu",
                                 "--min-run-time", "0.01", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["copy_gbps"] > 0 and [r["activation"] for r in data["results"]] == ["swish", "relu", "swiglu"]
    for r in data["results"]:
        assert r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 and 0 < r["fwd_fraction_of_copy"]
    swish, relu, swiglu = data["results"]
    assert swish["saved_bytes"] == 4096 * 4 < swish["eager_saved_bytes"]  # backward keeps only the input
    assert swiglu["saved_bytes"] == 4096 * 4 and swiglu["speedup_vs_native"] is None
    assert relu["speedup_vs_native"] is not None


def test_bench_kernels_bad_input():
    with pytest.raises(ValueError, match="--dtype 'float8'"):
        bench_kernels(["relu"], dtype="float8", size=4096)
    with pytest.raises(ValueError, match="--size 10"):
        bench_kernels(["relu"], size=10)
    result = runner.invoke(app, ["bench", "kernels", "--device", "tpu"])
    assert "--device 'tpu'" in str(result.exception)
