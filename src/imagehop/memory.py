"""A server's memory stays flat: at most two glibc malloc arenas.

Every thread that allocates under contention gets its own malloc arena (up to 8 per core), and an
arena keeps the 1-2 MiB buffers of a transfer it freed (glibc raises its trim threshold with the
sizes it sees). With the request threads, the hashing threads and the task workers of a busy
server, that retained memory, not any live buffer, is most of the peak RSS: over the job benchmark
a peak of about 190 MiB fell to about 125 MiB with two arenas. ``MALLOC_ARENA_MAX`` in the
environment, when set, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def limit_malloc_arenas(count: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads started from now on; False where that is not glibc
    (or the environment already says)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, count))
