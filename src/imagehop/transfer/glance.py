"""A small Glance v2 client over the cloud's keystoneauth1 session: images, properties, tasks.

Works against imagehop regions and any Glance v2 cloud, including Rackspace-style ``import`` /
``export`` tasks. Polling honours ``Retry-After`` (an imagehop region's finer ``X-Imagehop-Poll-After`` when it
sends one: from 0.1 s, growing with the task's age); without either, it waits ``poll_interval`` seconds
(30 by default, as the Rackspace walkthrough asks) with jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from keystoneauth1 import exceptions as ks_exceptions

from imagehop.transfer.clouds import CloudSession

PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
FINAL_TASK_STATES = ("success", "failure")

# What an image carries that is not the user's to copy: Glance's base attributes and the values
# each region computes itself.
BASE_ATTRIBUTES = frozenset(
    {
        "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
        "os_hash_value", "owner", "size", "virtual_size", "min_ram", "min_disk", "container_format",
        "disk_format", "created_at", "updated_at", "tags", "direct_url", "locations", "self", "file",
        "schema", "stores",
    }
)  # fmt: skip
REGION_OWN_PROPERTIES = ("os_glance", "imagehop.content_digest", "image_type", "instance_uuid", "base_image_ref")


class GlanceError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def advice(status: int, text: str) -> str:
    """What a user does next after a real Glance's (or imagehop's) error status."""
    lowered = text.lower()
    if "quota" in lowered or "storage limit" in lowered:
        return "your quota there is used up: delete images you no longer need, or ask the cloud's operator for more"
    return {
        400: "the image service refused the request as malformed",
        401: "the token was refused: check the credentials of that cloud in clouds.yaml (or OS_*)",
        403: "your role in that project does not allow it: ask the cloud's operator for the member role there, "
        "or use a project where you have it",
        404: "it does not exist there, or your project cannot see it",
        409: "the image is busy or in the wrong state (another upload or import may be running): wait and run the "
        "same command again, or delete that target image",
        413: "the image is larger than that cloud accepts (image_size_cap or your storage quota): ask the operator "
        "to raise the limit",
        415: "the image service refused the content type",
        503: "the image service is unavailable: run the same command again later",
    }.get(status, "")


@dataclass(frozen=True)
class TaskPoll:
    task: dict[str, Any]
    retry_after: float | None


POLL_HEADER = "X-Imagehop-Poll-After"  # an imagehop region's finer hint: seconds, a decimal


def _poll_after(headers: Mapping[str, str]) -> float | None:
    """When the server asks to be polled again: an imagehop region's finer ``X-Imagehop-Poll-After``
    (it starts at 0.1 s and grows with the task's age, never past ``Retry-After``), else the
    standard ``Retry-After`` (whole seconds), else None."""
    retry_after = headers.get("Retry-After")
    standard = float(retry_after) if retry_after and retry_after.isdigit() else None
    try:
        finer = float(headers.get(POLL_HEADER, ""))
    except ValueError:
        finer = None
    if finer is not None and finer >= 0.05 and (standard is None or finer <= standard):
        return finer
    return standard


def user_properties(image: dict[str, Any]) -> dict[str, str]:
    """The properties a copy should carry over: everything that is not base or region-computed."""
    return {
        key: value
        for key, value in image.items()
        if key not in BASE_ATTRIBUTES and not key.startswith(REGION_OWN_PROPERTIES) and isinstance(value, str)
    }


class GlanceClient:
    def __init__(self, cloud: CloudSession, region: str | None = None, *, poll_interval: float = 30.0) -> None:
        self.cloud = cloud
        self.region = region or cloud.region_name
        endpoint = cloud.endpoint("image", self.region)
        self.base = endpoint if endpoint.rstrip("/").endswith("/v2") else endpoint.rstrip("/") + "/v2"
        self.poll_interval = poll_interval

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        try:
            response = self.cloud.session.request(
                self.base + path,
                method,
                raise_exc=False,
                headers={"Accept": "application/json", **kwargs.pop("headers", {})},
                **kwargs,
            )
        except ks_exceptions.ConnectFailure as exc:
            raise GlanceError(
                f"cannot reach the image service of {self.cloud.name}/{self.region} at {self.base}: {exc}"
            ) from exc
        if response.status_code not in ok:
            raise self.status_error(f"{method} {path}", response)
        return response

    def status_error(self, what: str, response: Any) -> GlanceError:
        """``what`` answered an error status: the status, Glance's own words, and what to do next."""
        text = _error_text(response)
        hint = advice(response.status_code, text)
        where = f"{self.cloud.name}/{self.region}"
        message = f"{what} in {where} answered {response.status_code}: {text}" + (f" ({hint})" if hint else "")
        return GlanceError(message, response.status_code)

    # --- what the service offers ---------------------------------------------------------------

    def versions(self) -> list[str]:
        """API versions from the versions document at the endpoint's root (``[]`` if it has none)."""
        root = self.base.removesuffix("/v2")
        try:
            response = self.cloud.session.request(root + "/", "GET", raise_exc=False, authenticated=False)
        except ks_exceptions.ClientException:
            return []
        try:
            return [str(v["id"]) for v in response.json().get("versions", [])]
        except (ValueError, AttributeError, KeyError, TypeError):
            return []

    def stores(self) -> list[str] | None:
        """Store ids from ``GET /v2/info/stores``; ``None`` where the cloud has no multi-store API."""
        response = self._call("GET", "/info/stores", ok=(200, 400, 403, 404, 410))
        if response.status_code != 200:
            return None
        return [str(s.get("id")) for s in response.json().get("stores", [])]

    def tasks_api(self) -> bool:
        """Whether this caller may use the Tasks API (``GET /v2/tasks`` answers 200)."""
        response = self._call("GET", "/tasks", ok=(200, 401, 403, 404), params={"limit": 1})
        return response.status_code == 200

    def image_schema(self) -> dict[str, Any]:
        return self._call("GET", "/schemas/image").json()

    # --- image data ----------------------------------------------------------------------------

    def _data_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"X-Auth-Token": str(self.cloud.session.get_token()), **(extra or {})}

    @property
    def http(self) -> httpx.Client:
        client = getattr(self, "_http", None)
        if client is None:
            client = self._http = httpx.Client(timeout=httpx.Timeout(300.0, connect=15.0), verify=self.cloud.tls)
        return client

    @contextmanager
    def download(self, image_id: str, offset: int = 0, chunk: int = 1 << 20) -> Iterator[tuple[Iterator[bytes], bool]]:
        """The image's bytes from ``offset``: ``(chunks, ranged)``; when the store ignores ``Range``
        (``ranged`` False) the chunks start at byte 0 and the caller skips."""
        url = f"{self.base}/images/{image_id}/file"
        for attempt in (1, 2):
            headers = self._data_headers({"Range": f"bytes={offset}-"} if offset else None)
            try:
                with self.http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 401 and attempt == 1:
                        self.cloud.session.invalidate()
                        continue
                    if response.status_code not in (200, 206):
                        response.read()
                        raise self.status_error(f"GET /images/{image_id}/file", response)
                    yield _coalesced(response.iter_raw(), chunk), response.status_code == 206
                    return
            except httpx.HTTPError as exc:
                raise GlanceError(
                    f"reading image {image_id} from {self.region}: {exc.__class__.__name__}: {exc}"
                ) from exc

    def put_data(
        self, image_id: str, chunks: Iterable[bytes], length: int | None, stage: bool = False,
        resume_at: int | None = None,
    ) -> None:  # fmt: skip
        """``PUT /file`` (or ``/stage`` for a glance-direct import) with a streamed body.

        ``resume_at`` (imagehop's resumable upload, only where the image schema lists
        ``imagehop.upload_kept``): the region keeps the bytes if the body stops short, and the body
        sent here starts at byte ``resume_at`` of the image (``length`` is the whole image's)."""
        path = f"/images/{image_id}/{'stage' if stage else 'file'}"
        headers = self._data_headers({"Content-Type": "application/octet-stream"})
        if resume_at is not None:
            headers["X-Imagehop-Resumable"] = "true"
            if resume_at:
                total = "*" if length is None else str(length)
                headers["Content-Range"] = f"bytes {resume_at}-{'*' if length is None else length - 1}/{total}"
                length = None if length is None else length - resume_at
        if length is not None:
            headers["Content-Length"] = str(length)
        try:
            response = self.http.put(self.base + path, content=chunks, headers=headers)
        except httpx.HTTPError as exc:
            raise GlanceError(f"PUT {path} in {self.region}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code not in (200, 201, 204):
            raise self.status_error(f"PUT {path}", response)

    # --- images --------------------------------------------------------------------------------

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/images/{image_id}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    def find_images(self, **filters: str) -> list[dict[str, Any]]:
        """Every image matching exact filters (``name``, any property), following ``next`` links."""
        images: list[dict[str, Any]] = []
        path = "/images"
        params: dict[str, Any] | None = {"limit": 100, **filters}
        while path:
            body = self._call("GET", path, params=params).json()
            images.extend(body.get("images", []))
            nxt = body.get("next")
            path, params = (nxt.removeprefix("/v2"), None) if nxt else ("", None)
        return images

    def patch(self, image_id: str, properties: dict[str, str], current: dict[str, Any]) -> dict[str, Any]:
        """Set ``properties`` (``replace`` those present, ``add`` the others, as pyrax learned to)."""
        ops = [
            {"op": "replace" if key in current else "add", "path": f"/{key}", "value": value}
            for key, value in properties.items()
            if current.get(key) != value
        ]
        if not ops:
            return current
        return self._call("PATCH", f"/images/{image_id}", json=ops, headers={"Content-Type": PATCH_MEDIA_TYPE}).json()

    def create_image(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/images", ok=(201,), json=body).json()

    def add_tag(self, image_id: str, tag: str) -> None:
        self._call("PUT", f"/images/{image_id}/tags/{tag}", ok=(204,))

    def delete_image(self, image_id: str) -> None:
        self._call("DELETE", f"/images/{image_id}", ok=(204, 404))

    def block_map(self, image_id: str) -> tuple[dict[str, Any], list[tuple[int, bytes]]] | None:
        """imagehop's ``x-imagehop-blocks`` of an image, every page: ``(header, [(index, sha256)])``;
        ``None`` where the cloud has none for it (not imagehop, not readable by us, or no map)."""
        items: list[tuple[int, bytes]] = []
        path, head = f"/images/{image_id}/x-imagehop-blocks", {}
        while path:
            response = self._call("GET", path, ok=(200, 400, 403, 404, 405))
            if response.status_code != 200:
                return None
            head = response.json()
            items += [(int(index), bytes.fromhex(sha)) for index, sha in head.get("blocks", [])]
            nxt = head.get("next")
            path = nxt.removeprefix("/v2") if nxt else ""
        head.pop("blocks", None)
        head.pop("next", None)
        return head, items

    # --- interoperable import ------------------------------------------------------------------

    def import_methods(self) -> list[str]:
        """What ``GET /v2/info/import`` advertises; ``[]`` where the cloud has no interoperable import."""
        response = self._call("GET", "/info/import", ok=(200, 403, 404))
        if response.status_code != 200:
            return []
        value = response.json().get("import-methods", {}).get("value", [])
        return [str(m) for m in value] if isinstance(value, list) else []

    def import_methods_or_none(self) -> list[str] | None:
        """Like :meth:`import_methods`, but ``None`` where ``/v2/info/import`` does not exist (old Glance)."""
        response = self._call("GET", "/info/import", ok=(200, 403, 404))
        if response.status_code != 200:
            return None
        value = response.json().get("import-methods", {}).get("value", [])
        return [str(m) for m in value] if isinstance(value, list) else []

    def start_import(self, image_id: str, method: dict[str, Any]) -> None:
        self._call("POST", f"/images/{image_id}/import", ok=(202,), json={"method": method})

    def import_task(self, image_id: str) -> TaskPoll | None:
        """The image's newest ``api_image_import`` task, with the server's ``Retry-After``."""
        response = self._call("GET", f"/images/{image_id}/tasks", ok=(200, 404))
        if response.status_code != 200:
            return None
        tasks = [t for t in response.json().get("tasks", []) if t.get("type") == "api_image_import"]
        if not tasks:
            return None
        newest = max(tasks, key=lambda t: t.get("created_at") or "")
        return TaskPoll(newest, _poll_after(response.headers))

    def next_delay(self, retry_after: float | None) -> float:
        """``Retry-After`` when the server sent one, else the poll interval with jitter."""
        if retry_after is not None:
            return retry_after
        return self.poll_interval * random.uniform(1.0, 1.2)  # never more often than asked

    # --- tasks ---------------------------------------------------------------------------------

    def create_task(self, task_type: str, task_input: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/tasks", ok=(201,), json={"type": task_type, "input": task_input}).json()

    def poll_task(self, task_id: str) -> TaskPoll:
        response = self._call("GET", f"/tasks/{task_id}")
        return TaskPoll(response.json(), _poll_after(response.headers))

    def wait_task(
        self,
        task_id: str,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the task ends; the final task (success or failure) is returned."""
        while True:
            poll = self.poll_task(task_id)
            if on_update:
                on_update(poll.task)
            if poll.task.get("status") in FINAL_TASK_STATES:
                return poll.task
            sleep(self.next_delay(poll.retry_after))


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error", {}).get("message") or body)[:300]
    return str(body)[:300]


def _coalesced(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The socket's pieces (64 KiB or so) joined into chunks of at least ``size`` bytes: one copy
    per chunk (httpx's own ``iter_raw(size)`` grows a BytesIO, several times slower)."""
    parts: list[bytes] = []
    held = 0
    for piece in pieces:
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)
