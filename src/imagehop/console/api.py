"""The console's only way to the cloud: the public APIs, over HTTP, with the user's own token.

Like Horizon, the console holds no privilege of its own: identity hands out the user's token and
catalog, and every page is built from what the image, object-storage and compute endpoints of that
catalog answer to that token. So a tenant can see in the console exactly what it could see with
curl, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
COMPUTE_VERSION = {"OpenStack-API-Version": "compute 2.47", "X-OpenStack-Nova-API-Version": "2.47"}
CATALOG_TTL = 30.0  # seconds a token's catalog is reused before identity is asked again
SERVICES = ("image", "object-store", "compute")


class ApiError(Exception):
    """An API said no; ``message`` is what it said, fit to show to the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SessionEnded(ApiError):
    """The token is no longer accepted (expired or revoked): the user must log in again."""


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: float
    user: str
    tenant: str
    default_region: str


@dataclass
class Catalog:
    """The regions of the token's catalog and each one's public endpoints."""

    regions: list[str] = field(default_factory=list)
    endpoints: dict[tuple[str, str], str] = field(default_factory=dict)  # (service type, region) -> URL
    roles: list[str] = field(default_factory=list)

    def url(self, service: str, region: str) -> str:
        try:
            return self.endpoints[(service, region)].rstrip("/")
        except KeyError:
            raise ApiError(404, f"Region {region} offers no {service} service to you.") from None


def error_text(response: httpx.Response) -> str:
    """The message an OpenStack API put in its error body, whatever its shape."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if "<" in text:  # an HTML error page (Swift, webob): keep its words
            text = re.sub(r"<[^>]+>", " ", text)
        return " ".join(text.split())[:400] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return body["message"][:400]
        for value in body.values():  # {"error": {...}}, {"badRequest": {...}}, {"itemNotFound": {...}}
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"][:400]
    return str(body)[:400]


def parse_time(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Identity:
    """Log-in, catalog and log-out against the identity endpoint."""

    def __init__(self, http: httpx.AsyncClient, identity_url: str) -> None:
        self.http = http
        self.url = identity_url.rstrip("/")
        self._catalogs: dict[str, tuple[float, Catalog]] = {}

    async def _identity(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(502, f"Identity cannot be reached ({exc.__class__.__name__}): try again shortly.") from None

    async def login(self, username: str, secret: str, method: str) -> Login:
        """A token for the user's default tenant, with a password or a Rackspace API key (v2.0)."""
        if method == "api_key":
            credentials = {"RAX-KSKEY:apiKeyCredentials": {"username": username, "apiKey": secret}}
        else:
            credentials = {"passwordCredentials": {"username": username, "password": secret}}
        response = await self._identity("POST", f"{self.url}/v2.0/tokens", json={"auth": credentials})
        if response.status_code in (401, 403):
            raise ApiError(401, "The user name or the password / API key is not right.")
        if response.status_code == 429:
            raise ApiError(429, "Identity is refusing log-ins for a moment (too many attempts): try again shortly.")
        if response.status_code != 200:
            raise ApiError(response.status_code, error_text(response))
        access = response.json()["access"]
        token = access["token"]
        return Login(
            token=token["id"],
            expires_at=parse_time(token["expires"]),
            user=access["user"]["name"],
            tenant=(token.get("tenant") or {}).get("id", ""),
            default_region=access["user"].get("RAX-AUTH:defaultRegion", ""),
        )

    async def catalog(self, token: str) -> Catalog:
        """The token's catalog (v3, the token validating itself), cached for a few seconds."""
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._catalogs.get(key)
        if cached is not None and time.monotonic() - cached[0] < CATALOG_TTL:
            return cached[1]
        response = await self._identity(
            "GET", f"{self.url}/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
        )
        if response.status_code in (401, 404):
            self._catalogs.pop(key, None)
            raise SessionEnded(401, "Your session has ended: log in again.")
        if response.status_code != 200:
            raise ApiError(response.status_code, error_text(response))
        body = response.json()["token"]
        catalog = Catalog(roles=[r.get("name", "") for r in body.get("roles", [])])
        for entry in body.get("catalog", []):
            if entry.get("type") not in SERVICES:
                continue
            for endpoint in entry.get("endpoints", []):
                if endpoint.get("interface") == "public":
                    region = endpoint.get("region") or endpoint.get("region_id")
                    catalog.endpoints[(entry["type"], region)] = endpoint["url"]
                    if region not in catalog.regions:
                        catalog.regions.append(region)
        if len(self._catalogs) > 1000:
            self._catalogs.clear()
        self._catalogs[key] = (time.monotonic(), catalog)
        return catalog

    async def logout(self, token: str) -> None:
        """Revoke the token, so that a copy of the cookie is worth nothing either."""
        self._catalogs.pop(hashlib.sha256(token.encode()).hexdigest(), None)
        with contextlib.suppress(httpx.HTTPError):  # logging out still forgets the session
            await self.http.delete(
                f"{self.url}/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
            )


