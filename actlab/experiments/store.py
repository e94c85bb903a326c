"""The results store: one SQLite file (default ``runs/actlab.db``) in WAL mode.

Each finished trial is written with its per-epoch rows, config, package versions and hardware in one transaction,
so a process killed mid-sweep loses at most the trials in flight. Trials are keyed by a hash of everything that
determines their result (phase, activation, task, recipe, learning rate, seed index, base seed): a rerun finds
the trials already stored and skips them (resume).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from actlab.errors import ActlabError

SCHEMA_VERSION = 1
FORMAT = "actlab-results"
SQLITE_HEADER = b"SQLite format 3\x00"

TRIAL_COLUMNS = (
    "trial_key", "study", "phase", "activation", "trainable", "task", "recipe", "lr", "seed_index", "base_seed",
    "init_seed", "data_seed", "status", "diverged_epoch", "vectorized", "note", "final_acc", "best_acc",
    "epochs_to_target", "auc", "s_per_epoch", "train_seconds", "dead_final", "final_train_loss", "activation_params",
    "config", "versions", "hardware", "command", "created_at",
)
EPOCH_COLUMNS = ("trial_key", "epoch", "train_loss", "test_loss", "test_acc", "dead_fraction", "train_seconds")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_key TEXT PRIMARY KEY, study TEXT, phase TEXT NOT NULL, activation TEXT NOT NULL, trainable INTEGER NOT NULL,
    task TEXT NOT NULL, recipe TEXT NOT NULL, lr REAL NOT NULL, seed_index INTEGER NOT NULL, base_seed INTEGER NOT NULL,
    init_seed INTEGER, data_seed INTEGER, status TEXT NOT NULL, diverged_epoch INTEGER, vectorized INTEGER, note TEXT,
    final_acc REAL, best_acc REAL, epochs_to_target INTEGER, auc REAL, s_per_epoch REAL, train_seconds REAL,
    dead_final REAL, final_train_loss REAL, activation_params TEXT, config TEXT, versions TEXT, hardware TEXT,
    command TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    trial_key TEXT NOT NULL REFERENCES trials(trial_key) ON DELETE CASCADE, epoch INTEGER NOT NULL,
    train_loss REAL, test_loss REAL, test_acc REAL, dead_fraction REAL, train_seconds REAL,
    PRIMARY KEY (trial_key, epoch)
);
CREATE INDEX IF NOT EXISTS trials_by_study ON trials(study, phase, activation);
CREATE TABLE IF NOT EXISTS findings (
    study TEXT NOT NULL, quick INTEGER NOT NULL, claim TEXT NOT NULL, source TEXT NOT NULL, reproduced INTEGER,
    summary TEXT NOT NULL, lines TEXT NOT NULL, numbers TEXT NOT NULL, command TEXT, created_at TEXT NOT NULL,
    PRIMARY KEY (study, quick)
);
CREATE TABLE IF NOT EXISTS failures (
    study TEXT, phase TEXT NOT NULL, activation TEXT NOT NULL, task TEXT NOT NULL, lr REAL NOT NULL,
    trial_keys TEXT NOT NULL, error TEXT NOT NULL, created_at TEXT NOT NULL
);
"""


class StoreError(ActlabError, ValueError):
    """The store path is unusable (unwritable, not SQLite, or not an actlab database); nothing was written."""


