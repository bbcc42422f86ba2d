"""The copy journal: what each copy has done, so a re-run continues where it stopped.

A small SQLite file (``$XDG_STATE_HOME/imagehop/journal.db`` or ``--state FILE``). A copy is keyed
by what it moves (source, target, object and the source's ETag): the same command finds its own
earlier run; a changed source starts afresh. Each finished segment is committed as soon as the
target has verified it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS segments (
    job TEXT NOT NULL REFERENCES jobs(key) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    sent_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (job, idx)
);
"""


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "imagehop" / "journal.db"


@dataclass(frozen=True)
class SegmentRecord:
    idx: int
    etag: str
    size: int
    attempts: int


class Journal:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def open_job(self, key: str) -> dict[str, Any]:
        """The job's saved state (``{}`` when new)."""
        now = time.time()
        self._run("INSERT OR IGNORE INTO jobs (key, created_at, updated_at) VALUES (?, ?, ?)", (key, now, now))
        return json.loads(self._run("SELECT state FROM jobs WHERE key = ?", (key,))[0][0])

    def save_state(self, key: str, state: dict[str, Any]) -> None:
        self._run("UPDATE jobs SET state = ?, updated_at = ? WHERE key = ?", (json.dumps(state), time.time(), key))

    def segment_done(self, key: str, idx: int, etag: str, size: int, attempts: int) -> None:
        self._run(
            "INSERT OR REPLACE INTO segments (job, idx, etag, size, sent_at, attempts) VALUES (?, ?, ?, ?, ?, ?)",
            (key, idx, etag, size, time.time(), attempts),
        )

    def segments(self, key: str) -> dict[int, SegmentRecord]:
        rows = self._run("SELECT idx, etag, size, attempts FROM segments WHERE job = ? ORDER BY idx", (key,))
        return {idx: SegmentRecord(idx, etag, size, attempts) for idx, etag, size, attempts in rows}

    def forget_segment(self, key: str, idx: int) -> None:
        self._run("DELETE FROM segments WHERE job = ? AND idx = ?", (key, idx))

    def finish_job(self, key: str) -> None:
        """Forget a finished job's segments (its state stays, for `already done` answers)."""
        self._run("DELETE FROM segments WHERE job = ?", (key,))
