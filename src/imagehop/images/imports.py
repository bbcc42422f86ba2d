"""Interoperable image import: stage, then ``POST /import`` with a method; an ``api_image_import`` task.

Methods: ``glance-direct`` (the bytes staged with ``PUT /stage``), ``web-download`` (fetched over
HTTP(S) by ``web.py``: public addresses only unless the operator sets
``web_download_allow_private``), ``glance-download`` (from another region of this
deployment, with the caller's token, verified by size, ``os_hash_value`` and content digest), and
``copy-image`` (one store per region: as a one-store Glance answers it, admins only and nothing to
copy, so no task). The import is an ``api_image_import`` row of
the region's ``tasks`` table, run by the region's task worker (``tasks/worker.py``); the image
holds the lock property ``os_glance_import_task`` meanwhile. A glance-download reads the remote image
as the caller, from whichever worker process runs the task: no token is stored. The task records who
asked and until when their token was valid; the worker has identity issue a short-lived token for
that user and project (refused if the user was deleted or disabled, or that time has passed), uses
it for the download only, and revokes it at once: a one-use delegation, as Keystone's trusts are.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from imagehop import formats, wire
from imagehop.formats import delta as delta_stream
from imagehop.identity.caller import Caller
from imagehop.identity.catalog import Catalog
from imagehop.identity.service import IdentityError, IdentityService
from imagehop.images import delta, recovery, store, web
from imagehop.images.data import ACCOUNT
from imagehop.images.errors import BadRequest, Conflict, Forbidden, ImageError, NotFound, TooLarge
from imagehop.images.service import CONTENT_DIGEST, ImageService, can_read_blocks, check_can_write, now
from imagehop.objects.store import NoSuchObject
from imagehop.streams import BodyTooLarge, pump

log = logging.getLogger(__name__)

Record = dict[str, Any]
METHODS = ("glance-direct", "web-download", "glance-download", "copy-image", "imagehop-delta")
LOCK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
STORE_ID = "local"  # the one store of a region (GET /v2/info/stores)
STAGING = "staging"
MAX_DOWNLOAD = 1 << 40
TASK_TTL = timedelta(hours=48)
# Properties glance-download copies from the remote image (Glance's default extra_properties).
DOWNLOAD_PROPERTIES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
CHUNK = 1 << 20


DELEGATION_LIFETIME = 3600.0  # seconds, at most, of the token a worker gets for a glance-download


class Importer:
    def __init__(self, service: ImageService, identity: IdentityService, allow_private: bool | None = None) -> None:
        self.service = service
        self.identity = identity
        self.catalog: Catalog = identity.catalog
        self.allow_private = allow_private

    # --- stage -------------------------------------------------------------------------------------

    async def stage(
        self, caller: Caller, image_id: str, chunks: AsyncIterator[bytes], size: int | None, length: int | None = None
    ) -> None:
        """Keep the bytes for a later glance-direct import: queued → uploading (back to queued on failure).
        ``length`` is the request's Content-Length (what the staging quota counts before the bytes)."""
        writer = await run_in_threadpool(self.begin_stage, caller, image_id, length)
        beat = recovery.heartbeat(self.service.engine, image_id)

        def write(piece: bytes) -> None:
            writer.write(piece)
            beat()

        ok = False
        try:
            try:
                await pump(chunks, write, limit=MAX_DOWNLOAD)
            except BodyTooLarge:
                raise TooLarge(f"Image exceeds the limit of {MAX_DOWNLOAD} bytes.") from None
            if size is not None and writer.size != size:
                raise BadRequest(f"Image size mismatch: x-openstack-image-size said {size}, got {writer.size} bytes.")
            ok = True
        finally:
            await run_in_threadpool(self.end_stage, image_id, writer, ok)

    def begin_stage(self, caller: Caller, image_id: str, length: int | None = None) -> Any:
        with self.service.engine.begin() as conn:
            self.service._writable(conn, caller, image_id)
            deltas = {"image_stage_total": (length or 0) // (1 << 20), "image_count_uploading": 1}
            self.service.check_quota(conn, caller, deltas)
            if not store.set_status(conn, image_id, ["queued"], "uploading", now()):
                raise Conflict(f"Image {image_id} is not queued: it cannot be staged.")
            recovery.begin(conn, image_id)
        self.service.data.objects.ensure_container(ACCOUNT, STAGING)
        return self.service.data.objects.writer(ACCOUNT, STAGING, image_id)

    def end_stage(self, image_id: str, writer: Any, ok: bool) -> None:
        """Keep the staged bytes (if safe) or drop them and go back to queued; the write has ended."""
        refusal: BadRequest | None = None
        if ok:
            info = writer.commit()
            with self.service.engine.connect() as conn:
                image = store.get(conn, image_id)
            try:
                if info.file_id and image is not None:
                    self.service.data.check_safe(STAGING, image_id, image["disk_format"])
                with self.service.engine.begin() as conn:
                    # As Glance, the image shows the staged size until the import measures it again.
                    conn.execute(store.images.update().where(store.images.c.id == image_id).values(size=info.size))
                    recovery.end(conn, image_id)
                return
            except BadRequest as exc:
                self.service.data.objects.delete_object(ACCOUNT, STAGING, image_id)
                refusal = exc
        else:
            writer.abort()
        with self.service.engine.begin() as conn:
            store.set_status(conn, image_id, ["uploading"], "queued", now())
            recovery.end(conn, image_id)
        if refusal is not None:
            raise refusal

    # --- import ------------------------------------------------------------------------------------

    def start(
        self, caller: Caller, image_id: str, body: Any, token: str, request_id: str, store_header: str | None = None
    ) -> str:
        """Check the request, lock the image, record the task and start it; returns the task id."""
        # Glance 33's checks, in its order and its words (glanceclient shows them).
        if body is None:
            raise BadRequest("Body expected in request.")
        if isinstance(body, dict) and "method" not in body:
            raise BadRequest("Import request requires a 'method' field.")
        method = body.get("method") if isinstance(body, dict) else None
        if isinstance(method, dict) and "name" not in method:
            raise BadRequest("Import request requires a 'name' field.")
        name = method.get("name") if isinstance(method, dict) else None
        if name not in METHODS:
            raise BadRequest(f"Unknown import method name '{name}'.")
        for flag in ("all_stores_must_succeed", "all_stores"):
            if flag in body and not isinstance(body[flag], bool):
                raise BadRequest(f"'{flag}' must be boolean value only")
        stores = import_stores(body, store_header)
        if name == "web-download":
            check_uri(method.get("uri"), self.allow_private)
        base_id = None
        if name == "imagehop-delta":
            check_delta_request(method)
            base_id = method["base_image_id"]
        if name == "glance-download" and delta.BASE_KEY in method:
            check_base_spec(method[delta.BASE_KEY])
            base_id = method[delta.BASE_KEY]["image_id"]
        task_id = str(uuid.uuid4())
        moment = now()
        with self.service.engine.begin() as conn:
            image = self.service._visible(conn, caller, image_id, for_update=True)
            if name == "copy-image":
                # As a one-store multi-store Glance: its copy_image policy is for admins, and the image
                # is already in the region's one store (all_stores: nothing left to copy, and no task).
                if image["status"] != "active":
                    raise Conflict("Only images with status active can be targeted for copying")
                if not caller.is_admin:
                    raise Forbidden("You are not authorized to complete copy_image action.")
                if image["properties"].get(LOCK):
                    raise Conflict(f"Image {image_id} has active task {image['properties'][LOCK]}")
                if body.get("all_stores"):
                    return ""
                raise BadRequest(f"Image is already present at store '{STORE_ID}'")
            # Glance 33's order: the image's state and the request's fields, then the caller's rights.
            status = image["status"]
            if status == "active":
                raise Conflict("Image with status active cannot be target for import")
            if name in ("web-download", "glance-download") and status != "queued":
                raise Conflict(f"Image needs to be in 'queued' state to use '{name}' method")
            if name in ("glance-direct", "imagehop-delta") and status != "uploading":
                raise Conflict(f"Image needs to be staged before '{name}' method can be used")
            if not image["container_format"]:
                raise Conflict("'container_format' needs to be set before import")
            if not image["disk_format"]:
                raise Conflict("'disk_format' needs to be set before import")
            if name == "glance-download":
                check_download_method(method)
            check_can_write(caller, image)
            if image["properties"].get(LOCK):
                raise Conflict(f"Image {image_id} has active task {image['properties'][LOCK]}")
            if name == "imagehop-delta" and image["disk_format"] != "raw":
                raise BadRequest("imagehop-delta builds raw images: create the image with disk_format raw.")
            if base_id is not None:
                base = store.get(conn, base_id) if _is_uuid(base_id) else None
                if base is None or not can_read_blocks(conn, caller, base):
                    raise NotFound(f"No base image found with ID {str(base_id)[:40]} (only your own images, or ones "
                                   "shared with you, can be a base).")  # fmt: skip
            if name in ("web-download", "glance-download"):
                self.service.check_quota(conn, caller, {"image_size_total": 0})
            if name == "imagehop-delta":  # a small stage may build a large image: the size quota counts
                self.service.check_quota(conn, caller, {"image_size_total": 0})
            if name != "copy-image":
                store.set_status(conn, image_id, [status], "importing", moment)
            store.set_property(conn, image_id, LOCK, task_id)
            store.set_property(conn, image_id, IMPORTING, ",".join(stores))
            store.set_property(conn, image_id, FAILED, image["properties"].get(FAILED, ""))
            store.insert_task(conn, {
                "id": task_id, "image_id": image_id, "type": "api_image_import", "status": "pending",
                "owner": caller.tenant_id, "user_id": caller.user_id, "request_id": request_id,
                "input": {"image_id": image_id, "import_req": body, "backend": ["local"],
                          **({"delegation": {"until": caller.token_expires_at}} if name == "glance-download" else {})},
                "result": None,
                "message": "", "created_at": moment, "updated_at": moment, "expires_at": None,
            })  # fmt: skip
        return task_id

    def run_task(self, task: Record) -> Record:
        """Run a claimed ``api_image_import`` task; the worker records the outcome.

        Returns the result (with ``message``); raises ``ImportFailed`` after putting the image back.
        """
        task_id, image_id = task["id"], task["image_id"]
        method = task["input"]["import_req"]["method"]
        name = method["name"]
        extra: dict[str, Any] = {}
        try:
            if name == "glance-direct":
                self._store(task_id, image_id, self._staged(image_id), expected=None)
                self.service.data.objects.delete_object(ACCOUNT, STAGING, image_id)
            elif name == "web-download":
                self._store(task_id, image_id, web.fetch(method["uri"], self.allow_private), expected=None)
            elif name == "imagehop-delta":
                extra["x-imagehop-delta"] = self._store_staged_delta(task_id, image_id, method)
                self.service.data.objects.delete_object(ACCOUNT, STAGING, image_id)
            elif name == "glance-download":
                token = self._delegated_token(task)
                try:
                    remote, base, headers = self._remote(image_id, method, token)
                    with httpx.Client(headers=headers, timeout=60) as client:
                        spec = method.get(delta.BASE_KEY) if delta_pull_possible(remote) else None
                        disk = None if spec else sparse_remote_disk(client, base, remote, headers)
                        if spec:
                            extra["x-imagehop-delta"] = self._store_delta_pull(
                                task_id, image_id, client, base, remote, spec, headers
                            )
                        elif disk is not None:
                            try:
                                self._store_disk(task_id, image_id, disk, remote)
                            finally:
                                disk.source.close()
                        else:
                            self._store(task_id, image_id, remote_chunks(client, base), expected=remote)
                finally:
                    with contextlib.suppress(IdentityError):
                        self.identity.revoke(token)
        except Exception as exc:
            self.recover(task, reset=name != "copy-image")
            raise ImportFailed(public_message(exc, name)) from exc
        self.recover(task, reset=False, failed=False)
        message = "Copied to store 'local'" if name == "copy-image" else f"Copied {self._size(image_id) >> 20} MiB"
        return {"image_id": image_id, "message": message, **extra}

    def _size(self, image_id: str) -> int:
        """The stored size: as Glance, a finished import's task message is its last ``Copied N MiB``."""
        with self.service.engine.connect() as conn:
            image = store.get(conn, image_id)
        return int((image or {}).get("size") or 0)

    def _delegated_token(self, task: Record) -> str:
        """A short-lived token of the task's user and project, while the caller's own would have lasted."""
        until = float((task["input"].get("delegation") or {}).get("until") or 0)
        try:
            return self.identity.issue_delegated_token(
                task.get("user_id") or "", task["owner"], min(until, time.time() + DELEGATION_LIFETIME)
            )
        except IdentityError as exc:
            raise ImageError(f"Cannot act for the user who started the import: {exc.message}") from None

    def recover(self, task: Record, reset: bool = True, failed: bool = True) -> None:
        """Unlock the task's image; with ``reset`` an unfinished image goes back to ``queued``. As
        Glance reports it, the store leaves ``os_glance_importing_to_stores`` and, when the import
        ``failed``, joins ``os_glance_failed_import``."""
        image_id = task["image_id"]
        with self.service.engine.begin() as conn:
            if reset:
                store.set_status(conn, image_id, ["importing", "saving"], "queued", now())
            store.set_property(conn, image_id, LOCK, None)
            image = store.get(conn, image_id)
            if image is None:
                return
            importing = [s for s in image["properties"].get(IMPORTING, "").split(",") if s]
            done = [s for s in importing if s == STORE_ID] or [STORE_ID]
            store.set_property(conn, image_id, IMPORTING, ",".join(s for s in importing if s not in done))
            previous = [s for s in image["properties"].get(FAILED, "").split(",") if s]
            now_failed = previous + [s for s in done if s not in previous] if failed else previous
            store.set_property(conn, image_id, FAILED, ",".join(now_failed))

    def _staged(self, image_id: str) -> Iterator[bytes]:
        with self.service.data.objects.open(ACCOUNT, STAGING, image_id) as reader:
            yield from reader.iter_range(0, reader.info.size)

    def _start_saving(self, image_id: str) -> Record:
        with self.service.engine.begin() as conn:
            image = store.get(conn, image_id)
            if image is None:
                raise ImageError("The image was deleted during the import.")
            if not store.set_status(conn, image_id, ["importing"], "saving", now()):
                raise ImageError(f"Image status changed to {image['status']} during the import.")
        return image

    def _store_disk(self, task_id: str, image_id: str, disk: formats.VirtualDisk, remote: Record) -> None:
        """A sparse pull: only the remote image's data is fetched, and since equal content digest and
        size mean identical raw bytes, its checksum and os_hash_value are taken, not recomputed."""
        self._start_saving(image_id)
        stored = self.service.data.write_disk(
            image_id, disk, Progress(self.service, task_id), known_hashes=(remote["checksum"], remote["os_hash_value"])
        )
        if (stored.content_digest, stored.size) != (remote[CONTENT_DIGEST], remote["size"]):
            self.service.data.delete(stored.key)
            raise ImageError("The downloaded image does not match the remote one: content digest differs.")
        self.service._finish_upload(image_id, stored)

    def _store(self, task_id: str, image_id: str, chunks: Iterator[bytes], expected: Record | None) -> None:
        """Write the bytes as the image's data, with progress in the task's message."""
        image = self._start_saving(image_id)
        writer = self.service.data.writer(image_id, image["disk_format"])
        progress = Progress(self.service, task_id)
        try:
            for chunk in chunks:
                writer.write(chunk)
                if writer.size > MAX_DOWNLOAD:
                    raise ImageError(f"The image is larger than {MAX_DOWNLOAD} bytes.")
                progress(writer.size)
            stored = writer.commit()
        except BaseException:
            writer.abort()
            raise
        if expected is not None:
            for what, mine, theirs in (
                ("size", stored.size, expected.get("size")),
                ("os_hash_value", stored.sha512, expected.get("os_hash_value")),
                ("content digest", stored.content_digest, expected.get(CONTENT_DIGEST)),
            ):
                if theirs is not None and mine != theirs:
                    self.service.data.delete(stored.key)
                    raise ImageError(f"The downloaded image does not match the remote one: {what} differs.")
        self.service._finish_upload(image_id, stored)

    def _store_delta_pull(
        self,
        task_id: str,
        image_id: str,
        client: httpx.Client,
        url: str,
        remote: Record,
        spec: dict,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        """An incremental glance-download: blocks the local base holds are copied from it, the others
        fetched from the remote region with Range requests (each checked against the remote block map,
        a corrupted one fetched once more). Without a usable base every block is fetched."""
        items = remote_block_map(client, url, remote)
        with self.service.engine.connect() as conn:
            base, why = delta.base_problem(conn, str(spec["image_id"]), str(spec["content_digest"]))
        self._start_saving(image_id)
        size = int(remote["size"])
        wanted = [(i, sha) for i, sha in items if base is None or sha not in base.by_hash]
        ranges = RangeSource(url + "/file", size, _runs([i for i, _ in wanted], size), headers)
        spare = RangeSource(url + "/file", size, [(0, size)], headers)

        def fetch(index: int, length: int, sha: bytes | None = None) -> bytes:
            block = ranges.pread(index * delta.BLOCK, length) if sha is not None else b""
            if sha is None or not delta.matches(block, sha):  # corrupted on the way, or a fallback: once more
                block = spare.pread(index * delta.BLOCK, length)
            return block

        def records() -> Iterator[tuple[int, bytes, bytes | None]]:
            for index, sha in items:
                if base is not None and sha in base.by_hash:
                    yield index, sha, None
                else:
                    yield index, sha, fetch(index, min(delta.BLOCK, size - index * delta.BLOCK), sha)

        try:
            built = delta.build(
                self.service.data, image_id, size, records(), base, (remote["checksum"], remote["os_hash_value"]),
                fallback=lambda index, length: fetch(index, length), progress=Progress(self.service, task_id),
            )  # fmt: skip
        finally:
            ranges.close()
            spare.close()
        built.fallback = built.fallback or why
        if (built.stored.content_digest, built.stored.size) != (remote[CONTENT_DIGEST], remote["size"]):
            self.service.data.delete(built.stored.key)
            raise ImageError("The downloaded image does not match the remote one: content digest differs.")
        self.service._finish_upload(image_id, built.stored)
        return built.result(str(spec["image_id"]))

    def _store_staged_delta(self, task_id: str, image_id: str, method: dict) -> dict[str, Any]:
        """imagehop-delta: the staged delta stream and the local base make the image, verified by the
        requested content digest; a base that is gone or changed fails it (the client sends in full)."""
        with self.service.engine.connect() as conn:
            base, why = delta.base_problem(conn, str(method["base_image_id"]), str(method["base_content_digest"]))
        if base is None:
            raise ImageError(f"Cannot build on the base: {why}. Send the image in full.")
        self._start_saving(image_id)
        size = int(method["size"])
        with self.service.data.objects.open(ACCOUNT, STAGING, image_id) as reader:
            records = delta_stream.decode(reader.iter_range(0, reader.info.size), size)
            built = delta.build(
                self.service.data, image_id, size, records, base, (method["checksum"], method["os_hash_value"]),
                progress=Progress(self.service, task_id),
            )  # fmt: skip
        if built.stored.content_digest != method["content_digest"]:
            self.service.data.delete(built.stored.key)
            raise ImageError(
                f"The image built from the base and the blocks sent has content digest {built.stored.content_digest}, "
                f"not {method['content_digest']}: it was not kept."
            )
        self.service._finish_upload(image_id, built.stored)
        return built.result(base.image_id)

    def _remote(self, image_id: str, method: dict, token: str) -> tuple[Record, str, dict[str, str]]:
        region = str(method["glance_region"])
        endpoint = next((r.url for r in self.catalog.regions if r.name.lower() == region.lower()), None)
        if endpoint is None:
            raise ImageError(f"No image endpoint for region {region} in the service catalog.")
        base = f"{endpoint}/image/v2/images/{method['glance_image_id']}"
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        response = httpx.get(base, headers=headers, timeout=60)
        if response.status_code != 200:
            raise ImageError(f"Remote image {method['glance_image_id']} in {region}: HTTP {response.status_code}.")
        remote = response.json()
        if remote.get("status") != "active":
            raise ImageError(f"Source image status should be active instead of {remote.get('status')}")
        updates = {k: v for k, v in remote.items() if isinstance(v, str) and k.startswith(DOWNLOAD_PROPERTIES)}
        with self.service.engine.begin() as conn:
            for key, value in updates.items():
                store.set_property(conn, image_id, key, value)
            conn.execute(
                store.images.update().where(store.images.c.id == image_id)
                .values(disk_format=remote.get("disk_format"), container_format=remote.get("container_format"))
            )  # fmt: skip

        return remote, base, headers


def delta_pull_possible(remote: Record) -> bool:
    """A remote image an incremental pull can build: raw, with its hashes and content digest."""
    needed = ("checksum", "os_hash_value", CONTENT_DIGEST, "size")
    return (
        remote.get("disk_format") == "raw"
        and remote.get("os_hash_algo") == "sha512"
        and all(remote.get(key) for key in needed)
    )


def remote_block_map(client: httpx.Client, url: str, remote: Record) -> list[tuple[int, bytes]]:
    """The remote image's whole block map (every page), checked against its content digest."""
    items: list[tuple[int, bytes]] = []
    path = url + "/x-imagehop-blocks"
    head: dict[str, Any] = {}
    while path:
        response = client.get(path)
        if response.status_code != 200:
            raise ImageError(f"Remote image block map: HTTP {response.status_code}.")
        head = response.json()
        items += [(int(index), bytes.fromhex(sha)) for index, sha in head["blocks"]]
        after = head.get("next")
        path = url.split("/v2/images/", 1)[0] + after if after else ""
    if head.get("content_digest") != remote[CONTENT_DIGEST]:
        raise ImageError("The remote image's block map does not match its content digest.")
    try:
        formats.BlockMap.from_items(int(head["virtual_size"]), items, remote[CONTENT_DIGEST]).check()
    except ValueError as exc:
        raise ImageError(f"The remote image's block map is not valid: {exc}.") from None
    return items


def _runs(indexes: list[int], size: int) -> list[tuple[int, int]]:
    """(offset, length) byte ranges of consecutive blocks, for one Range request each."""
    out: list[tuple[int, int]] = []
    for index in indexes:
        offset = index * delta.BLOCK
        length = min(delta.BLOCK, size - offset)
        if out and out[-1][0] + out[-1][1] == offset:
            out[-1] = (out[-1][0], out[-1][1] + length)
        else:
            out.append((offset, length))
    return out


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def check_base_spec(spec: Any) -> None:
    if not (isinstance(spec, dict) and isinstance(spec.get("image_id"), str)
            and isinstance(spec.get("content_digest"), str)):  # fmt: skip
        raise BadRequest(f"'{delta.BASE_KEY}' must be an object with image_id and content_digest.")


def check_delta_request(method: dict) -> None:
    """The fields an imagehop-delta import needs, with their types."""
    strings = ("base_image_id", "base_content_digest", "content_digest", "checksum", "os_hash_value")
    missing = [k for k in strings if not isinstance(method.get(k), str) or not method.get(k)]
    size = method.get("size")
    if missing or not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_DOWNLOAD:
        raise BadRequest(
            "imagehop-delta needs base_image_id, base_content_digest, content_digest, checksum, os_hash_value "
            f"(strings) and size (a positive integer): {', '.join(missing) or 'size'} missing or invalid."
        )


def remote_chunks(client: httpx.Client, base: str) -> Iterator[bytes]:
    """All of a remote image's bytes, zeros included (any Glance)."""
    with client.stream("GET", base + "/file") as stream:
        if stream.status_code != 200:
            raise ImageError(f"Remote image data: HTTP {stream.status_code}.")
        yield from stream.iter_bytes(CHUNK)


def sparse_remote_disk(
    client: httpx.Client, base: str, remote: Record, headers: dict[str, str]
) -> formats.VirtualDisk | None:
    """The remote image as a disk read with Range requests over its data extents only, when the
    remote region is an imagehop one that publishes them and the image is raw with its hashes and
    content digest; otherwise None (the caller downloads every byte)."""
    needed = ("checksum", "os_hash_value", CONTENT_DIGEST, "size")
    if (
        remote.get("disk_format") != "raw"
        or remote.get("os_hash_algo") != "sha512"
        or not all(remote.get(key) for key in needed)
    ):
        return None
    response = client.get(base + "/x-imagehop-extents")
    if response.status_code != 200:
        return None
    info = response.json()
    extents = [(int(offset), int(length)) for offset, length in info["extents"]]
    return formats.RawDisk(RangeSource(base + "/file", int(remote["size"]), extents, headers))


class RangeSource:
    """A remote image's bytes through HTTP Range requests: one streamed request per data extent,
    read as the disk asks for them, straight into the disk's block buffers (``preadinto``, over
    :mod:`imagehop.wire`'s plain connections: no ``bytes`` per piece); a ``formats`` source whose
    ``extents()`` are the ones the remote region published."""

    def __init__(self, url: str, size: int, extents: list[tuple[int, int]], headers: dict[str, str]) -> None:
        self.url, self.size, self._extents, self.headers = url, size, extents, headers
        self._pool = wire.Connections(url, httpx.create_ssl_context, limit=1)
        self._conn: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._position = -1  # the offset of the next byte the open response gives
        self._stream_end = -1

    def extents(self) -> Iterator[tuple[int, int]]:
        return iter(self._extents)

    def pread(self, offset: int, length: int) -> bytes:
        buffer = bytearray(max(0, min(length, self.size - offset)))
        return bytes(buffer[: self.preadinto(offset, memoryview(buffer))])

    def preadinto(self, offset: int, view: memoryview) -> int:
        end = min(offset + len(view), self.size)
        if offset >= end:
            return 0
        if self._response is None or offset != self._position:
            self._open(offset)
        done = 0
        while done < end - offset:
            if self._position >= self._stream_end:  # past this extent: stream the next stretch
                self._open(self._position)
            assert self._response is not None
            want = min(end - offset - done, self._stream_end - self._position)
            try:
                n = self._response.readinto(view[done : done + want])
            except (OSError, http.client.HTTPException) as exc:
                raise ImageError(f"Remote image data: {exc.__class__.__name__}: {exc}") from exc
            if n <= 0:
                raise ImageError("Remote image data: the connection ended early.")
            done += n
            self._position += n
        return done

    def _stop(self, offset: int) -> int:
        """Where a stream from ``offset`` should end: its extent's end, or the next extent's start."""
        for start, length in self._extents:
            if start <= offset < start + length:
                return start + length
            if start > offset:
                return start
        return self.size

    def _open(self, offset: int) -> None:
        """Stream from ``offset`` to the end of its stretch (data extent or hole)."""
        self._finish()
        stop = min(self._stop(offset), self.size)
        headers = {**self.headers, "Range": f"bytes={offset}-{stop - 1}"}
        try:
            self._conn, response = wire.send_head(self._pool, "GET", self.url, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise ImageError(f"Remote image data: {exc.__class__.__name__}: {exc}") from exc
        assert response is not None
        self._response = response
        whole = response.status == 200 and offset == 0  # a range of the whole image answers 200
        if response.status != 206 and not whole:
            self._finish()
            raise ImageError(f"Remote image data: HTTP {response.status} for a range request.")
        self._position, self._stream_end = offset, stop

    def _finish(self) -> None:
        """Done with the open response: its connection is kept when the whole body was read."""
        if self._conn is not None:
            response = self._response
            done = response is not None and response.isclosed() and not response.will_close
            self._pool.give(self._conn, done)
        self._conn = self._response = None

    def close(self) -> None:
        self._finish()
        self._pool.close()


def check_store(store_id: Any) -> str:
    """A store identifier of this region, or 409 as Glance answers for an unknown one."""
    if store_id != STORE_ID:
        raise Conflict(f"Store for identifier {str(store_id)[:100]} not found")
    return store_id


def import_stores(body: dict, header: str | None) -> list[str]:
    """The stores an import writes to (``stores``, ``all_stores`` or ``X-Image-Meta-Store``): one."""
    if body.get("all_stores"):
        if body.get("stores"):
            raise BadRequest("All_stores parameter can't be used with x-image-meta-store header or stores parameter")
        return [STORE_ID]
    stores = body.get("stores")
    if stores is None:
        return [check_store(header.strip())] if header else [STORE_ID]
    if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
        raise BadRequest("'stores' must be a list of store identifiers.")
    return list(dict.fromkeys(check_store(s) for s in stores)) or [STORE_ID]


def public_message(exc: Exception, method: str) -> str:
    """What a failed import tells its owner: our own errors as they are; anything else (a storage or
    database error) by kind only, since its text may name internal accounts, paths or addresses."""
    if isinstance(exc, ImageError | formats.DiskFormatError):
        return str(exc) or exc.__class__.__name__
    if isinstance(exc, NoSuchObject) and method == "glance-direct":
        return "The staged data is gone; stage the image again."
    if isinstance(exc, httpx.HTTPError):
        return f"The download failed: {exc.__class__.__name__}."
    log.warning("import %s failed", method, exc_info=exc)
    return f"The import failed inside the service ({exc.__class__.__name__}); see the service log."


class ImportFailed(Exception):
    """An interoperable import failed; the image is unlocked and back to ``queued``."""


class Progress:
    """Sets the task message to ``Copied N MiB``: every 64 MiB, or every half second once a MiB
    more is done (what the console's live copy progress reads), whichever comes first."""

    def __init__(self, service: ImageService, task_id: str, every: float = 0.5) -> None:
        self.service, self.task_id, self.reported, self.every = service, task_id, 0, every
        self._last = time.monotonic()

    def __call__(self, done: int) -> None:
        step = done - self.reported
        moment = time.monotonic()
        if step >= 64 << 20 or (step >= 1 << 20 and moment - self._last >= self.every):
            self.reported, self._last = done, moment
            with self.service.engine.begin() as conn:
                store.update_task(conn, self.task_id, message=f"Copied {done >> 20} MiB", updated_at=now())


def check_download_method(method: dict) -> None:
    """glance-download's fields, checked (and worded) as Glance 33 checks them; as Glance, a missing
    ``glance_service_interface`` is recorded as ``public``."""
    if "glance_region" not in method:
        raise BadRequest("'glance_region' needs to be set for glance-download import method")
    if "glance_image_id" not in method:
        raise BadRequest("'glance_image_id' needs to be set for glance-download import method")
    try:
        uuid.UUID(str(method["glance_image_id"]))
    except ValueError:
        raise BadRequest(f"Remote image id does not look like a UUID: {method['glance_image_id']}") from None
    method.setdefault("glance_service_interface", "public")


def public_input(task_input: Any) -> Any:
    """A task's input as the API shows it: without the glance-download delegation record (internal)."""
    if isinstance(task_input, dict) and "delegation" in task_input:
        return {k: v for k, v in task_input.items() if k != "delegation"}
    return task_input


def check_uri(uri: Any, allow: bool | None = None) -> None:
    """A web-download URI must be http(s) and, unless allowed, resolve to public addresses only."""
    web.check(uri, allow)