def trial_key(**fields: Any) -> str:
    payload = json.dumps({"schema": SCHEMA_VERSION, **fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def environment() -> tuple[dict[str, str], dict[str, Any]]:
    """(package versions, hardware) recorded with every trial."""
    import numpy
    import torch

    import actlab

    versions = {"actlab": actlab.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
                "python": platform.python_version()}
    hardware = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "system": platform.system()}
    return versions, hardware


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class Store:
    """An open results store. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._check_existing()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {str(self.path)!r}: {exc}") from None
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except sqlite3.Error as exc:
            self.conn.close()
            raise StoreError(f"cannot write the store {str(self.path)!r}: {exc}") from None

    def _check_existing(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"the store {str(self.path)!r} is a directory; give a file path such as runs/actlab.db")
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb") as f:
            header = f.read(16)
        if header != SQLITE_HEADER:
            raise StoreError(f"{str(self.path)!r} is not an actlab results database (not an SQLite file); "
                             "nothing was written to it")
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as c:
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                fmt = dict(c.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        except sqlite3.Error as exc:
            raise StoreError(f"{str(self.path)!r} cannot be read as SQLite: {exc}") from None
        if tables and fmt.get("format") != FORMAT:
            raise StoreError(f"{str(self.path)!r} is an SQLite database but not an actlab results store "
                             f"(tables: {', '.join(sorted(tables))}); nothing was written to it")
        if fmt and int(fmt.get("schema_version", 0)) > SCHEMA_VERSION:
            raise StoreError(f"{str(self.path)!r} was written by a newer actlab (schema "
                             f"{fmt['schema_version']} > {SCHEMA_VERSION})")

    def _init_schema(self) -> None:
        with self.transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self.conn.execute(statement)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def transaction(self):
        conn = self.conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- writing ---------------------------------------------------------------------------------------

    def write_trial(self, trial: dict[str, Any], epochs: Sequence[dict[str, Any]]) -> None:
        """Store one trial and its epochs atomically (replacing an earlier trial with the same key)."""
        missing = set(TRIAL_COLUMNS) - set(trial)
        if missing:
            raise ValueError(f"write_trial: missing fields {sorted(missing)}")
        row = tuple(_clean(trial[c]) for c in TRIAL_COLUMNS)
        with self.transaction():
            self.conn.execute("DELETE FROM epochs WHERE trial_key = ?", (trial["trial_key"],))
            self.conn.execute(f"INSERT OR REPLACE INTO trials VALUES ({', '.join('?' * len(TRIAL_COLUMNS))})", row)
            self.conn.executemany(
                f"INSERT INTO epochs VALUES ({', '.join('?' * len(EPOCH_COLUMNS))})",
                [tuple(_clean(e[c]) if c != "trial_key" else trial["trial_key"] for c in EPOCH_COLUMNS) for e in epochs],
            )

    def write_finding(self, finding: dict[str, Any]) -> None:
        """Store a study's finding (the latest run of each study, quick and full kept apart)."""
        row = (finding["study"], int(bool(finding["quick"])), finding["claim"], finding["source"],
               None if finding["reproduced"] is None else int(finding["reproduced"]), finding["summary"],
               json.dumps(finding["lines"]), json.dumps(finding["numbers"], default=str), finding["command"], now())
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def write_failure(self, study: str, phase: str, activation: str, task: str, lr: float,
                      trial_keys: Sequence[str], error: str) -> None:
        """Log a trial group that failed (after any retries) with its error; its trials stay missing, so a rerun
        trains them again."""
        with self.transaction():
            self.conn.execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (study, phase, activation, task, float(lr), json.dumps(list(trial_keys)), error, now()))

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query as dicts keyed by column."""
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def failures(self) -> list[dict[str, Any]]:
        """Every failed group logged, oldest first."""
        rows = self._dicts("SELECT * FROM failures ORDER BY rowid")
        for r in rows:
            r["trial_keys"] = json.loads(r["trial_keys"])
        return rows

    def findings(self) -> list[dict[str, Any]]:
        rows = self._dicts("SELECT * FROM findings ORDER BY study, quick")
        for r in rows:
            r["lines"] = json.loads(r["lines"])
            r["numbers"] = json.loads(r["numbers"])
            r["reproduced"] = None if r["reproduced"] is None else bool(r["reproduced"])
        return rows

    # ----- reading ---------------------------------------------------------------------------------------

    def existing(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = f"SELECT trial_key FROM trials WHERE trial_key IN ({', '.join('?' * len(chunk))})"
            found.update(r[0] for r in self.conn.execute(q, chunk))
        return found

    def _by_keys(self, table: str, keys: Iterable[str], order: str = "") -> list[dict[str, Any]]:
        keys = list(keys)
        rows: list[dict[str, Any]] = []
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[i : i + 500]
            rows += self._dicts(f"SELECT * FROM {table} WHERE trial_key IN ({', '.join('?' * len(chunk))}){order}",
                                chunk)
        return rows

    def trials(self, keys: Iterable[str] | None = None, study: str | None = None) -> list[dict[str, Any]]:
        if keys is not None:
            return self._by_keys("trials", keys)
        if study is not None:
            return self._dicts("SELECT * FROM trials WHERE study = ?", (study,))
        return self._dicts("SELECT * FROM trials")

    def epochs(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        return self._by_keys("epochs", keys, " ORDER BY trial_key, epoch")

    def studies(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT study FROM trials ORDER BY study")]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_results(path: str | os.PathLike, epochs: bool = False):
    """The trials of a store as a pandas DataFrame (``epochs=True``: the per-epoch rows, joined to their trial)."""
    import pandas as pd

    if not Path(path).exists():
        raise StoreError(f"no results store at {str(path)!r}")
    with Store(path) as store:
        trials = pd.DataFrame(store.trials(), columns=list(TRIAL_COLUMNS))
        if not epochs:
            return trials
        rows = pd.DataFrame(store.epochs(trials["trial_key"].tolist()), columns=list(EPOCH_COLUMNS))
    keep = ["trial_key", "study", "phase", "activation", "task", "lr", "seed_index"]
    return rows.merge(trials[keep], on="trial_key", how="left")
