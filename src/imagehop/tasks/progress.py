"""Progress of a running task: bytes done of total, kept in the row and shown in ``message``."""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from imagehop.images.service import now
from imagehop.tasks import store

MIB = 1 << 20


class Progress:
    """``progress(done, total)`` writes ``"<verb> 120 of 2048 MiB"`` at most every ``every`` seconds."""

    def __init__(self, engine: Engine, task_id: str, verb: str, every: float = 0.5) -> None:
        self.engine, self.task_id, self.verb, self.every = engine, task_id, verb, every
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        moment = time.monotonic()
        if moment - self._last < self.every and done < total:
            return
        self._last = moment
        message = f"{self.verb} {done // MIB} of {-(-total // MIB)} MiB"
        with self.engine.begin() as conn:
            store.update(conn, self.task_id, progress_done=done, progress_total=total, message=message,
                         updated_at=now())  # fmt: skip
