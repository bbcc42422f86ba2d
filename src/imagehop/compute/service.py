"""The rules of the compute service, and the background jobs that boot, image and delete servers.

A server is a row plus a disk. The disk is the object ``disks/<server id>`` of the internal
account ``.imagehop-compute`` (no Swift request can name it), written sparse: booting copies the
image's virtual disk extent by extent, so zero regions are neither read nor written; ``createImage``
streams the disk's data extents into a new image, and its holes as zeros that are never read.

The jobs (boot, snapshot, delete) are rows of the region's ``tasks`` table (``compute_build``,
``compute_snapshot``, ``compute_delete``), written in the same transaction as the state change
that asks for them, and run by whichever task worker claims them: no process holds the truth in
memory. A server is ``BUILD`` until its disk is written, then ``ACTIVE`` (or ``ERROR`` with a
``fault``); ``DELETED`` until its disk is gone, then it is gone. Every state change is conditional
on the state it expects, so two workers racing on one server cannot both apply theirs. A boot or
delete whose worker died is run again by another (both are safe to redo); an interrupted snapshot
is cleared (its unfinished image deleted), so nothing stays stuck.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imagehop import formats
from imagehop.compute import flavors, store
from imagehop.compute.errors import BadRequest, Conflict, Forbidden, NotFound, OverLimit
from imagehop.compute.images_port import ImagesPort
from imagehop.identity.caller import Caller
from imagehop.objects.store import NoSuchObject, ObjectStore
from imagehop.region import Region

log = logging.getLogger(__name__)

Record = dict[str, Any]

DISK_ACCOUNT = ".imagehop-compute"
DISK_CONTAINER = "disks"
COPY_CHUNK = 1 << 20
MAX_METADATA_ITEMS = 128
SNAPSHOT_STATES = ("image_snapshot", "image_pending_upload", "image_uploading")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ServerRequest:
    """A validated ``POST /servers`` body."""

    name: str
    image_ref: str
    flavor_ref: str
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    admin_pass: str | None = None


@dataclass(frozen=True)
class ServerQuery:
    """Filters and paging of ``GET /servers`` and ``/servers/detail``."""

    name: str | None = None
    status: str | None = None
    image: str | None = None
    flavor: str | None = None
    limit: int | None = None
    marker: str | None = None
    all_tenants: bool = False


class ComputeService:
    def __init__(self, region: Region) -> None:
        self.region = region
        self.engine = region.engine
        objects = getattr(region, "objects", None)
        self.objects: ObjectStore = objects if objects is not None else ObjectStore(region.engine, region.data_dir)
        self.images = ImagesPort(region)
        self._disks_ready = False

    # --- servers ---------------------------------------------------------------------------------

    def create_server(self, caller: Caller, request: ServerRequest) -> tuple[Record, str]:
        """A new server in ``BUILD`` and its admin password; the disk is written in the background."""
        check_can_write(caller)
        flavor = flavors.get(request.flavor_ref)
        if flavor is None:
            raise BadRequest(f"Flavor {request.flavor_ref} could not be found.")
        if self.images.get(caller, request.image_ref) is None:
            raise BadRequest(f"Can not find requested image: {request.image_ref}")
        moment = now()
        row: Record = {
            "id": str(uuid.uuid4()), "tenant_id": caller.tenant_id, "user_id": caller.user_id,
            "name": request.name, "description": request.description, "status": "BUILD",
            "task_state": "spawning", "image_id": request.image_ref, "flavor_id": flavor.id,
            "metadata": dict(request.metadata), "fault": None, "disk_size": None, "snapshot_image_id": None,
            "created_at": moment, "updated_at": moment, "launched_at": None,
        }  # fmt: skip
        with self.engine.begin() as conn:
            store.insert(conn, row)
            store.insert_task(conn, "compute_build", row, {"server_id": row["id"]})
        return row, request.admin_pass or secrets.token_urlsafe(12)

    def get_server(self, caller: Caller, server_id: str) -> Record:
        """The server, as Nova shows it: once deleted it is not found (only ``?status=DELETED`` lists it
        while its disk goes), so clients that wait for a 404 after a delete stop waiting."""
        with self.engine.connect() as conn:
            server = self._visible(conn, caller, server_id)
        if server["status"] == "DELETED":
            raise NotFound(f"Instance {server_id} could not be found.")
        return server

    def list_servers(self, caller: Caller, query: ServerQuery) -> tuple[list[Record], bool]:
        """The servers the caller sees that match ``query`` (newest first), and whether the page is full."""
        tenant = None if (query.all_tenants and caller.is_admin) else caller.tenant_id
        with self.engine.connect() as conn:
            rows = store.list_for(conn, tenant)
        try:
            name = re.compile(query.name) if query.name is not None else None
        except re.error:
            raise BadRequest(f"Invalid name filter {query.name!r}: it is not a regular expression.") from None
        status = query.status.upper() if query.status else None
        rows = [
            r
            for r in rows
            if (name is None or name.search(r["name"]))
            and (status is None or r["status"] == status)
            and (status == "DELETED" or r["status"] != "DELETED")
            and (query.image is None or r["image_id"] == query.image.rsplit("/", 1)[-1])
            and (query.flavor is None or r["flavor_id"] == query.flavor.rsplit("/", 1)[-1])
        ]
        if query.marker is not None:
            ids = [r["id"] for r in rows]
            if query.marker not in ids:
                raise BadRequest(f"marker [{query.marker}] not found")
            rows = rows[ids.index(query.marker) + 1 :]
        if query.limit is not None:
            return rows[: query.limit], len(rows) >= query.limit > 0
        return rows, False

    def usage(self, caller: Caller, tenant_id: str | None = None) -> dict[str, int]:
        """What a tenant's servers use (``GET /limits``): instances, vCPUs and RAM (MiB) of its flavors.

        An admin may ask for another tenant (``?tenant_id=``); anyone else gets their own.
        """
        tenant = tenant_id if (tenant_id and caller.is_admin) else caller.tenant_id
        with self.engine.connect() as conn:
            rows = [r for r in store.list_for(conn, tenant) if r["status"] != "DELETED"]
        sizes = [flavors.get(r["flavor_id"]) for r in rows]
        return {
            "instances": len(rows),
            "cores": sum(f.vcpus for f in sizes if f is not None),
            "ram": sum(f.ram for f in sizes if f is not None),
        }

    def update_server(self, caller: Caller, server_id: str, changes: dict[str, Any]) -> Record:
        check_can_write(caller)
        with self.engine.begin() as conn:
            self._visible(conn, caller, server_id)
            if changes:
                store.update(conn, server_id, **changes, updated_at=now())
            return self._visible(conn, caller, server_id)

    def delete_server(self, caller: Caller, server_id: str) -> None:
        """Mark the server ``DELETED``; its disk and then its row go in the background."""
        check_can_write(caller)
        with self.engine.begin() as conn:
            server = self._visible(conn, caller, server_id)
            if server["status"] == "DELETED":
                return
            if store.update(conn, server_id, {"status": server["status"]}, status="DELETED", task_state="deleting",
                            updated_at=now()):  # fmt: skip
                store.insert_task(conn, "compute_delete", server, {"server_id": server_id})

    # --- metadata --------------------------------------------------------------------------------

    def get_metadata(self, caller: Caller, server_id: str) -> dict[str, str]:
        return dict(self.get_server(caller, server_id)["metadata"])

    def set_metadata(
        self, caller: Caller, server_id: str, metadata: dict[str, str], *, replace: bool
    ) -> dict[str, str]:
        """Replace (``PUT``) or merge into (``POST``) the server's metadata; returns the result."""
        check_can_write(caller)
        with self.engine.begin() as conn:
            server = self._visible(conn, caller, server_id)
            check_not_deleted(server)
            result = dict(metadata) if replace else {**server["metadata"], **metadata}
            if len(result) > MAX_METADATA_ITEMS:
                raise Forbidden(f"Quota exceeded for metadata items: at most {MAX_METADATA_ITEMS} allowed.")
            store.update(conn, server_id, metadata=result, updated_at=now())
            return result

    def get_metadata_item(self, caller: Caller, server_id: str, key: str) -> str:
        metadata = self.get_metadata(caller, server_id)
        if key not in metadata:
            raise NotFound(f"Metadata item was not found: {key}")
        return metadata[key]

    def delete_metadata_item(self, caller: Caller, server_id: str, key: str) -> None:
        check_can_write(caller)
        with self.engine.begin() as conn:
            server = self._visible(conn, caller, server_id)
            check_not_deleted(server)
            if key not in server["metadata"]:
                raise NotFound(f"Metadata item was not found: {key}")
            metadata = {k: v for k, v in server["metadata"].items() if k != key}
            store.update(conn, server_id, metadata=metadata, updated_at=now())

    # --- createImage -----------------------------------------------------------------------------

    def create_image(self, caller: Caller, server_id: str, name: str, metadata: dict[str, str]) -> Record:
        """A new image (``queued``) of the server's disk; its bytes are written in the background."""
        check_can_write(caller)
        with self.engine.begin() as conn:
            server = self._visible(conn, caller, server_id)
            if server["status"] != "ACTIVE" or server["task_state"] is not None:
                state = server["task_state"] or vm_state(server["status"])
                phrase = _state_phrase(server, state)
                raise Conflict(f"Cannot 'createImage' instance {server_id} while it is in {phrase}")
            if len(metadata) > MAX_METADATA_ITEMS:
                raise OverLimit(f"Quota exceeded for metadata items: at most {MAX_METADATA_ITEMS} allowed.")
            claimed = store.update(
                conn, server_id, {"status": "ACTIVE", "task_state": None}, task_state="image_snapshot", updated_at=now()
            )
            if not claimed:
                raise Conflict(f"Cannot 'createImage' instance {server_id} while it is busy; try again.")
        base = self.images.get(caller, server["image_id"])
        body: Record = {
            **metadata,
            "name": name,
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "private",
            "image_type": "snapshot",
            "instance_uuid": server_id,
            "base_image_ref": server["image_id"],
            "user_id": caller.user_id,
            "owner_id": caller.tenant_id,
            "min_disk": base["min_disk"] if base else 0,
            "min_ram": base["min_ram"] if base else 0,
        }
        try:
            image = self.images.create(caller, body)
        except BaseException:
            with self.engine.begin() as conn:
                store.update(conn, server_id, {"task_state": "image_snapshot"}, task_state=None, updated_at=now())
            raise
        with self.engine.begin() as conn:
            store.update(conn, server_id, {"task_state": "image_snapshot"}, snapshot_image_id=image["id"],
                         task_state="image_pending_upload")  # fmt: skip
            store.insert_task(conn, "compute_snapshot", {**server, "user_id": caller.user_id},
                              {"server_id": server_id, "image_id": image["id"]})  # fmt: skip
        return image

    # --- images proxy ----------------------------------------------------------------------------

    def get_image(self, caller: Caller, image_id: str) -> Record:
        image = self.images.get(caller, image_id)
        if image is None:
            raise NotFound("Image not found.")
        return image

    def list_images(self, caller: Caller, params: list[tuple[str, str]]) -> tuple[list[Record], bool]:
        return self.images.list(caller, params)

    # --- background jobs -------------------------------------------------------------------------

    def runners(self) -> dict[str, tuple[Any, str]]:
        """The task runners of the compute jobs, for the region's task worker."""
        return {
            "compute_build": (lambda _ctx, task, _progress: self._run_boot(task), "Built"),
            "compute_snapshot": (lambda _ctx, task, _progress: self._run_snapshot(task), "Imaged"),
            "compute_delete": (lambda _ctx, task, _progress: self._run_delete(task), "Deleted"),
        }

    def recover_snapshot(self, task: Record) -> None:
        """An interrupted snapshot: its unfinished image is deleted and the server freed."""
        server_id, image_id = task["input"]["server_id"], task["input"]["image_id"]
        with self.engine.begin() as conn:
            store.update(conn, server_id, {"snapshot_image_id": image_id}, task_state=None, snapshot_image_id=None,
                         updated_at=now())  # fmt: skip
        self.images.delete(task_caller(task), image_id)

    def _run_boot(self, task: Record) -> dict:
        self._boot(task["input"]["server_id"], task_caller(task))
        return {}

    def _run_snapshot(self, task: Record) -> dict:
        self._snapshot(task["input"]["server_id"], task["input"]["image_id"], task_caller(task))
        return {}

    def _run_delete(self, task: Record) -> dict:
        self._delete(task["input"]["server_id"])
        return {}

    def _boot(self, server_id: str, caller: Caller) -> None:
        try:
            self._write_disk(server_id, caller)
        except BootFailure as exc:
            self._fail(server_id, exc.code, str(exc))
        except Exception as exc:  # a job must never leave a server in BUILD
            log.exception("booting server %s failed", server_id)
            self._fail(server_id, 500, f"Build of instance {server_id} aborted: {exc}")

    def _write_disk(self, server_id: str, caller: Caller) -> None:
        with self.engine.connect() as conn:
            server = store.get(conn, server_id)
        if server is None or server["status"] != "BUILD":
            return
        flavor = flavors.get(server["flavor_id"])
        assert flavor is not None
        image_id = server["image_id"]
        image = self.images.get(caller, image_id)
        if image is None:
            raise BootFailure(404, f"Image {image_id} could not be found.")
        if image["status"] != "active" or (not image["data_key"] and image["size"] != 0):
            raise BootFailure(400, f"Image {image_id} is not active (its status is {image['status']}).")
        if image["min_disk"] and image["min_disk"] > flavor.disk:
            raise BootFailure(
                400,
                f"Flavor's disk is too small for requested image: flavor {flavor.id} has {flavor.disk} GiB, "
                f"the image needs at least {image['min_disk']} GiB (min_disk).",
            )
        if image["min_ram"] and image["min_ram"] > flavor.ram:
            raise BootFailure(400, f"Flavor's memory is too small for requested image: flavor {flavor.id} has "
                              f"{flavor.ram} MiB, the image needs {image['min_ram']} MiB (min_ram).")  # fmt: skip
        size_hint = image["virtual_size"] or image["size"] or 0
        if size_hint > flavor.disk_bytes:
            raise BootFailure(400, f"Flavor's disk is too small for requested image: flavor {flavor.id} has "
                              f"{flavor.disk_bytes} bytes, the image's disk is {size_hint} bytes.")  # fmt: skip
        self._ensure_disks()
        writer = self.objects.writer(DISK_ACCOUNT, DISK_CONTAINER, server_id)
        try:
            if image["data_key"]:
                with self.images.open_disk(image) as disk:
                    if disk.virtual_size > flavor.disk_bytes:
                        raise BootFailure(400, f"Flavor's disk is too small for requested image: flavor "
                                          f"{flavor.id} has {flavor.disk_bytes} bytes, the image's disk is "
                                          f"{disk.virtual_size} bytes.")  # fmt: skip
                    copy_disk(disk, writer)
        except BaseException:
            writer.abort()
            raise
        info = writer.commit()
        with self.engine.begin() as conn:
            done = store.update(
                conn, server_id, {"status": "BUILD"}, status="ACTIVE", task_state=None, disk_size=info.size,
                launched_at=now(), updated_at=now(),
            )  # fmt: skip
        if not done:  # deleted while it was building
            self._drop_disk(server_id)

    def _fail(self, server_id: str, code: int, message: str) -> None:
        fault = {"code": code, "message": message, "created": iso(now())}
        with self.engine.begin() as conn:
            store.update(conn, server_id, {"status": "BUILD"}, status="ERROR", task_state=None, fault=fault,
                         updated_at=now())  # fmt: skip

    def _snapshot(self, server_id: str, image_id: str, caller: Caller) -> None:
        try:
            with self.engine.begin() as conn:
                store.update(conn, server_id, {"snapshot_image_id": image_id}, task_state="image_uploading",
                             updated_at=now())  # fmt: skip
            with self.objects.open(DISK_ACCOUNT, DISK_CONTAINER, server_id) as reader:
                self.images.store_disk(caller, image_id, formats.RawDisk(reader))
        except Exception:
            log.exception("imaging server %s into image %s failed", server_id, image_id)
            self.images.delete(caller, image_id)
        finally:
            with self.engine.begin() as conn:
                store.update(conn, server_id, {"snapshot_image_id": image_id}, task_state=None,
                             snapshot_image_id=None, updated_at=now())  # fmt: skip

    def _delete(self, server_id: str) -> None:
        try:
            self._drop_disk(server_id)
        finally:
            with self.engine.begin() as conn:
                server = store.get(conn, server_id)
                if server is not None and server["status"] == "DELETED":
                    store.delete(conn, server_id)

    def _drop_disk(self, server_id: str) -> None:
        try:
            self.objects.delete_object(DISK_ACCOUNT, DISK_CONTAINER, server_id)
        except NoSuchObject:
            pass
        except Exception:
            log.exception("removing the disk of server %s failed", server_id)

    def _ensure_disks(self) -> None:
        if not self._disks_ready:
            self.objects.ensure_container(DISK_ACCOUNT, DISK_CONTAINER)
            self._disks_ready = True

    # --- helpers ---------------------------------------------------------------------------------

    def _visible(self, conn: Any, caller: Caller, server_id: str) -> Record:
        server = store.get(conn, server_id) if _is_uuid(server_id) else None
        if server is None or (server["tenant_id"] != caller.tenant_id and not caller.is_admin):
            raise NotFound(f"Instance {server_id} could not be found.")
        return server


