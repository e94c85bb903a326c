"""Text for the language-modelling task, from the one corpus every Python installation ships: the standard
library's own source files. Nothing is downloaded.

The corpus is the ``*.py`` files under the standard library (test suites, ``site-packages`` and caches left out),
read as bytes: a byte-level tokenizer (256 symbols) needs no vocabulary file. Files are split by a hash of their
path, so the split is fixed and a file's text never straddles two splits: about 80% train, 10% validation, 10%
test. Each split is the concatenation of its files in path order, cut into non-overlapping windows of
``context + 1`` bytes (inputs and next-byte targets). The content hash of the tensors (``Dataset.content_hash``)
goes into every trial's key, so another Python version's library is another dataset.
"""

from __future__ import annotations

import hashlib
import math
import sysconfig
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from actlab.errors import ActlabError
from actlab.experiments.workload.data import Dataset

SKIPPED_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
VOCAB = 256
SPLITS = ("train", "validation", "test")


class CorpusError(ActlabError, ValueError):
    """The corpus cannot be read, is empty, or is too short for the context asked for."""


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def split_of(relative_path: str) -> str:
    """Which split a file belongs to, from its path alone (stable across machines and runs)."""
    bucket = int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:4], "little") % 10
    return "validation" if bucket == 0 else "test" if bucket == 1 else "train"


def corpus_files(root: str | Path | None = None) -> dict[str, list[Path]]:
    """split -> the corpus files of that split, in path order."""
    base = Path(root) if root is not None else stdlib_root()
    if not base.is_dir():
        raise CorpusError(f"corpus folder {str(base)!r} does not exist or is not a folder")
    out: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base)
        if SKIPPED_DIRS.intersection(rel.parts[:-1]):
            continue
        out[split_of(rel.as_posix())].append(path)
    return out


def _read(files: list[Path], limit: int, what: str) -> bytes:
    chunks, size = [], 0
    for path in files:
        if size >= limit:
            break
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise CorpusError(f"corpus file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
        chunks.append(blob + b"\n")
        size += len(blob) + 1
    text = b"".join(chunks)[:limit]
    if not text:
        raise CorpusError(f"the {what} split of the corpus is empty")
    return text


def _windows(text: bytes, context: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(text) // (context + 1)
    if n == 0:
        raise CorpusError(f"context = {context} is longer than the {what} text ({len(text)} bytes); use a shorter "
                          "context or more text")
    arr = np.frombuffer(text[: n * (context + 1)], dtype=np.uint8).astype(np.int64).reshape(n, context + 1)
    t = torch.from_numpy(arr)
    return t[:, :-1].contiguous(), t[:, 1:].contiguous()


@lru_cache(maxsize=4)
def text_dataset(context: int, train_chars: int, eval_chars: int, root: str | None = None) -> Dataset:
    """Byte windows of the standard library's source (or of the ``*.py`` files under ``root``): train from the
    train files, test from the test files, and the validation files as the split lr tuning uses."""
    files = corpus_files(root)
    for split, paths in files.items():
        if not paths:
            raise CorpusError(f"the corpus under {str(root or stdlib_root())!r} has no {split} files (*.py)")
    texts = {"train": _read(files["train"], train_chars, "train"),
             "validation": _read(files["validation"], eval_chars, "validation"),
             "test": _read(files["test"], eval_chars, "test")}
    (xt, yt), (xv, yv), (xs, ys) = (_windows(texts[s], context, s) for s in SPLITS)
    source = (f"Python {sysconfig.get_python_version()} standard library source, byte-level; "
              f"{len(files['train'])}/{len(files['validation'])}/{len(files['test'])} files; "
              f"train {len(texts['train']):,} bytes, validation {len(texts['validation']):,}, test "
              f"{len(texts['test']):,}; context {context}")
    return Dataset("stdlib-text", xt, yt, xs, ys, VOCAB, source, x_val=xv, y_val=yv)


def unigram_bits_per_char(data: Dataset) -> float:
    """Test bits per character of the best context-free model: the training bytes' frequencies (add-one
    smoothed). A language model that learns anything must beat it."""
    counts = torch.bincount(data.y_train.flatten(), minlength=VOCAB).double() + 1.0
    logp = torch.log2(counts / counts.sum())
    return float(-logp[data.y_test.flatten()].mean())


def bits(nats: float) -> float:
    return nats / math.log(2)
