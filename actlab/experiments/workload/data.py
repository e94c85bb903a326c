"""Datasets: generated (MNIST-1D), bundled (scikit-learn digits) or read from local files the user gives
(MNIST / Fashion-MNIST IDX files, the CIFAR-10 binary format). Nothing is ever downloaded, nothing is unpickled.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actlab.atomic import atomic_path
from actlab.errors import ActlabError


class DataError(ActlabError, ValueError):
    """A data file that is missing, truncated or not in the expected format; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors (inputs float32, labels int64) and what they are."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    source: str
    x_val: torch.Tensor | None = None  # a validation set of its own (held-out files of a corpus), if the data has one
    y_val: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: str | torch.device) -> Dataset:
        """The same data on ``device`` (itself when it is already there)."""
        if self.x_train.device == torch.device(device):
            return self
        move: Any = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Dataset(self.name, move(self.x_train), move(self.y_train), move(self.x_test), move(self.y_test),
                       self.n_classes, self.source, move(self.x_val), move(self.y_val))

    def content_hash(self) -> str:
        """A digest of the tensors themselves (train and test, inputs and labels): two datasets with one hash
        give the same training; it changes with any file in a data folder, the generator's arguments or the
        tensors given from Python. Cached on the object (datasets are not modified in place)."""
        cached = self.__dict__.get("_content_hash")
        if cached is None:
            h = hashlib.sha256()
            for t in (self.x_train, self.y_train, self.x_test, self.y_test, self.x_val, self.y_val):
                if t is None:
                    continue
                t = t.detach().to("cpu").contiguous()
                h.update(f"{t.dtype}{tuple(t.shape)}".encode())
                h.update(t.numpy().tobytes())
            cached = h.hexdigest()[:24]
            object.__setattr__(self, "_content_hash", cached)
        return cached

    def validation_split(self, fraction: float, seed: int) -> Dataset:
        """Carve a stratified validation set out of the training data; the test set is never touched. Data with a
        validation set of its own (``x_val``) uses that instead, whatever ``fraction`` says."""
        if self.x_val is not None and self.y_val is not None:
            return Dataset(f"{self.name}[validation]", self.x_train, self.y_train, self.x_val, self.y_val,
                           self.n_classes, self.source + "; its own validation set")
        rng = np.random.default_rng(seed)
        y = self.y_train.numpy()
        val_idx = []
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            rng.shuffle(idx)
            val_idx.append(idx[: max(1, int(round(fraction * len(idx))))])
        val = np.sort(np.concatenate(val_idx))
        train = np.setdiff1d(np.arange(len(y)), val)
        return Dataset(f"{self.name}[validation]", self.x_train[train], self.y_train[train], self.x_train[val],
                       self.y_train[val], self.n_classes, self.source + f"; validation = {len(val)} training examples")


