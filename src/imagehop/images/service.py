"""The rules of the image service: who may see and change what, and how an image changes.

Every function takes the :class:`Caller` and returns plain records (see ``store.py``); errors are
:mod:`imagehop.images.errors`. Visibility: an image is visible to its owner, to everyone when
``public`` or ``community``, to members when ``shared``, and to admins; an invisible image is
*not found*, never *forbidden*. Only the owner (or an admin) changes an image; a ``reader`` changes
nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from imagehop import formats
from imagehop.config import QUOTAS, ImageSettings
from imagehop.db import images as images_table
from imagehop.identity.caller import Caller
from imagehop.images import blocks, filters, recovery, store
from imagehop.images.data import DataWriter, ImageData
from imagehop.images.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
)
from imagehop.images.patch import Change
from imagehop.images.schemas import (
    BASE_KEYS,
    CONTAINER_FORMATS,
    DISK_FORMATS,
    READ_ONLY,
    RESERVED,
    RESERVED_PREFIX,
    UUID_PATTERN,
    VISIBILITIES,
)
from imagehop.streams import BodyTooLarge, pump

Record = dict[str, Any]

MAX_TAGS = 128
MAX_PROPERTIES = 128
MAX_IMAGE_SIZE = 1 << 40  # 1 TiB, Glance's image_size_cap
MIB = 1 << 20
HASH_ALGO = "sha512"
CONTENT_DIGEST = "imagehop.content_digest"
# Bytes kept from an interrupted resumable upload (imagehop's extension, see ``upload``); listed in
# the image schema, which is how a client tells that this image service resumes uploads.
UPLOAD_KEPT = store.UPLOAD_KEPT
# Properties the service computes; clients may read but not write them. Other `imagehop.*` keys are
# the user's (e.g. `imagehop.source`, the coordinating property `imagehop copy` generates).
SERVICE_OWNED = frozenset({CONTENT_DIGEST, UPLOAD_KEPT})
HIDDEN_PROPERTIES = frozenset({"os_glance_stage_host", "os_glance_hash_op_host", recovery.WRITER})
_UUID = re.compile(UUID_PATTERN)
# Read-only attributes Glance's create accepts and ignores (with their schema's maxLength).
IGNORED_ON_CREATE = {"os_hash_algo": 64, "os_hash_value": 128}


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ImageService:
    def __init__(self, engine: Engine, data: ImageData, settings: ImageSettings | None = None) -> None:
        self.engine = engine
        self.data = data
        self.settings = settings or ImageSettings()

    # --- quotas ------------------------------------------------------------------------------------

    def usage(self, conn: Any, owner: str) -> dict[str, int]:
        """The tenant's usage per quota (sizes in MiB, rounded up, as Glance's unified limits count)."""
        used = store.usage(conn, owner)
        staged = 0
        for (image_id,) in conn.execute(
            sa.select(images_table.c.id).where(images_table.c.owner == owner, images_table.c.status == "uploading")
        ):
            staged += self.data.staged_size(image_id)
        return {  # whole MiB, rounded down, as Glance counts them
            "image_size_total": used["image_size_total"] // MIB,
            "image_count_total": used["image_count_total"],
            "image_stage_total": staged // MIB,
            "image_count_uploading": used["image_count_uploading"],
        }

    def check_quota(self, conn: Any, caller: Caller, deltas: dict[str, int]) -> None:
        """413 as Glance answers when a quota would be over its limit: usage + delta > limit, where the
        delta is what the request adds (1 image; the MiB of an upload's or stage's Content-Length; 1
        upload in progress), checked before the bytes arrive."""
        limits = {name: getattr(self.settings, name) for name in deltas if getattr(self.settings, name)}
        if not limits:
            return
        used = self.usage(conn, caller.tenant_id)
        for name, limit in limits.items():
            delta = deltas[name]
            if used[name] + delta > limit:
                raise TooLarge(
                    f"Project {caller.tenant_id} is over a limit for [Resource {name} is over limit of {limit} "
                    f"due to current usage {used[name]} and delta {delta}]"
                )

    def usage_view(self, caller: Caller) -> dict[str, dict[str, int]]:
        """``GET /v2/info/usage``: limit (-1: none) and usage of each quota."""
        with self.engine.connect() as conn:
            used = self.usage(conn, caller.tenant_id)
        return {name: {"limit": getattr(self.settings, name) or -1, "usage": used[name]} for name in QUOTAS}

    # --- visibility ------------------------------------------------------------------------------

    def _visible(self, conn: Any, caller: Caller, image_id: str, *, for_update: bool = False) -> Record:
        image = store.get(conn, image_id, for_update=for_update) if _UUID.match(image_id) else None
        if image is None or not can_see(conn, caller, image):
            raise NotFound(f"No image found with ID {image_id}")
        return image

    def _writable(self, conn: Any, caller: Caller, image_id: str) -> Record:
        image = self._visible(conn, caller, image_id, for_update=True)
        check_can_write(caller, image)
        return image

    # --- images ----------------------------------------------------------------------------------

    def create(self, caller: Caller, body: Any) -> Record:
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object describing the image.")
        if not caller.can_write:
            raise Forbidden("You are not authorized to create images (read-only role).")
        for key, value in body.items():
            if key in IGNORED_ON_CREATE:  # Glance takes and drops them (its domain computes both)
                _nullable_string(key, value, IGNORED_ON_CREATE[key])
            elif key != "id":
                check_settable(key)
        image_id = body.get("id")
        if image_id is None:
            image_id = str(uuid.uuid4())
        elif not isinstance(image_id, str) or not _UUID.match(image_id):
            raise BadRequest(f"Invalid image id {image_id!r}: it must be a UUID.")
        moment = now()
        image: Record = {
            "id": image_id, "name": None, "status": "queued", "visibility": "shared", "protected": False,
            "os_hidden": False, "owner": caller.tenant_id, "checksum": None, "os_hash_algo": None,
            "os_hash_value": None, "size": None, "virtual_size": None, "container_format": None,
            "disk_format": None, "min_ram": 0, "min_disk": 0, "created_at": moment, "updated_at": moment,
            "data_key": None, "properties": {}, "tags": [],
        }  # fmt: skip
        for key, value in body.items():
            if key == "id" or key in IGNORED_ON_CREATE:
                continue
            if key == "owner" and value != caller.tenant_id and not caller.is_admin:
                raise Forbidden("You are not permitted to create images owned by another project.")
            set_attribute(caller, image, key, value)
        check_quotas(image)
        row = {k: v for k, v in image.items() if k not in ("properties", "tags")}
        with self.engine.begin() as conn:
            if store.exists(conn, image_id):
                raise Conflict(f"Image with identifier {image_id} already exists!")
            self.check_quota(conn, caller, {"image_count_total": 1})
            store.insert(conn, row, image["properties"], image["tags"])
            return store.get(conn, image_id)  # type: ignore[return-value]

    def get(self, caller: Caller, image_id: str) -> Record:
        with self.engine.connect() as conn:
            return self._visible(conn, caller, image_id)

    def delete(self, caller: Caller, image_id: str) -> None:
        with self.engine.begin() as conn:
            image = self._writable(conn, caller, image_id)
            if image["protected"]:
                raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
            store.delete(conn, image_id, image["owner"], now())
        if image["data_key"]:
            self.data.delete(image["data_key"])
        if UPLOAD_KEPT in image["properties"]:
            self.data.drop_kept(image_id)

    def list(self, caller: Caller, params: list[tuple[str, str]]) -> tuple[list[Record], bool]:
        """One page and whether it is full (so that a ``next`` link is due)."""
        query = filters.parse(params)
        with self.engine.connect() as conn:
            marker = None
            if query.marker is not None:
                marker = store.get(conn, query.marker) if _UUID.match(query.marker) else None
                if marker is None:
                    raise BadRequest(f"Invalid marker. Image {query.marker} could not be found.")
                if not can_see(conn, caller, marker):  # Glance's database API tells these apart
                    raise Forbidden(f"Forbidding request, image {query.marker} not visible")
            if query.limit == 0:
                return [], False
            lookup = driver(conn, query)
            ready = filters.prepared(caller, query, lookup) if marker is None else None
            if ready is not None:
                rows = [dict(r) for r in conn.execute(*ready).mappings()]
            else:
                rows = [dict(r) for r in conn.execute(filters.select(caller, query, marker, lookup)).mappings()]
            return store.complete(conn, rows), len(rows) == query.limit

    def update(self, caller: Caller, image_id: str, changes: list[Change]) -> Record:
        with self.engine.begin() as conn:
            before = self._writable(conn, caller, image_id)
            after = {**before, "properties": dict(before["properties"]), "tags": list(before["tags"])}
            for change in changes:
                apply_change(caller, after, change)
            check_quotas(after)
            if after != before:
                after["updated_at"] = now()
                store.save(conn, before, after)
            return store.get(conn, image_id)  # type: ignore[return-value]

    # --- tags ------------------------------------------------------------------------------------

    def add_tag(self, caller: Caller, image_id: str, tag: str) -> None:
        check_tag(tag)
        with self.engine.begin() as conn:
            before = self._writable(conn, caller, image_id)
            if tag in before["tags"]:
                return
            if len(before["tags"]) >= MAX_TAGS:
                raise TooLarge(f"Maximum number of tags ({MAX_TAGS}) exceeded.")
            store.save(conn, before, {**before, "tags": [*before["tags"], tag], "updated_at": now()})

    def delete_tag(self, caller: Caller, image_id: str, tag: str) -> None:
        with self.engine.begin() as conn:
            before = self._writable(conn, caller, image_id)
            if tag not in before["tags"]:
                raise NotFound(f"Tag {tag} not found on image {image_id}.")
            tags = [t for t in before["tags"] if t != tag]
            store.save(conn, before, {**before, "tags": tags, "updated_at": now()})

    # --- deactivate / reactivate -----------------------------------------------------------------

    def deactivate(self, caller: Caller, image_id: str) -> None:
        self._switch(caller, image_id, "active", "deactivated", "deactivate")

    def reactivate(self, caller: Caller, image_id: str) -> None:
        self._switch(caller, image_id, "deactivated", "active", "reactivate")

    def _switch(self, caller: Caller, image_id: str, source: str, target: str, verb: str) -> None:
        with self.engine.begin() as conn:
            image = self._writable(conn, caller, image_id)
            if image["status"] == target:
                return
            if image["status"] != source:
                raise Forbidden(f"Not allowed to {verb} image in status '{image['status']}'")
            store.set_status(conn, image_id, [source], target, now())

    # --- data ------------------------------------------------------------------------------------

    async def upload(
        self,
        caller: Caller,
        image_id: str,
        chunks: AsyncIterator[bytes],
        declared_size: int | None,
        length: int | None = None,
        resume_at: int | None = None,
    ) -> None:
        """Store the image's bytes: queued → saving → active; on any failure back to queued.
        ``length`` is the request's Content-Length (what the size quota counts before the bytes).

        ``resume_at`` (imagehop's resumable upload; ``None`` is Glance's plain PUT): when the body
        stops short, the bytes that arrived are kept aside and the image shows their count as
        ``imagehop.upload_kept``; a later resumable PUT whose body starts at byte ``resume_at`` (at
        most that count) appends to them. The kept bytes are read back and hashed here again, so
        the image gets the same checksum, hashes, digest and block map as from one PUT."""
        if declared_size is not None and declared_size > MAX_IMAGE_SIZE:
            raise TooLarge(f"Image size {declared_size} exceeds the limit of {MAX_IMAGE_SIZE} bytes.")
        if resume_at:
            kept = await run_in_threadpool(self._kept, caller, image_id)
            if resume_at > kept:
                raise RangeNotSatisfiable(f"Cannot resume at byte {resume_at}: {kept} bytes of this upload are kept.")
        writer = await run_in_threadpool(self._begin_upload, caller, image_id, length)
        beat = recovery.heartbeat(self.engine, image_id)
        kept_aside: int | None = None  # bytes of an interrupted resumable upload, kept for a later PUT

        def write(piece: bytes) -> None:
            writer.write(piece)
            beat()

        try:
            if resume_at:
                await run_in_threadpool(self.data.replay_kept, writer, image_id, resume_at)
            try:
                await pump(chunks, write, limit=MAX_IMAGE_SIZE)
            except BodyTooLarge:
                raise TooLarge(f"Image exceeds the limit of {MAX_IMAGE_SIZE} bytes.") from None
            except Exception:
                if resume_at is None or not writer.size:
                    raise
                kept_aside = await run_in_threadpool(writer.keep)  # the body stopped short: keep what came
                raise
            if declared_size is not None and writer.size != declared_size:
                raise BadRequest(
                    f"Image size mismatch: x-openstack-image-size said {declared_size}, got {writer.size} bytes."
                )
            stored = await run_in_threadpool(writer.commit)
        except BaseException:
            await run_in_threadpool(self._fail_upload, writer, kept_aside)
            raise
        await run_in_threadpool(self._finish_upload, image_id, stored)
        await run_in_threadpool(self.data.drop_kept, image_id)  # whatever an interrupted resumable upload kept

    def _kept(self, caller: Caller, image_id: str) -> int:
        with self.engine.begin() as conn:
            self._writable(conn, caller, image_id)
        return self.data.kept_size(image_id)

    def store_disk(self, caller: Caller, image_id: str, disk: formats.VirtualDisk) -> None:
        """Store a virtual disk as the image's bytes (queued → saving → active); blocking.

        For images made inside the region (a server's snapshot): written native raw and sparse in
        one pass, holes never read, with the same checksum, hashes and digest as an upload.
        """
        self._begin_saving(caller, image_id)
        beat = recovery.heartbeat(self.engine, image_id)
        try:
            stored = self.data.write_disk(image_id, disk, progress=lambda _done: beat())
        except BaseException:
            with self.engine.begin() as conn:
                store.set_status(conn, image_id, ["saving"], "queued", now())
                recovery.end(conn, image_id)
            raise
        self._finish_upload(image_id, stored)

    def _begin_saving(self, caller: Caller, image_id: str, length: int | None = None) -> Record:
        with self.engine.begin() as conn:
            image = self._writable(conn, caller, image_id)
            if not image["disk_format"] or not image["container_format"]:
                raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
            deltas = {"image_size_total": (length or 0) // MIB, "image_count_uploading": 1}
            self.check_quota(conn, caller, deltas)
            if not store.set_status(conn, image_id, ["queued"], "saving", now()):
                raise Conflict(f"Image status transition from {image['status']} to saving is not allowed")
            recovery.begin(conn, image_id)
        return image

    def _begin_upload(self, caller: Caller, image_id: str, length: int | None = None) -> DataWriter:
        image = self._begin_saving(caller, image_id, length)
        try:
            return self.data.writer(image_id, image["disk_format"], image["container_format"])
        except BaseException:
            with self.engine.begin() as conn:
                store.set_status(conn, image_id, ["saving"], "queued", now())
                recovery.end(conn, image_id)
            raise

    def _fail_upload(self, writer: DataWriter, kept: int | None = None) -> None:
        """Back to ``queued``; with ``kept`` (the bytes an interrupted resumable upload keeps aside) the
        image shows their count in the same transaction, so a client that sees it can resume at once."""
        writer.abort()
        with self.engine.begin() as conn:
            store.set_status(conn, writer.key, ["saving"], "queued", now())
            if kept is not None:
                store.set_property(conn, writer.key, UPLOAD_KEPT, str(kept))
            recovery.end(conn, writer.key)

    def _finish_upload(self, image_id: str, stored: Any) -> None:
        with self.engine.begin() as conn:
            done = store.set_status(
                conn, image_id, ["saving"], "active", now(), data_key=stored.key, size=stored.size,
                checksum=stored.md5, os_hash_algo=HASH_ALGO, os_hash_value=stored.sha512,
                virtual_size=stored.virtual_size,
            )  # fmt: skip
            if done:
                store.set_property(conn, image_id, CONTENT_DIGEST, stored.content_digest)
                store.set_property(conn, image_id, UPLOAD_KEPT, None)
                save_blocks(conn, image_id, stored)
                recovery.end(conn, image_id)
        recovery.forget(image_id)
        if not done:  # deleted while uploading
            self.data.delete(stored.key)
            raise Gone(f"Image {image_id} was deleted during the upload.")

    def check_new_properties(self, caller: Caller, properties: Any) -> Record:
        """The image an import task will create, from its ``image_properties``; raises on bad ones.

        Checked before any byte is read, so a bad property fails the task at once. The image is
        private, ``raw``/``bare`` (what the region stores), owned by the caller.
        """
        if not isinstance(properties, dict):
            raise BadRequest("image_properties must be an object.")
        image: Record = {
            "id": None, "name": None, "status": "saving", "visibility": "private", "protected": False,
            "os_hidden": False, "owner": caller.tenant_id, "checksum": None, "os_hash_algo": None,
            "os_hash_value": None, "size": None, "virtual_size": None, "container_format": "bare",
            "disk_format": "raw", "min_ram": 0, "min_disk": 0, "created_at": None, "updated_at": None,
            "data_key": None, "properties": {}, "tags": [],
        }  # fmt: skip
        for key, value in properties.items():
            if key in ("id", "owner", "status"):
                raise Forbidden(f"Attribute '{key}' cannot be set on an imported image.")
            if key == "disk_format" and value != "raw":
                raise BadRequest(f"Imported images are stored as raw; disk_format {value!r} cannot be set.")
            check_settable(key)
            set_attribute(caller, image, key, value)
        check_quotas(image)
        return image

    def create_imported(self, caller: Caller, image_id: str, properties: Any, stored: Any) -> Record:
        """Record an active image whose bytes ``stored`` (from ImageData.write_disk) already holds."""
        image = self.check_new_properties(caller, properties)
        moment = now()
        image.update(
            id=image_id, status="active", created_at=moment, updated_at=moment, data_key=stored.key,
            size=stored.size, checksum=stored.md5, os_hash_algo=HASH_ALGO, os_hash_value=stored.sha512,
            virtual_size=stored.virtual_size,
        )  # fmt: skip
        image["properties"][CONTENT_DIGEST] = stored.content_digest
        row = {k: v for k, v in image.items() if k not in ("properties", "tags")}
        with self.engine.begin() as conn:
            if store.exists(conn, image_id):
                return store.get(conn, image_id)  # type: ignore[return-value]  # a resumed task
            store.insert(conn, row, image["properties"], image["tags"])
            save_blocks(conn, image_id, stored)
            return store.get(conn, image_id)  # type: ignore[return-value]

    def tasks(self, caller: Caller, image_id: str) -> list[Record]:
        """The import tasks of an image the caller can see, newest first."""
        with self.engine.connect() as conn:
            self._visible(conn, caller, image_id)
            return store.tasks_of(conn, image_id)

    def data_extents(self, caller: Caller, image_id: str) -> Record:
        """Where a raw image's bytes may be non-zero (an imagehop extension that lets another region
        pull only the data of a sparse image); the same access rules as a download."""
        image = self.open_data(caller, image_id)
        if not image["data_key"]:
            raise NotFound(f"Image {image_id} has no data.")
        extents = self.data.extents(image["data_key"])
        return {"size": image["size"], "extents": [[offset, length] for offset, length in extents]}

    def block_map(
        self, caller: Caller, image_id: str, after: int, limit: int
    ) -> tuple[Record, list[tuple[int, bytes]]]:
        """A page of the image's block map (an imagehop extension: (index, SHA-256) of each non-zero
        2 MiB block, what the content digest is made of): its header and up to ``limit`` entries after
        block ``after``. Only the owner, members and admins read it; a deactivated image's map, as its
        data, only admins."""
        image = self.open_data(caller, image_id)
        with self.engine.connect() as conn:
            if not (
                caller.is_admin
                or image["owner"] == caller.tenant_id
                or store.get_member(conn, image_id, caller.tenant_id)
            ):
                raise Forbidden(f"Only the owner and the members of image {image_id} may read its block map.")
            head = blocks.header(conn, image_id)
            if head is None or image["status"] not in ("active", "deactivated"):
                raise NotFound(
                    f"Image {image_id} has no block map: it has no data, its disk format is not one imagehop "
                    "measures (raw, vhd, qcow2), or its bytes were stored before block maps existed."
                )
            return head, blocks.page(conn, image_id, after, limit)

    def open_data(self, caller: Caller, image_id: str) -> Record:
        """The image whose bytes the caller may read (no data: ``data_key`` is None)."""
        with self.engine.connect() as conn:
            image = self._visible(conn, caller, image_id)
        if image["status"] == "deactivated" and not caller.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        if not caller.can_write:  # Glance's download_image: admin, or a member role (a reader may not)
            raise Forbidden("You are not authorized to complete download_image action.")
        return image


# --- the rules, as plain functions ---------------------------------------------------------------


def driver(conn: Any, query: filters.ListQuery) -> filters.Lookup | None:
    """The property or tag filter matching the fewest images, if it matches few enough to drive the query."""
    best: tuple[int, filters.Lookup] | None = None
    for lookup in query.lookups:
        count = filters.count_upto(conn, lookup, filters.DRIVE_LIMIT + 1)
        if best is None or count < best[0]:
            best = (count, lookup)
    return best[1] if best is not None and best[0] <= filters.DRIVE_LIMIT else None


def save_blocks(conn: Any, image_id: str, stored: Any) -> None:
    """Store the block map that came with ``stored`` bytes (none for formats we do not measure)."""
    if getattr(stored, "blocks", None) is not None:
        blocks.save(conn, image_id, stored.blocks)


def can_see(conn: Any, caller: Caller, image: Record) -> bool:
    if caller.is_admin or image["owner"] == caller.tenant_id:
        return True
    if image["visibility"] in ("public", "community"):
        return True
    if image["visibility"] == "shared":
        return store.get_member(conn, image["id"], caller.tenant_id) is not None
    return False


def can_read_blocks(conn: Any, caller: Caller, image: Record) -> bool:
    """Block maps (and so an image as the base of an incremental copy) are for the owner, the members
    and admins: a public or community image of another project is visible, but not theirs to build on."""
    if caller.is_admin or image["owner"] == caller.tenant_id:
        return True
    return store.get_member(conn, image["id"], caller.tenant_id) is not None


def check_can_write(caller: Caller, image: Record) -> None:
    if not caller.can_write:
        raise Forbidden("You are not authorized to change images (read-only role).")
    if not caller.is_admin and image["owner"] != caller.tenant_id:
        raise Forbidden(f"You are not permitted to modify image {image['id']}: it belongs to another project.")


def check_settable(key: str) -> None:
    if key in READ_ONLY or key in SERVICE_OWNED:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{key}' is reserved.")


def check_tag(tag: Any) -> None:
    if not isinstance(tag, str) or len(tag) > 255:
        raise BadRequest("Invalid tag: tags are strings of at most 255 characters.")


def check_quotas(image: Record) -> None:
    if len(image["tags"]) > MAX_TAGS:
        raise TooLarge(f"Maximum number of tags ({MAX_TAGS}) exceeded.")
    if len(image["properties"]) > MAX_PROPERTIES:
        raise TooLarge(f"Maximum number of properties ({MAX_PROPERTIES}) exceeded.")


def _nullable_string(key: str, value: Any, max_length: int = 255) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > max_length):
        raise BadRequest(f"Invalid value for '{key}': expected a string of at most {max_length} characters or null.")
    return value


def _enum(key: str, value: Any, allowed: list[str], nullable: bool = True) -> str | None:
    if (value is None and nullable) or value in allowed:
        return value
    raise BadRequest(f"Invalid value {value!r} for '{key}': it must be one of {', '.join(allowed)}.")


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"Invalid value for '{key}': expected an integer.")
    if value < 0:
        raise BadRequest(f"Invalid value for '{key}': it must be at least 0.")
    if value > filters.INT32_MAX:
        raise BadRequest(f"Invalid value for '{key}': it must be at most {filters.INT32_MAX}.")
    return value


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid value for '{key}': expected true or false.")
    return value


CUSTOM_UUID_PROPERTIES = frozenset({"kernel_id", "ramdisk_id"})
CUSTOM_ENUMS = {"cinder_encryption_key_deletion_policy": ["on_image_deletion", "do_not_delete"]}


def set_attribute(caller: Caller, image: Record, key: str, value: Any) -> None:
    """Set one writable attribute (base or extra) after checking its value; nothing is saved."""
    if key == "name":
        image["name"] = _nullable_string(key, value)
    elif key == "visibility":
        image["visibility"] = _enum(key, value, VISIBILITIES, nullable=False)
        if value == "public" and not caller.is_admin:
            raise Forbidden("Only an administrator may publicize an image (visibility 'public').")
    elif key in ("protected", "os_hidden"):
        image[key] = _boolean(key, value)
    elif key == "owner":
        image["owner"] = _nullable_string(key, value)
    elif key == "container_format":
        image[key] = _enum(key, value, CONTAINER_FORMATS)
    elif key == "disk_format":
        image[key] = _enum(key, value, DISK_FORMATS)
    elif key in ("min_ram", "min_disk"):
        image[key] = _integer(key, value)
    elif key == "tags":
        if not isinstance(value, list):
            raise BadRequest("Invalid value for 'tags': expected a list of strings.")
        for tag in value:
            check_tag(tag)
        image["tags"] = list(dict.fromkeys(value))
    else:
        if len(key) > 255 or not key:
            raise BadRequest("Property names must be 1 to 255 characters long.")
        if not isinstance(value, str):
            raise BadRequest(f"Invalid value for property '{key}': extra properties are strings.")
        if key in CUSTOM_UUID_PROPERTIES and not _UUID.match(value):
            raise BadRequest(f"Invalid value for '{key}': it must be an image UUID.")
        if key in CUSTOM_ENUMS:
            _enum(key, value, CUSTOM_ENUMS[key], nullable=False)
        image["properties"][key] = value


def apply_change(caller: Caller, image: Record, change: Change) -> None:
    """One JSON-patch operation, with Glance's 403 / 409 rules; ``image`` is changed in place."""
    key = change.key
    if key == "locations":
        raise Forbidden("It's not allowed to update locations if locations are invisible.")
    check_settable(key)
    is_base = key in BASE_KEYS
    if change.op == "remove":
        if is_base:
            raise Forbidden(f"Property {key} may not be removed.")
        if key not in image["properties"]:
            raise Conflict(f"Property {key} does not exist.")
        del image["properties"][key]
        return
    if change.op == "replace" and not is_base and key not in image["properties"]:
        raise Conflict(f"Property {key} does not exist.")
    if change.op == "add" and change.draft == 4 and (is_base or key in image["properties"]):
        raise Conflict(f"Property {key} already present.")
    if key == "owner" and not caller.is_admin and change.value != image["owner"]:
        raise Forbidden("Only an administrator may change the owner of an image.")
    if key in ("disk_format", "container_format") and image["status"] not in ("queued", "importing"):
        raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    if key == "visibility" and change.value == image["visibility"]:
        return  # re-stating "public" needs no publicize right
    set_attribute(caller, image, key, change.value)
