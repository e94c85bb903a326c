"""The results store: one SQLite file (default ``runs/actlab.db``) in WAL mode.

Each finished trial is written with its per-epoch rows, package versions and hardware in one transaction, so a
process killed mid-sweep loses at most the trials in flight. A trial's *key* hashes everything that determines its
numbers (phase, activation and parameters, task, recipe, learning rate, seed index, base seed, and the data,
model and trainer fingerprints): a rerun finds the trials already stored and reuses them (resume, and reuse
across studies). A trial's *id* names one training run of a key: ``--force`` trains a key again under a new id.

Each study records which trial ids it shows (``study_trials``, replaced whenever the study runs), so a report
shows exactly the trials its study asked for, reused or not, and forcing one study never changes another's.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from actlab.errors import ActlabError, ActlabFailure
from actlab.experiments.training.group import now

SCHEMA_VERSION = 2
FORMAT = "actlab-results"
SQLITE_HEADER = b"SQLite format 3\x00"
LOCK_TIMEOUT = 30.0

TRIAL_COLUMNS = (
    "trial_id", "trial_key", "study", "phase", "activation", "trainable", "task", "recipe", "lr", "seed_index",
    "base_seed", "init_seed", "data_seed", "status", "diverged_epoch", "vectorized", "note", "final_acc",
    "final_correct", "n_test", "epochs_to_target", "auc", "s_per_epoch", "train_seconds", "dead_final",
    "final_train_loss", "final_test_loss", "activation_params", "identity", "versions", "hardware", "command",
    "created_at",
)
EPOCH_COLUMNS = ("trial_id", "epoch", "train_loss", "test_loss", "test_acc", "dead_fraction", "train_seconds")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY, trial_key TEXT NOT NULL, study TEXT, phase TEXT NOT NULL, activation TEXT NOT NULL,
    trainable INTEGER NOT NULL, task TEXT NOT NULL, recipe TEXT NOT NULL, lr REAL NOT NULL,
    seed_index INTEGER NOT NULL, base_seed INTEGER NOT NULL, init_seed INTEGER, data_seed INTEGER,
    status TEXT NOT NULL, diverged_epoch INTEGER, vectorized INTEGER, note TEXT, final_acc REAL,
    final_correct INTEGER, n_test INTEGER, epochs_to_target INTEGER, auc REAL, s_per_epoch REAL,
    train_seconds REAL, dead_final REAL, final_train_loss REAL, final_test_loss REAL, activation_params TEXT,
    identity TEXT,
    versions TEXT, hardware TEXT, command TEXT, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_by_key ON trials(trial_key, created_at);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id TEXT NOT NULL REFERENCES trials(trial_id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
    train_loss REAL, test_loss REAL, test_acc REAL, dead_fraction REAL, train_seconds REAL,
    PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY, config TEXT NOT NULL, outcome TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS study_trials (
    study TEXT NOT NULL, trial_key TEXT NOT NULL, trial_id TEXT NOT NULL REFERENCES trials(trial_id),
    PRIMARY KEY (study, trial_key)
);
CREATE TABLE IF NOT EXISTS findings (
    study TEXT NOT NULL, quick INTEGER NOT NULL, claim TEXT NOT NULL, source TEXT NOT NULL, reproduced INTEGER,
    summary TEXT NOT NULL, lines TEXT NOT NULL, numbers TEXT NOT NULL, command TEXT, created_at TEXT NOT NULL,
    verdict TEXT, details TEXT,
    PRIMARY KEY (study, quick)
);
CREATE TABLE IF NOT EXISTS failures (
    study TEXT, phase TEXT NOT NULL, activation TEXT NOT NULL, task TEXT NOT NULL, lr REAL NOT NULL,
    trial_keys TEXT NOT NULL, error TEXT NOT NULL, created_at TEXT NOT NULL
);
"""


class StoreError(ActlabFailure, ValueError):
    """The store path is unusable (unwritable, not SQLite, or not an actlab database); nothing was written. The
    command line exits 1 (a failure), not 2: what was typed may be right and the file wrong."""


