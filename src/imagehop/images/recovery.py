"""Uploads and stages cut short by a crash: back to ``queued``, their partial data removed.

While bytes arrive (``PUT /file`` → ``saving``, ``PUT /stage`` → ``uploading``, a snapshot →
``saving``) the image carries the hidden property :data:`WRITER` = ``host:pid:heartbeat``, renewed
every :data:`BEAT_EVERY` seconds and removed when the write ends either way. A writer is gone when
it was a process of this host that no longer runs (or this process, no longer writing), or when its
heartbeat is older than :data:`LEASE` (another host). The task worker's housekeeping (at start-up
and every minute) puts such images back to ``queued`` and deletes what they left, as Glance does
after a failed upload, so a re-upload works without deleting the image. A completed stage (staged
data present, no writer) stays ``uploading`` until its import. Interrupted imports are the task
worker's own business (their image holds ``os_glance_import_task``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from imagehop.db import image_properties, images
from imagehop.images import store
from imagehop.images.data import ACCOUNT, ImageData
from imagehop.leases import process_ended
from imagehop.objects.store import NoSuchContainer, NoSuchObject

log = logging.getLogger(__name__)

WRITER = "os_glance_upload_writer"
STAGING = "staging"
LOCK = "os_glance_import_task"
BEAT_EVERY = 20.0
LEASE = 90.0

_active: set[str] = set()  # image ids this process is writing now
_active_lock = threading.Lock()


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def writer_value(moment: float | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{int(moment if moment is not None else time.time())}"


def begin(conn: Any, image_id: str) -> None:
    """Mark ``image_id`` as being written by this process (inside the caller's transaction)."""
    with _active_lock:
        _active.add(image_id)
    store.set_property(conn, image_id, WRITER, writer_value())


def end(conn: Any, image_id: str) -> None:
    """The write ended (committed or failed): no writer any more."""
    store.set_property(conn, image_id, WRITER, None)
    with _active_lock:
        _active.discard(image_id)


def forget(image_id: str) -> None:
    with _active_lock:
        _active.discard(image_id)


def heartbeat(engine: sa.Engine, image_id: str) -> Callable[[], None]:
    """A callable to call often while writing: renews the heartbeat at most every BEAT_EVERY seconds."""
    last = time.monotonic()

    def beat() -> None:
        nonlocal last
        if time.monotonic() - last < BEAT_EVERY:
            return
        last = time.monotonic()
        with engine.begin() as conn:
            conn.execute(
                image_properties.update()
                .where(image_properties.c.image_id == image_id, image_properties.c.name == WRITER)
                .values(value=(value := writer_value()), value_key=value)
            )

    return beat


def is_gone(value: str | None, image_id: str, moment: float) -> bool:
    """Whether the writer recorded as ``value`` no longer writes ``image_id``."""
    if not value:
        return True
    host, _, rest = value.partition(":")
    pid_text, _, beat_text = rest.partition(":")
    if not pid_text.isdigit() or not beat_text.isdigit():
        return True
    if host == socket.gethostname():
        pid = int(pid_text)
        if pid == os.getpid():
            with _active_lock:
                return image_id not in _active
        return process_ended(pid)
    return int(beat_text) < moment - LEASE


def sweep(engine: sa.Engine, data: ImageData) -> list[str]:
    """Put back to ``queued`` every image whose upload or stage was cut short; the ids restored."""
    moment = time.time()
    writer = sa.select(image_properties.c.value).where(
        image_properties.c.image_id == images.c.id, image_properties.c.name == WRITER
    )
    locked = sa.select(image_properties.c.image_id).where(
        image_properties.c.image_id == images.c.id, image_properties.c.name == LOCK
    )
    query = sa.select(images.c.id, images.c.status, writer.scalar_subquery().label("writer")).where(
        images.c.status.in_(["saving", "uploading"]), ~sa.exists(locked)
    )
    with engine.connect() as conn:
        candidates = conn.execute(query).all()
    restored = []
    for image_id, status, value in candidates:
        if not is_gone(value, image_id, moment):
            continue
        if status == "uploading" and value is None and _staged(data, image_id):
            continue  # a finished stage waiting for its glance-direct import
        if _restore(engine, data, image_id, status, value):
            restored.append(image_id)
            log.warning("image %s: its %s was interrupted; back to queued", image_id, _what(status))
    return restored


def _restore(engine: sa.Engine, data: ImageData, image_id: str, status: str, value: str | None) -> bool:
    with engine.begin() as conn:
        current = conn.execute(writer_select(image_id)).scalar()
        if current != value:
            return False  # a new writer started meanwhile
        if not store.set_status(conn, image_id, [status], "queued", now()):
            return False
        store.set_property(conn, image_id, WRITER, None)
    if status == "saving":
        data.delete(image_id)
    else:
        with contextlib.suppress(NoSuchObject, NoSuchContainer):
            data.objects.delete_object(ACCOUNT, STAGING, image_id)
    return True


def writer_select(image_id: str) -> sa.Select:
    return sa.select(image_properties.c.value).where(
        image_properties.c.image_id == image_id, image_properties.c.name == WRITER
    )


def _staged(data: ImageData, image_id: str) -> bool:
    try:
        data.objects.head(ACCOUNT, STAGING, image_id)
    except (NoSuchObject, NoSuchContainer):
        return False
    return True


def _what(status: str) -> str:
    return "upload" if status == "saving" else "stage"
