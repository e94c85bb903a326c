"""actlab bench kernels: runs on CPU, reports every field, and the memory claim holds."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from actlab.speed import bench_kernels

runner = CliRunner()


def test_bench_kernels_cli_writes_json(tmp_path):
    out = tmp_path / "k.json"
    result = runner.invoke(app, ["bench", "kernels", "--size", "4096", "--names",
                                 "swish(beta=1.5),relu,swiglu,swish(trainable=True)", "--rounds", "3",
                                 "--min-block", "0.001", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    printed = runner.invoke(app, ["bench", "kernels", "--size", "4096", "--names", "relu", "--rounds", "3",
                                  "--min-block", "0.001", "--json"])  # a flag, as everywhere: JSON on stdout
    assert printed.exit_code == 0, printed.output
    assert [r["activation"] for r in json.loads(printed.stdout)["results"]] == ["relu"]
    assert data["copy_gbps"] > 0
    assert [r["activation"] for r in data["results"]] == ["swish(beta=1.5)", "relu", "swiglu", "swish trainable"]
    for r in data["results"]:
        assert r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 and 0 < r["fwd_fraction_of_copy"]
        assert r["vs_native"]["low"] <= r["vs_native"]["median"] <= r["vs_native"]["high"]
    swish, relu, swiglu, trainable = data["results"]
    assert swish["saved_bytes"] == 4096 * 4 < swish["eager_saved_bytes"]  # backward keeps only the input
    assert swish["baseline"] == "closest native" and relu["baseline"] == "native"
    assert swiglu["saved_bytes"] == 4096 * 4 and swiglu["baseline"] == "closest native"
    assert trainable["saved_bytes"] == 4096 * 4 + 4  # the input and beta


def test_bench_kernels_bad_input():
    with pytest.raises(ValueError, match="dtype = 'float8'"):
        bench_kernels(["relu"], dtype="float8", size=4096)
    with pytest.raises(ValueError, match="size = 10"):
        bench_kernels(["relu"], size=10)
    with pytest.raises(ValueError, match="rounds = 1"):
        bench_kernels(["relu"], size=4096, rounds=1)
    result = runner.invoke(app, ["bench", "kernels", "--device", "tpu"])
    assert "device = 'tpu'" in str(result.exception)


def test_interleaved_ratio_of_identical_steps_is_one_and_a_slower_step_shows():
    import time

    from actlab.speed import interleaved, ratio

    times = interleaved({"a": lambda: time.sleep(0.001), "b": lambda: time.sleep(0.001),
                         "slow": lambda: time.sleep(0.003)}, "cpu", rounds=5, min_block_s=0.005)
    same = ratio(times["a"], times["b"])
    assert same.low <= 1.0 <= same.high or abs(same.median - 1) < 0.1
    assert ratio(times["slow"], times["a"]).low > 1.5
