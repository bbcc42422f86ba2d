"""Progress of a running task: bytes done of total, kept in the row and shown in ``message``."""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from imagehop.images.service import now
from imagehop.tasks import store

MIB = 1 << 20


class TaskLost(Exception):
    """Another worker took the task over (this worker's lease ran out): stop working on it."""


class Progress:
    """``progress(done, total)`` writes ``"<verb> 120 of 2048 MiB"`` at most every ``every`` seconds.

    The write is fenced on the task's claim; when the task was taken over (or the heartbeat found it
    lost), it raises :class:`TaskLost` so the runner stops.
    """

    def __init__(self, engine: Engine, task: dict, verb: str, every: float = 0.5, lost: set[str] | None = None) -> None:
        self.engine, self.task, self.verb, self.every = engine, task, verb, every
        self.lost = lost if lost is not None else set()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        moment = time.monotonic()
        if moment - self._last < self.every and done < total:
            return
        self._last = moment
        if self.task["id"] in self.lost:
            raise TaskLost(self.task["id"])
        message = f"{self.verb} {done // MIB} of {-(-total // MIB)} MiB"
        with self.engine.begin() as conn:
            held = store.update_held(conn, self.task, progress_done=done, progress_total=total, message=message,
                                     updated_at=now())  # fmt: skip
        if not held:
            raise TaskLost(self.task["id"])
