"""Datasets: generated, bundled, and user files in the exact IDX and CIFAR-10 binary formats."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from actlab.experiments.workload import data
from actlab.experiments.workload.tasks import UnknownTaskError, resolve_task


def _idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_idx_set(folder, n_train=60, n_test=20, gz=False, side=28):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        _idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side)), gz)
        _idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n), gz)


def write_cifar(folder, per_batch=20, batches=5):
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}.bin" for i in range(1, batches + 1)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, per_batch).astype(np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())


def test_mnist1d_is_the_default_generated_dataset():
    d = data.mnist1d()
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert set(d.y_train.unique().tolist()) == set(range(10))


def test_digits_fixed_stratified_split():
    d1, d2 = data.digits(), data.digits()
    assert d1.x_train.shape == (1347, 64) and d1.x_test.shape == (450, 64)
    assert np.array_equal(d1.y_test.numpy(), d2.y_test.numpy())
    counts = np.bincount(d1.y_test.numpy())
    assert counts.min() >= 43 and counts.max() <= 47


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_load(tmp_path, gz):
    write_idx_set(tmp_path, gz=gz)
    data.idx_dataset.cache_clear()
    task = resolve_task("fashion-mnist", data_dir=str(tmp_path))
    d = task.load()
    assert d.x_train.shape == (60, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert abs(float(d.x_train.mean())) < 1e-5  # standardised with training statistics
    import actlab

    model = task.build(d, lambda: actlab.get("relu"))
    assert model(d.x_train[:2]).shape == (2, 10)


def test_idx_errors_name_the_file(tmp_path):
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte"):
        data.idx_dataset("mnist", str(tmp_path))
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x14abc")
    data.idx_dataset.cache_clear()
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte.*expected 20 data bytes"):
        data.idx_dataset("mnist", str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"GIF89a....")
    data.idx_dataset.cache_clear()
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.idx_dataset("mnist", str(tmp_path))


def test_cifar10_binary(tmp_path):
    write_cifar(tmp_path)
    data.cifar10.cache_clear()
    task = resolve_task("cifar10", data_dir=str(tmp_path))
    d = task.load()
    assert d.x_train.shape == (100, 3, 32, 32) and d.x_test.shape == (20, 3, 32, 32)
    import actlab

    assert task.build(d, lambda: actlab.get("mish"))(d.x_test[:2]).shape == (2, 10)


def test_cifar10_errors(tmp_path):
    with pytest.raises(data.DataError, match="data_batch_1.bin"):
        data.cifar10(str(tmp_path))
    write_cifar(tmp_path, batches=1)
    (tmp_path / "test_batch.bin").write_bytes(b"x" * 100)
    data.cifar10.cache_clear()
    with pytest.raises(data.DataError, match=r"test_batch.bin.*not a multiple of the CIFAR-10 record size 3073"):
        data.cifar10(str(tmp_path))


def test_task_errors():
    with pytest.raises(UnknownTaskError, match="did you mean 'mnist1d'"):
        resolve_task("mnist1dd")
    with pytest.raises(Exception, match="pass --data-dir"):
        resolve_task("cifar10")
    with pytest.raises(Exception, match="mnist1d-mlp: parameter 'norm' = 'group'"):
        resolve_task("mnist1d-mlp(norm=group)")
    with pytest.raises(Exception, match="no parameter 'layers'"):
        resolve_task("mnist1d(layers=3)")


def test_validation_split_never_touches_test():
    d = data.mnist1d()
    v = d.validation_split(0.2, seed=0)
    assert len(v.x_train) + len(v.x_test) == len(d.x_train)
    assert len(v.x_test) == 800


def test_cache_dir_follows_the_platform_and_the_override(monkeypatch, tmp_path):
    from actlab.experiments.workload.data import cache_dir

    monkeypatch.delenv("ACTLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    import sys

    if sys.platform.startswith("linux"):
        assert cache_dir() == tmp_path / "xdg" / "actlab"
    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