class Api:
    """One region's image, object-storage and compute APIs, as the user."""

    def __init__(self, http: httpx.AsyncClient, token: str, catalog: Catalog, region: str) -> None:
        self.http = http
        self.token = token
        self.catalog = catalog
        self.region = region

    def in_region(self, region: str) -> Api:
        return Api(self.http, self.token, self.catalog, region)

    @property
    def storage_url(self) -> str:
        return self.catalog.url("object-store", self.region)

    def _url(self, service: str, path: str) -> str:
        base = self.catalog.url(service, self.region)
        if service == "image":
            base += "/v2"
        return base + path

    async def call(
        self, service: str, method: str, path: str, ok: Iterable[int] = (200,), **kwargs: Any
    ) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, "Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            response = await self.http.request(method, self._url(service, path), headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(502, f"The {service} service of {self.region} cannot be reached: {exc}") from None
        if response.status_code == 401:
            raise SessionEnded(401, "Your session has ended: log in again.")
        if response.status_code not in tuple(ok):
            raise ApiError(response.status_code, error_text(response))
        return response

    async def json(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(service, method, path, **kwargs)
        return response.json() if response.content else None

    async def stream(self, service: str, path: str) -> httpx.Response:
        """A GET whose body is read later (``aiter_raw``); the caller closes it."""
        request = self.http.build_request(
            "GET", self._url(service, path), headers={"X-Auth-Token": self.token}, timeout=None
        )
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(502, f"The {service} service of {self.region} cannot be reached: {exc}") from None
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            if response.status_code == 401:
                raise SessionEnded(401, "Your session has ended: log in again.")
            raise ApiError(response.status_code, error_text(response))
        return response

    # --- images -----------------------------------------------------------------------------------

    async def images(self, **params: str | int) -> dict[str, Any]:
        return await self.json("image", "GET", "/images", params=params)

    async def all_images(self, **params: str) -> list[dict[str, Any]]:
        """Every image matching ``params``, following ``next`` links (at most 20 pages)."""
        found: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 200, **params}
        path = "/images"
        for _ in range(20):
            body = await self.json("image", "GET", path, params=query)
            found.extend(body.get("images", []))
            nxt = body.get("next")
            if not nxt:
                break
            path, query = nxt.removeprefix("/v2"), {}
        return found

    async def image(self, image_id: str) -> dict[str, Any]:
        return await self.json("image", "GET", f"/images/{quote(image_id, safe='')}")

    async def find_image(self, image_id: str) -> dict[str, Any] | None:
        response = await self.call("image", "GET", f"/images/{quote(image_id, safe='')}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    async def patch_image(self, image_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.json(
            "image", "PATCH", f"/images/{quote(image_id, safe='')}", json=ops,
            headers={"Content-Type": PATCH_MEDIA_TYPE},
        )  # fmt: skip

    async def create_image(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.json("image", "POST", "/images", json=body, ok=(201,))

    async def upload_image(self, image_id: str, chunks: AsyncIterator[bytes]) -> None:
        await self.call(
            "image", "PUT", f"/images/{quote(image_id, safe='')}/file", ok=(204,), content=chunks,
            headers={"Content-Type": "application/octet-stream"}, timeout=None,
        )  # fmt: skip

    async def delete_image(self, image_id: str) -> None:
        await self.call("image", "DELETE", f"/images/{quote(image_id, safe='')}", ok=(204,))

    async def members(self, image_id: str) -> list[dict[str, Any]]:
        body = await self.json("image", "GET", f"/images/{quote(image_id, safe='')}/members")
        return body.get("members", [])

    async def image_tasks(self, image_id: str) -> list[dict[str, Any]]:
        response = await self.call("image", "GET", f"/images/{quote(image_id, safe='')}/tasks", ok=(200, 404))
        return response.json().get("tasks", []) if response.status_code == 200 else []

    # --- compute ----------------------------------------------------------------------------------

    async def compute(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**COMPUTE_VERSION, **kwargs.pop("headers", {})}
        return await self.json("compute", method, path, headers=headers, **kwargs)

    # --- object storage ---------------------------------------------------------------------------

    async def swift(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.call("object-store", method, path, **kwargs)


def object_path(container: str, name: str = "") -> str:
    """``/container[/object]`` quoted for a Swift URL (an object name keeps its slashes)."""
    path = "/" + quote(container, safe="")
    return path + "/" + quote(name, safe="/") if name else path