class BootFailure(Exception):
    """The server cannot boot: its fault says why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def copy_disk(disk: Any, writer: Any) -> None:
    """Write ``disk``'s virtual content to ``writer``: data extents are read, gaps become holes."""
    pos = 0
    for offset, length in disk.extents():
        if offset + length <= pos:
            continue
        if offset > pos:
            writer.skip(offset - pos)
            pos = offset
        end = offset + length
        while pos < end:
            n = min(COPY_CHUNK, end - pos)
            writer.write(disk.read(pos, n))
            pos += n
    if disk.virtual_size > pos:
        writer.skip(disk.virtual_size - pos)


def owner_caller(server: Record) -> Caller:
    """The server's owner as a caller, for jobs run by a worker (no token at hand)."""
    return Caller(server["user_id"], "", server["tenant_id"], frozenset({"member"}), 0.0)


def task_caller(task: Record) -> Caller:
    """The user who asked for a compute job, as a member of the owning tenant."""
    return Caller(task.get("user_id") or "", "", task["owner"], frozenset({"member"}), 0.0)


def check_can_write(caller: Caller) -> None:
    if not caller.can_write:
        raise Forbidden("Policy doesn't allow this operation to be performed (read-only role).")


def check_not_deleted(server: Record) -> None:
    if server["status"] == "DELETED":
        raise Conflict(f"Cannot change instance {server['id']} while it is being deleted.")


def vm_state(status: str) -> str:
    return {"BUILD": "building", "ACTIVE": "active", "ERROR": "error", "DELETED": "deleted"}.get(status, "active")


def _state_phrase(server: Record, state: str) -> str:
    if server["task_state"]:
        return f"task_state {state}"
    return f"vm_state {state}"


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))
