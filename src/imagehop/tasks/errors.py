"""How a task ends badly: a message for its ``message`` field (Rackspace's wording where known)."""

from __future__ import annotations


class TaskFailed(Exception):
    """The task ends in ``failure`` with ``message``; nothing it started is left behind."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
