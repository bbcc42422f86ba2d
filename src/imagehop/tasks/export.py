"""The ``export`` task: an image becomes ``<container>/<image id>.vhd``, a dynamic VHD, in the caller's account.

Checked when the task runs, as Rackspace did (the POST always answers 201): the container name,
the image (exists, is the caller's, is active, its licence allows export), the container, and that
the object does not exist yet. Then one streaming pass: the stored image (raw, sparse: only its data
extents are read) → the VHD writer → object writers. A VHD up to ``export_segment_size`` is one plain
object; a bigger one is a Static Large Object ``<image id>.vhd`` whose segments ``<image id>.vhd-00001``,
``-00002``, … sit beside it in the same container (Rackspace's segment names; an SLO rather than
Rackspace's DLO, so a missing or changed segment makes a GET fail instead of returning a corrupt
disk). Memory stays at a few 2 MiB blocks whatever the image size.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from imagehop import formats
from imagehop.images import store as image_store
from imagehop.images.service import CONTENT_DIGEST
from imagehop.objects import slo
from imagehop.objects.constraints import SLO_MAX_SEGMENTS
from imagehop.objects.store import NoSuchContainer, NoSuchObject, ObjectWriter
from imagehop.tasks import sealed
from imagehop.tasks.context import TaskContext, swift_account
from imagehop.tasks.errors import TaskFailed

log = logging.getLogger(__name__)

LICENCE_PROPERTY = "com.rackspace__1__options"
TASK_META = "x-object-meta-imagehop-export-task"
CONTENT_TYPE = "application/octet-stream"


def check_input(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        raise TaskFailed("Input must be an object with image_uuid and receiving_swift_container.")
    image_id, container = data.get("image_uuid"), data.get("receiving_swift_container")
    if not isinstance(image_id, str) or not image_id:
        raise TaskFailed("Input does not contain 'image_uuid' field")
    if not isinstance(container, str) or not container:
        raise TaskFailed("Input does not contain 'receiving_swift_container' field")
    return image_id, container


def run(ctx: TaskContext, task: dict, progress: Callable[[int, int], None]) -> dict:
    """Export; returns the task result ``{"export_location": "<container>/<id>.vhd"}``."""
    image_id, container = check_input(task["input"])
    if any(c in container for c in "/?."):
        raise TaskFailed(f"Container name must not contain '/', '?' or '.'. Container: {container}")
    with ctx.images.engine.connect() as conn:
        image = image_store.get(conn, image_id) if len(image_id) <= 36 else None
    if image is None or (image["owner"] != task["owner"] and image["visibility"] not in ("public", "community")):
        raise TaskFailed(f"Requested image for export was not found: {image_id}")
    if image["owner"] != task["owner"]:
        raise TaskFailed("An image may only be exported by the image owner.")
    options = image["properties"].get(LICENCE_PROPERTY)
    if options not in (None, "", "0"):
        raise TaskFailed(
            f"Image cannot be exported due to licensing or billing restrictions ({LICENCE_PROPERTY}: '{options}')"
        )
    if str(image["properties"].get("os_type", "")).lower() == "windows":
        raise TaskFailed("Image cannot be exported due to licensing or billing restrictions (os_type: 'windows')")
    if image["status"] != "active" or not image["data_key"]:
        raise TaskFailed(f"Image {image_id} is {image['status']}; only active images can be exported.")
    account = swift_account(task["owner"])
    name = f"{image_id}.vhd"
    try:
        ctx.objects.get_container(account, container)
    except NoSuchContainer:
        raise TaskFailed(f"Container not found. Container: {container}") from None
    try:
        existing = ctx.objects.head(account, container, name)
    except NoSuchObject:
        existing = None
    if existing is not None:
        if existing.meta.get(TASK_META) == task["id"]:  # this task wrote it before a restart
            return {"export_location": f"{container}/{name}"}
        raise TaskFailed(f"Object already exists in user's container. Container/Object: {container}/{name}")

    with ctx.images.data.open_as(image["data_key"], image["disk_format"]) as disk:
        allocated = formats.extent_blocks(disk) if disk.format == "raw" else None
        writer = formats.VhdWriter(disk, subformat="dynamic", allocated_blocks=allocated)
        total = writer.size
        meta = raw_hashes_meta(ctx, image, disk)
        write_object(ctx, account, container, name, iter(writer), total, task["id"], progress, meta)
    return {"export_location": f"{container}/{name}"}


def raw_hashes_meta(ctx: TaskContext, image: dict, disk: formats.VirtualDisk) -> dict[str, str]:
    """The image's stored hashes, sealed for an import of this VHD (tasks/sealed.py): only for a raw
    image whose bytes are exactly the disk the VHD holds (a whole number of sectors)."""
    digest = image["properties"].get(CONTENT_DIGEST)
    if (
        not ctx.region.integrity_key
        or disk.format != "raw"
        or image.get("os_hash_algo") != "sha512"
        or not (image.get("checksum") and image.get("os_hash_value") and digest)
        or image.get("size") != disk.virtual_size
        or disk.virtual_size % formats.disk.SECTOR
    ):
        return {}
    hashes = sealed.RawHashes(disk.virtual_size, digest, image["checksum"], image["os_hash_value"])
    return sealed.seal(ctx.region.integrity_key, hashes)


def write_object(
    ctx: TaskContext,
    account: str,
    container: str,
    name: str,
    chunks: Iterator[bytes],
    total: int,
    task_id: str,
    progress: Callable[[int, int], None],
    extra_meta: dict[str, str] | None = None,
) -> None:
    """``total`` bytes of ``chunks`` as object ``name``: plain, or an SLO over segments when big."""
    # Segments a mover can send whole (each with its ETag, which the target checks) and hash in parallel;
    # never more than an SLO may hold.
    segment_size = max(ctx.settings.export_segment_size, -(-total // (SLO_MAX_SEGMENTS << 20)) << 20)
    meta = {TASK_META: task_id, **(extra_meta or {})}
    objects = ctx.objects
    if total <= segment_size:
        writer = objects.writer(account, container, name, content_type=CONTENT_TYPE, meta=meta)
        try:
            done = 0
            for chunk in chunks:
                writer.write(chunk)
                done += len(chunk)
                progress(done, total)
            if done != total:
                raise RuntimeError(f"the VHD writer produced {done} bytes, expected {total}")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return

    segments: list[dict[str, Any]] = []
    count = -(-total // segment_size)
    width = max(5, len(str(count)))
    done = 0
    current: ObjectWriter | None = None
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                if current is None:
                    seg_name = f"{name}-{len(segments) + 1:0{width}d}"
                    current = objects.writer(account, container, seg_name, content_type=CONTENT_TYPE)
                room = segment_size - current.size
                piece = view[:room]
                current.write(bytes(piece) if len(piece) != len(chunk) else chunk)
                view = view[len(piece) :]
                done += len(piece)
                if current.size == segment_size:
                    info = current.commit()
                    current = None
                    segments.append({"path": f"/{container}/{info.name}", "etag": info.etag, "size_bytes": info.size})
            progress(done, total)
        if current is not None and current.size:
            info = current.commit()
            current = None
            segments.append({"path": f"/{container}/{info.name}", "etag": info.etag, "size_bytes": info.size})
        if done != total:
            raise RuntimeError(f"the VHD writer produced {done} bytes, expected {total}")
        entries = slo.parse(json.dumps(segments).encode(), container, name)
        slo.put(objects, account, container, name, entries, slo.in_process, expected_etag=None,
                content_type=CONTENT_TYPE, meta=meta, delete_at=None)  # fmt: skip
    except BaseException:
        if current is not None:
            current.abort()
        for segment in segments:
            with contextlib.suppress(NoSuchObject, NoSuchContainer):
                objects.delete_object(account, container, segment["path"].split("/", 2)[2])
        raise
