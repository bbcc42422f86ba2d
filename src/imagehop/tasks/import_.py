"""The ``import`` task: ``<container>/<object>`` of the caller's account becomes a new active image.

Order matters: the input and ``image_properties`` are checked, then the disk is opened and validated
(VHD footer, header, BAT; qcow2 header and tables; the size limits) before anything is created, so
a bad disk fails at once with Rackspace's code (``Image cannot be imported. Error code: '396'``)
and leaves nothing. Then one pass writes it in the region's native format (raw, sparse: holes and
zero blocks are skipped) through ``images/data.py``, which also yields checksum, os_hash_value and
the content digest; only then is the image row created, already ``active``. The new image's id is
chosen when the task first runs and kept in the task row, so a task resumed after a restart ends
with the same image, never two.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from imagehop import formats
from imagehop.images.data import StoredData
from imagehop.images.errors import ImageError
from imagehop.objects.store import BrokenLargeObject, NoSuchContainer, NoSuchObject
from imagehop.tasks import sealed, store
from imagehop.tasks.context import TaskContext, swift_account, task_caller
from imagehop.tasks.errors import TaskFailed

log = logging.getLogger(__name__)

IMPORT_FORMATS = ("vhd", "qcow2", "raw")


def check_input(data: Any) -> tuple[str, str, str, dict]:
    if not isinstance(data, dict):
        raise TaskFailed("Input must be an object with import_from, import_from_format and image_properties.")
    source = data.get("import_from")
    if not isinstance(source, str) or not source:
        raise TaskFailed("Input does not contain 'import_from' field")
    container, _, name = source.lstrip("/").partition("/")
    if not container or not name:
        raise TaskFailed(f"import_from must be <container>/<object>, got {source!r}")
    fmt = data.get("import_from_format", "vhd")
    if fmt not in IMPORT_FORMATS:
        raise TaskFailed(f"import_from_format must be one of {', '.join(IMPORT_FORMATS)}, got {fmt!r}")
    properties = data.get("image_properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise TaskFailed("Unsupported element in image_properties, please consult the documentation.")
    return container, name, fmt, properties


def store_disk(
    ctx: TaskContext, image_id: str, disk: formats.VirtualDisk, progress: Callable[[int], object],
    claimed: sealed.RawHashes | None,
) -> StoredData:  # fmt: skip
    """Store the disk as the image's raw data. With a valid seal from an export, its MD5 and SHA-512
    are taken once the content digest and size computed here prove the bytes are the same; if they
    differ, the disk is stored again with every hash computed."""
    if claimed is not None and claimed.size == disk.virtual_size:
        stored = ctx.images.data.write_disk(image_id, disk, progress, known_hashes=(claimed.md5, claimed.sha512))
        if (stored.content_digest, stored.size) == (claimed.content_digest, claimed.size):
            log.info("import of image %s: MD5 and SHA-512 taken from the export's sealed hashes", image_id)
            return stored
        ctx.images.data.delete(stored.key)
        log.info("import of image %s: the export's sealed hashes are of other content; hashing it", image_id)
    return ctx.images.data.write_disk(image_id, disk, progress)


def run(ctx: TaskContext, task: dict, progress: Callable[[int, int], None]) -> dict:
    """Import; returns the task result ``{"image_id": ...}``."""
    container, name, fmt, properties = check_input(task["input"])
    caller = task_caller(task)
    try:
        ctx.images.check_new_properties(caller, properties)
    except ImageError as exc:
        raise TaskFailed(f"Unsupported element in image_properties: {exc.message}") from None
    account = swift_account(task["owner"])
    try:
        reader = ctx.objects.open(account, container, name)
    except (NoSuchObject, NoSuchContainer):
        raise TaskFailed(f"Error: Swift could not find object {container}/{name}.") from None
    except BrokenLargeObject as exc:
        raise TaskFailed(f"Error: the large object {container}/{name} is broken: {exc}") from None
    with reader:
        try:
            disk = formats.open_disk(
                reader,
                fmt,
                max_virtual_size=ctx.settings.import_max_virtual_size,
                max_physical_size=ctx.settings.import_max_physical_size,
            )
        except formats.DiskFormatError as exc:
            log.info("import task %s: %s: %s", task["id"], exc.rackspace_message, exc.message)
            raise TaskFailed(exc.rackspace_message) from None
        image_id = task.get("image_id")
        if not image_id:
            image_id = str(uuid.uuid4())
            with ctx.images.engine.begin() as conn:
                store.update(conn, task["id"], image_id=image_id)
        size = disk.virtual_size
        claimed = sealed.unseal(ctx.region.integrity_key, reader.info.meta)
        try:
            stored = store_disk(ctx, image_id, disk, lambda done: progress(done, size), claimed)
        except formats.DiskFormatError as exc:
            log.info("import task %s: %s: %s", task["id"], exc.rackspace_message, exc.message)
            raise TaskFailed(exc.rackspace_message) from None
        except BrokenLargeObject as exc:
            raise TaskFailed(f"Error: the large object {container}/{name} changed while it was read: {exc}") from None
    try:
        ctx.images.create_imported(caller, image_id, properties, stored)
    except BaseException:
        ctx.images.data.delete(stored.key)
        raise
    return {"image_id": image_id}
