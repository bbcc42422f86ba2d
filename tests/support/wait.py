"""The one polling helper: wait until an observable state holds, or fail saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 60, every: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    ``what`` names the awaited state ("task 1234 ends", "server abc is ACTIVE"); on timeout the
    AssertionError says it, with the last value ``check`` returned. ``timeout`` is a limit on a
    hang, never a measure of speed: pick it generously (a loaded 2-core CI machine).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}; last seen: {last!r}")
        time.sleep(every)
