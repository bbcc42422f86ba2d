"""Loopback ports for the servers the tests start on a port they name (peers, TLS proxies, topologies).

Asking the kernel for port 0 and closing the socket races: the kernel hands the same port out again
(to another test process's peer, or as the local port of any outgoing connection) before our server
binds it. So ports come from below the kernel's ephemeral range (32768 and up on Linux), never
handed out by the kernel, in a block of its own for each pytest-xdist worker (``PYTEST_XDIST_WORKER``
= ``gwN``): 10000 + 1000 * (N + 1) and the 999 after it; a run without xdist takes 10000-10999. A
port is returned once per process, is skipped when something listens on it, and is claimed for the
life of the process with a lock on one byte of a shared file, so two test runs at once on one
machine (two checkouts) never get the same port either. ``port + 10000`` of each block (SeaweedFS's
gRPC twin, ``pair=True``) stays inside that worker's twin block, 20000 up.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

BASE, BLOCK, TWIN = 10000, 1000, 10000
# Well-known services that live in or near these blocks on machines of this kind.
AVOID = {11211, 15672, 25672, 27017, 28017}

_given: set[int] = set()
_lock_file: int | None = None


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0


def _claim(port: int) -> bool:
    """Lock byte ``port`` of the shared claims file for this process (released when it exits)."""
    global _lock_file
    if _lock_file is None:
        path = Path(tempfile.gettempdir()) / "imagehop-test-ports.lock"
        _lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(_lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError:
        return False
    return True


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(pair: bool = False) -> int:
    """A loopback port no other test process (worker, run) is given; with ``pair``, ``port + 10000`` is
    free and claimed too."""
    index = _worker_index()
    if index >= TWIN // BLOCK:
        raise RuntimeError(f"free_port: too many xdist workers (at most {TWIN // BLOCK - 1})")
    start = BASE + index * BLOCK
    offset = random.randrange(BLOCK)
    for step in range(BLOCK):
        port = start + (offset + step) % BLOCK
        ports = (port, port + TWIN) if pair else (port,)
        if any(p in _given or p in AVOID for p in ports):
            continue
        if all(_bindable(p) for p in ports) and all(_claim(p) for p in ports):
            _given.update(ports)
            return port
    raise RuntimeError(f"free_port: no free port left in {start}-{start + BLOCK - 1}")
