"""Who holds what: process identities, named database locks with a lease, and dead-holder checks.

Several processes (region API processes and workers, on one host or many) share one database. A
piece of work held by a process names it by :func:`holder_id` (``host:pid:nonce``) and keeps a lease
on it; another process may take the work over once the lease has run out, or at once when the
holder was a process of the same host that no longer runs (a crash, a SIGKILL).
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from imagehop.db import region_leases

_holder: tuple[int, str] | None = None


def holder_id() -> str:
    """This process's identity, fresh after a fork."""
    global _holder
    pid = os.getpid()
    if _holder is None or _holder[0] != pid:
        _holder = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}")
    return _holder[1]


def holder_gone(holder: str | None) -> bool:
    """True when ``holder`` was a process of this host that has ended (or names no process at all)."""
    if not holder:
        return True
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return holder != holder_id()
    return process_ended(pid)


def process_ended(pid: int) -> bool:
    """True when no process ``pid`` runs on this host (one we may not signal still runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(engine: Engine, name: str, ttl: float) -> bool:
    """Take or renew the lock ``name`` for ``ttl`` seconds; False while another live process holds it."""
    me, now = holder_id(), time.time()
    t = region_leases
    with engine.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.name == name)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(t.insert().values(name=name, holder=me, expires_at=now + ttl))
                return True
            except sa.exc.IntegrityError:
                return False
        if row.holder != me and row.expires_at > now and not holder_gone(row.holder):
            return False
        # Conditional on what we read: of two processes racing for an expired lock, one wins.
        won = conn.execute(
            t.update()
            .where(t.c.name == name, t.c.holder == row.holder, t.c.expires_at == row.expires_at)
            .values(holder=me, expires_at=now + ttl)
        ).rowcount
        return won == 1


def release(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(region_leases.delete().where(region_leases.c.name == name, region_leases.c.holder == holder_id()))