def cache_dir() -> Path:
    """Where generated datasets are cached: $ACTLAB_CACHE, else the platform's user cache folder (platformdirs:
    $XDG_CACHE_HOME/actlab or ~/.cache/actlab on Linux, ~/Library/Caches/actlab on macOS, %LOCALAPPDATA% on
    Windows)."""
    if os.environ.get("ACTLAB_CACHE"):
        return Path(os.environ["ACTLAB_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("actlab", appauthor=False))


@lru_cache(maxsize=4)
def mnist1d() -> Dataset:
    """MNIST-1D (Greydanus 2020) generated with the mnist1d package's make_dataset and its default arguments
    (4000 train / 1000 test, length 40); cached on disk after the first generation (about 3 s)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DataError("the mnist1d task needs the mnist1d package: pip install mnist1d") from exc
    args = get_dataset_args()
    settings = {k: v for k, v in vars(args).items() if k != "url"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"mnist1d-{digest}.npz"
    arrays = None
    if path.exists():
        try:
            with np.load(path) as f:
                arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except Exception:  # a corrupt cache is regenerated, never trusted
            arrays = None
    if arrays is None:
        data = make_dataset(args)
        arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npz") as tmp:  # concurrent processes each write their own file
            np.savez(tmp, **arrays)
    return Dataset(
        "mnist1d",
        torch.tensor(arrays["x"], dtype=torch.float32), torch.tensor(arrays["y"], dtype=torch.int64),
        torch.tensor(arrays["x_test"], dtype=torch.float32), torch.tensor(arrays["y_test"], dtype=torch.int64),
        10, "mnist1d.data.make_dataset(get_dataset_args()) (seed 42)",
    )


@lru_cache(maxsize=2)
def digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images), a fixed stratified 75/25 split, pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover
        raise DataError("the digits task needs scikit-learn: pip install scikit-learn") from exc
    d = load_digits()
    x = d.data.astype(np.float32) / 16.0
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(20240607)
    test = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test.append(idx[: int(round(0.25 * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return Dataset("digits", torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]),
                   torch.from_numpy(x[test_idx]), torch.from_numpy(y[test_idx]), 10,
                   "sklearn.datasets.load_digits, stratified 75/25 split")


# ----- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------------------

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")):
        if candidate.exists():
            return candidate
    raise DataError(f"missing data file {str(folder / stem)!r} (or {stem}.gz): expected the IDX file of that name "
                    "in --data-dir")


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic 0x0000 0x08 (unsigned byte) ndim, big-endian sizes, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip: a truncated stream is an EOFError
        raise DataError(f"cannot read {str(path)!r}: {exc or type(exc).__name__} (a truncated or corrupt file?)"
                        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{str(path)!r} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"{str(path)!r}: IDX data type 0x{raw[2]:02x} is not supported (expected 0x08, unsigned byte)")
    ndim = raw[3]
    if ndim != expected_dims:
        raise DataError(f"{str(path)!r}: {ndim} dimensions, expected {expected_dims}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{str(path)!r} is truncated (header)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise DataError(f"{str(path)!r}: expected {count} data bytes for shape {dims}, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@lru_cache(maxsize=4)
def idx_dataset(name: str, data_dir: str) -> Dataset:
    folder = Path(data_dir)
    parts = {k: read_idx(_find(folder, stem), 3 if "images" in k else 1) for k, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        if len(parts[f"{split}_images"]) != len(parts[f"{split}_labels"]):
            raise DataError(f"{data_dir}: {split} images ({len(parts[f'{split}_images'])}) and labels "
                            f"({len(parts[f'{split}_labels'])}) differ in count")
    mean, std = parts["train_images"].mean() / 255.0, parts["train_images"].std() / 255.0 + 1e-8
    to_x = lambda a: torch.from_numpy(((a.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)[:, None])  # noqa: E731
    labels = np.concatenate([parts["train_labels"], parts["test_labels"]])
    n_classes = int(labels.max()) + 1 if labels.size else 10
    return Dataset(name, to_x(parts["train_images"]), torch.from_numpy(parts["train_labels"].astype(np.int64)),
                   to_x(parts["test_images"]), torch.from_numpy(parts["test_labels"].astype(np.int64)),
                   max(n_classes, 10), f"IDX files in {data_dir}")


# ----- CIFAR-10 binary ------------------------------------------------------------------------------------

CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of 1 label byte and 3072 pixel bytes (R, G, B planes of 32x32)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}") from None
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise DataError(f"{str(path)!r}: size {len(raw)} is not a multiple of the CIFAR-10 record size {CIFAR_RECORD}")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{str(path)!r}: label {labels.max()} is outside 0..9; not a CIFAR-10 binary batch")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


@lru_cache(maxsize=2)
def cifar10(data_dir: str) -> Dataset:
    folder = Path(data_dir)
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    train_files = [folder / f"data_batch_{i}.bin" for i in range(1, 6)]
    present = [f for f in train_files if f.exists()]
    if not present:
        raise DataError(f"missing data file {str(train_files[0])!r}: expected CIFAR-10 binary batches "
                        "data_batch_1.bin .. data_batch_5.bin and test_batch.bin in --data-dir")
    test_file = folder / "test_batch.bin"
    if not test_file.exists():
        raise DataError(f"missing data file {str(test_file)!r}: expected the CIFAR-10 binary test batch")
    xs, ys = zip(*(read_cifar_batch(f) for f in present))
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    x_test, y_test = read_cifar_batch(test_file)
    mean = x_train.reshape(-1, 3, 1024).mean(axis=(0, 2)).reshape(1, 3, 1, 1) / 255.0
    std = x_train.reshape(-1, 3, 1024).std(axis=(0, 2)).reshape(1, 3, 1, 1) / 255.0 + 1e-8
    to_x = lambda a: torch.from_numpy(((a.astype(np.float32) / 255.0 - mean) / std).astype(np.float32))  # noqa: E731
    return Dataset("cifar10", to_x(x_train), torch.from_numpy(y_train), to_x(x_test), torch.from_numpy(y_test), 10,
                   f"CIFAR-10 binary batches in {folder} ({len(present)} training batches)")
