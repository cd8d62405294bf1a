"""SQLite store of trials: one row per trial keyed by its resolved config, studies as named memberships.

A trial that finished (:attr:`TrialStatus.DONE`) is never run again; one that was killed mid-way is still
:attr:`TrialStatus.RUNNING` in the store and resumes from its checkpoint. Each write is one transaction, so a
kill never leaves half a result. A trial that failed (a distributed study's task, after its retry) keeps its
last error in ``failures`` and is tried again by the next run; the store is written by one process only (the
driver of a distributed study).

Every trial record carries the format of its result (:data:`RECORD_FORMAT`); a store made before the column
existed is migrated when opened (its records are format 1, the same fields), and a record of a newer format
than this code reads is refused with one line.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deeprx.io import InputError
from deeprx.studies.trial_result import TrialStatus

RECORD_FORMAT = 1  # the fields of a trial's result (deeprx.studies.trial_result.TrialResult.to_dict)
_STATES = ", ".join(f"'{s.value}'" for s in TrialStatus)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS trials (
    key TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({_STATES})),
    result TEXT,
    updated REAL NOT NULL,
    format INTEGER NOT NULL DEFAULT {RECORD_FORMAT}
);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    study TEXT NOT NULL,
    key TEXT NOT NULL REFERENCES trials(key),
    label TEXT NOT NULL,
    PRIMARY KEY (study, key)
);
"""


class Store:
    """The results of one output folder (``studies.sqlite``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(path)
            with self.db:
                self.db.executescript(SCHEMA)
                columns = {row[1] for row in self.db.execute("PRAGMA table_info(trials)")}
                if "format" not in columns:  # a store from before record formats: its records are format 1
                    self.db.execute("ALTER TABLE trials ADD COLUMN format INTEGER NOT NULL DEFAULT 1")
        except sqlite3.DatabaseError as err:
            raise InputError(
                f"{path} is not a deeprx study store ({err}); move it away or choose another --out"
            ) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; a full disk or a read-only folder becomes one line (the store keeps what it had)."""
        try:
            with self.db:
                yield
        except sqlite3.OperationalError as err:
            raise InputError(
                f"cannot write the study store {self.path} ({err}); free disk space or choose a writable --out, "
                "then re-run: finished trials are kept"
            ) from None

    def result(self, key: str) -> dict[str, Any] | None:
        """The finished result of a trial, or ``None`` if it has not finished."""
        query = "SELECT result, format FROM trials WHERE key = ? AND status = ?"
        row = self.db.execute(query, (key, TrialStatus.DONE.value)).fetchone()
        if row is None:
            return None
        if row[1] > RECORD_FORMAT:
            raise InputError(
                f"{self.path} holds trial {key} in record format {row[1]}; this deeprx reads up to "
                f"{RECORD_FORMAT}: upgrade deeprx or choose another --out"
            )
        return json.loads(row[0])

    def start(self, key: str, role: str, config: dict[str, Any]) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT INTO trials (key, role, config, status, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET updated = excluded.updated",
                (key, role, json.dumps(config, sort_keys=True), TrialStatus.RUNNING.value, time.time()),
            )

    def finish(self, key: str, result: dict[str, Any]) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE trials SET status = ?, result = ?, updated = ?, format = ? WHERE key = ?",
                (TrialStatus.DONE.value, json.dumps(result, default=str), time.time(), RECORD_FORMAT, key),
            )
            self.db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def fail(self, key: str, error: str, attempts: int) -> None:
        """Record that a trial failed ``attempts`` times, the last with ``error``; it stays unfinished, so the
        next run of the study tries it again (a finished result clears the record)."""
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO failures (key, error, attempts, updated) VALUES (?, ?, ?, ?)",
                (key, error, attempts, time.time()),
            )

    def failures(self) -> dict[str, dict[str, Any]]:
        """Every recorded failure: ``key -> {"error", "attempts"}``."""
        rows = self.db.execute("SELECT key, error, attempts FROM failures").fetchall()
        return {key: {"error": error, "attempts": attempts} for key, error, attempts in rows}

    def failure(self, key: str) -> str | None:
        """The last recorded error of an unfinished trial, or ``None``."""
        row = self.db.execute("SELECT error FROM failures WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def add_member(self, study: str, key: str, label: dict[str, Any]) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO members (study, key, label) VALUES (?, ?, ?)",
                (study, key, json.dumps(label, sort_keys=True)),
            )

    def members(self, study: str) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """``(label, result or None)`` for every trial of a study, in insertion order."""
        rows = self.db.execute(
            "SELECT m.label, t.result FROM members m JOIN trials t ON t.key = m.key WHERE m.study = ? ORDER BY m.rowid",
            (study,),
        ).fetchall()
        return [(json.loads(label), None if result is None else json.loads(result)) for label, result in rows]

    def studies_of(self, keys: list[str]) -> dict[str, list[str]]:
        """The studies each of ``keys`` is a member of."""
        found: dict[str, list[str]] = {}
        for key in keys:
            rows = self.db.execute("SELECT study FROM members WHERE key = ? ORDER BY rowid", (key,)).fetchall()
            found[key] = [r[0] for r in rows]
        return found

    def train_seconds(self) -> float:
        """Training time summed over every finished trial in the store, in seconds."""
        query = "SELECT SUM(json_extract(result, '$.train_seconds')) FROM trials WHERE status = ?"
        return float(self.db.execute(query, (TrialStatus.DONE.value,)).fetchone()[0] or 0.0)

    def status_counts(self) -> dict[str, int]:
        """How many trials are in each :class:`TrialStatus`, by its value (states with none left out)."""
        return dict(self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