def trial_key(**fields: Any) -> str:
    payload = json.dumps({"schema": SCHEMA_VERSION, **fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class Store:
    """An open results store. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike, timeout: float = LOCK_TIMEOUT):
        self.path = Path(path)
        self.timeout = timeout
        self._check_existing()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {str(self.path)!r}: {exc}") from None
        try:
            with self._translated():
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self._init_schema()
        except StoreError:
            self.conn.close()
            raise

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """SQLite's errors as a StoreError that says what happened to the user's results."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreError(f"the store {str(self.path)!r} is locked by another process (waited "
                                 f"{self.timeout:g} s); wait for it to finish or use another --store") from None
            if "full" in text:
                raise StoreError(f"the disk holding the store {str(self.path)!r} is full; the trials in progress "
                                 "were not written (every earlier trial is kept; a rerun resumes)") from None
            raise StoreError(f"cannot use the store {str(self.path)!r}: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use the store {str(self.path)!r}: {exc}") from None

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
        version = int(fmt.get("schema_version", SCHEMA_VERSION)) if fmt else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StoreError(f"{str(self.path)!r} was written by a newer actlab (schema "
                             f"{fmt['schema_version']} > {SCHEMA_VERSION})")
        if version < SCHEMA_VERSION:
            raise StoreError(f"{str(self.path)!r} was written by an older actlab (schema {version}), whose trial "
                             "keys did not cover the model and the data, so its trials cannot be reused safely; "
                             "give a new --store path (the old file is left as it is)")

    def _init_schema(self) -> None:
        with self.transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self.conn.execute(statement)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(findings)")}
            for column in ("verdict", "details"):  # findings written before verdicts had three names
                if column not in columns:
                    self.conn.execute(f"ALTER TABLE findings ADD COLUMN {column} TEXT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; a lock held too long or a full disk becomes a StoreError and nothing is half-written."""
        with self._translated():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- writing ---------------------------------------------------------------------------------------

    def write_trial(self, trial: dict[str, Any], epochs: Sequence[dict[str, Any]], *, unless_stored: bool = False
                    ) -> str:
        """Store one training run of a trial and its epochs atomically, under a new id; returns the id. With
        ``unless_stored``, a key another process stored meanwhile (two concurrent runs that share an activation) is
        not stored twice: the id already there is returned, checked and written in one transaction."""
        trial = {**trial, "trial_id": trial.get("trial_id") or uuid.uuid4().hex}
        missing = set(TRIAL_COLUMNS) - set(trial)
        if missing:
            raise ValueError(f"write_trial: missing fields {sorted(missing)}")
        row = tuple(_clean(trial[c]) for c in TRIAL_COLUMNS)
        with self.transaction():
            if unless_stored:
                found = self.conn.execute("SELECT trial_id FROM trials WHERE trial_key = ? ORDER BY created_at DESC, "
                                          "rowid DESC LIMIT 1", (trial["trial_key"],)).fetchone()
                if found is not None:
                    return str(found[0])
            self.conn.execute(f"INSERT INTO trials VALUES ({', '.join('?' * len(TRIAL_COLUMNS))})", row)
            self.conn.executemany(
                f"INSERT INTO epochs VALUES ({', '.join('?' * len(EPOCH_COLUMNS))})",
                [tuple(_clean(e[c]) if c != "trial_id" else trial["trial_id"] for c in EPOCH_COLUMNS) for e in epochs],
            )
        return trial["trial_id"]

    def write_study(self, study: str, members: Mapping[str, str], config: Mapping[str, Any],
                    outcome: Mapping[str, Any]) -> None:
        """Record what the latest run of ``study`` showed: its trials (key -> id), its configuration and the
        numbers computed from them beyond the trials (chosen rates, cost). Replaces the study's previous record."""
        with self.transaction():
            self.conn.execute("DELETE FROM study_trials WHERE study = ?", (study,))
            self.conn.executemany("INSERT INTO study_trials VALUES (?, ?, ?)",
                                  [(study, k, i) for k, i in members.items()])
            self.conn.execute("INSERT OR REPLACE INTO studies VALUES (?, ?, ?, ?)",
                              (study, json.dumps(config, sort_keys=True, default=str),
                               json.dumps(outcome, sort_keys=True, default=str), now()))

    def write_finding(self, finding: dict[str, Any]) -> None:
        """Store a study's finding (the latest run of each study, quick and full kept apart): its verdict
        (supported, contradicted, undecided) and, in ``details``, the declaration it was decided under."""
        verdict = finding["verdict"]
        details = {k: finding.get(k) for k in ("seeds", "declaration", "effect", "would_change")}
        row = (finding["study"], int(bool(finding["quick"])), finding["claim"], finding["source"],
               {"supported": 1, "contradicted": 0}.get(verdict), finding["summary"], json.dumps(finding["lines"]),
               json.dumps(finding["numbers"], default=str), finding["command"], now(), verdict,
               json.dumps(details, default=str))
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO findings (study, quick, claim, source, reproduced, summary, "
                              "lines, numbers, command, created_at, verdict, details) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def write_failure(self, study: str, phase: str, activation: str, task: str, lr: float,
                      trial_keys: Sequence[str], error: str) -> None:
        """Log a trial group that failed (after any retries) with its error; its trials stay missing, so a rerun
        trains them again."""
        with self.transaction():
            self.conn.execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (study, phase, activation, task, float(lr), json.dumps(list(trial_keys)), error, now()))

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query as dicts keyed by column."""
        with self._translated():
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
            if r["verdict"] is None:  # written before verdicts had three names
                r["verdict"] = {1: "supported", 0: "contradicted"}.get(r["reproduced"], "undecided")
            r.update(json.loads(r.pop("details") or "{}"))
            r.pop("reproduced")
        return rows

    # ----- reading ---------------------------------------------------------------------------------------

    def latest(self, keys: Iterable[str]) -> dict[str, str]:
        """key -> id of its most recent training run, for the keys the store has."""
        found: dict[str, str] = {}
        for chunk in _chunks(list(keys)):
            q = (f"SELECT trial_key, trial_id FROM trials WHERE trial_key IN ({', '.join('?' * len(chunk))}) "
                 "ORDER BY created_at, rowid")
            with self._translated():
                found.update(dict(self.conn.execute(q, chunk).fetchall()))  # later rows win
        return found

    def existing(self, keys: Iterable[str]) -> set[str]:
        return set(self.latest(keys))

    def _by(self, table: str, column: str, values: Iterable[str], order: str = "") -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(list(values)):
            rows += self._dicts(f"SELECT * FROM {table} WHERE {column} IN ({', '.join('?' * len(chunk))}){order}",
                                chunk)
        return rows

    def trials(self, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Trial rows by id (all of them without ids)."""
        if ids is not None:
            return self._by("trials", "trial_id", ids)
        return self._dicts("SELECT * FROM trials ORDER BY created_at, rowid")

    def epochs(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        return self._by("epochs", "trial_id", ids, " ORDER BY trial_id, epoch")

    def study(self, study: str) -> dict[str, Any] | None:
        """The latest run of a study: {"config", "outcome", "created_at", "members": {key: id}}, or None."""
        rows = self._dicts("SELECT * FROM studies WHERE study = ?", (study,))
        if not rows:
            return None
        members = dict(self.conn.execute("SELECT trial_key, trial_id FROM study_trials WHERE study = ?", (study,)))
        return {"config": json.loads(rows[0]["config"]), "outcome": json.loads(rows[0]["outcome"]),
                "created_at": rows[0]["created_at"], "members": members}

    def memberships(self) -> dict[str, list[str]]:
        """trial id -> the studies whose latest run shows it (a trial reused by several studies lists them all)."""
        out: dict[str, list[str]] = {}
        for study, trial_id in self.conn.execute("SELECT study, trial_id FROM study_trials ORDER BY study"):
            out.setdefault(trial_id, []).append(study)
        return out

    def studies(self) -> list[str]:
        """Study names, most recent last."""
        return [r[0] for r in self.conn.execute("SELECT study FROM studies ORDER BY created_at, rowid")]


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    """SQLite's limit on bound parameters."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def load_results(path: str | os.PathLike, epochs: bool = False):
    """The trials of a store as a pandas DataFrame (``epochs=True``: the per-epoch rows, joined to their trial).
    ``study`` names the study that trained a trial, ``used_by`` every study whose latest run shows it: a trial
    one study trained and another reused, or two concurrent runs' duplicate of one key, can be told apart."""
    import pandas as pd

    if not Path(path).exists():  # a path typed wrong: a usage error, not a store fault
        raise ActlabError(f"no results store at {str(path)!r}")
    with Store(path) as store:
        trials = pd.DataFrame(store.trials(), columns=list(TRIAL_COLUMNS))
        # "study" is the study that trained a trial; "used_by", every study whose latest run shows it ("; ")
        used = store.memberships()
        trials["used_by"] = ["; ".join(used.get(i, [])) for i in trials["trial_id"]]
        if not epochs:
            return trials
        rows = pd.DataFrame(store.epochs(trials["trial_id"].tolist()), columns=list(EPOCH_COLUMNS))
    keep = ["trial_id", "trial_key", "study", "phase", "activation", "task", "lr", "seed_index"]
    return rows.merge(trials[keep], on="trial_id", how="left")
