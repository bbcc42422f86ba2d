"""Password and API-key checks that cannot starve the server: a small pool and two rate limits.

A check costs one scrypt (~16 MiB and tens of milliseconds of CPU). Run in the shared worker-thread
pool, 1,000 concurrent token requests took every thread (and ~640 MiB) and an unrelated
authenticated GET waited seconds for a thread to validate its token. Here checks run in their own
pool of ``hash_workers`` threads with at most ``hash_queue`` waiting; past that, or past a rate
limit, the answer is 429 with ``Retry-After`` at once, before any hashing.

Two token buckets: every attempt from one client address takes a token from that address's bucket;
every *failed* attempt for one user name takes one from that user's (so guessing one account's
password from many addresses is slowed, while the user's own successful logins are limited only
by address). The buckets are in memory, per process, and bounded in number.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from imagehop.config import AuthLimits
from imagehop.identity.service import TooManyRequests, Unauthorized

T = TypeVar("T")
MAX_KEYS = 10_000  # buckets kept per kind; the least recently used go first


class Buckets:
    """Token buckets by key: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, since = self._levels.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - since) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token again (0: it has one now)."""
        if self.rate <= 0:
            return 0.0
        level = self._level(key, time.monotonic())
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def take(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self._levels[key] = (self._level(key, now) - 1, now)
        self._levels.move_to_end(key)
        while len(self._levels) > MAX_KEYS:
            self._levels.popitem(last=False)


class AuthGate:
    """Admission, rate limits and the hashing pool for one identity endpoint (one event loop)."""

    def __init__(self, limits: AuthLimits | None = None) -> None:
        self.limits = limits or AuthLimits()
        self.pool = ThreadPoolExecutor(max_workers=max(1, self.limits.hash_workers), thread_name_prefix="auth-hash")
        self.by_address = Buckets(self.limits.rate_per_address, self.limits.burst_per_address)
        self.by_user = Buckets(self.limits.rate_per_user, self.limits.burst_per_user)
        self.waiting = 0

    async def check(self, address: str, user: str, check: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run ``check`` (a password or API-key check that raises Unauthorized) within the limits."""
        user_key = user.strip().lower()
        wait = max(self.by_address.wait(address), self.by_user.wait(user_key))
        if wait > 0:
            raise TooManyRequests(
                "Too many authentication attempts; try again later.", retry_after=max(1, math.ceil(wait))
            )
        if self.waiting >= self.limits.hash_queue:
            raise TooManyRequests("The identity service is busy checking credentials; try again.", retry_after=1)
        self.by_address.take(address)
        self.waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, functools.partial(check, *args, **kwargs))
        except Unauthorized:
            self.by_user.take(user_key)
            raise
        finally:
            self.waiting -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
