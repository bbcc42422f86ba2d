"""Boot a server from the copied image: the last step of the walkthrough, over the Compute API.

The cloud's keystoneauth1 session finds the region's ``compute`` endpoint; nothing here imports
server code, so it works against any Nova-compatible cloud.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions

from imagehop.transfer.clouds import CloudSession


class BootError(Exception):
    """The server could not be created or did not become ACTIVE."""


class ComputeClient:
    def __init__(self, cloud: CloudSession, region: str) -> None:
        self.cloud = cloud
        self.region = region
        self.base = cloud.endpoint("compute", region)

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        try:
            response = self.cloud.session.request(
                self.base + path, method, raise_exc=False, headers={"Accept": "application/json"}, **kwargs
            )
        except ks_exceptions.ConnectFailure as exc:
            raise BootError(f"cannot reach the compute service of {self.region} at {self.base}: {exc}") from exc
        if response.status_code not in ok:
            raise BootError(f"{method} {path} in {self.region} answered {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else {}

    def flavor_id(self, flavor: str) -> str:
        """A flavor by id or by name."""
        flavors = self._call("GET", "/flavors/detail").get("flavors", [])
        for candidate in flavors:
            if flavor in (candidate.get("id"), candidate.get("name")):
                return str(candidate["id"])
        names = ", ".join(f"{f.get('id')} ({f.get('name')})" for f in flavors)
        raise BootError(f"no flavor {flavor!r} in {self.region}; there are: {names}")

    def boot(
        self,
        name: str,
        image_id: str,
        flavor: str,
        *,
        timeout: float = 600.0,
        interval: float = 1.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Create the server and wait until it is ACTIVE; raises with the server's fault on ERROR."""
        body = {"server": {"name": name, "imageRef": image_id, "flavorRef": self.flavor_id(flavor), "networks": "none"}}
        server = self._call("POST", "/servers", ok=(202,), json=body)["server"]
        deadline = time.monotonic() + timeout
        while True:
            current = self._call("GET", f"/servers/{server['id']}")["server"]
            if on_update:
                on_update(current)
            status = str(current.get("status", "")).upper()
            if status == "ACTIVE":
                return current
            if status == "ERROR":
                fault = current.get("fault") or {}
                raise BootError(
                    f"server {server['id']} ended in ERROR: {fault.get('message') or fault or 'no fault given'}"
                )
            if time.monotonic() > deadline:
                raise BootError(f"server {server['id']} is still {status} after {timeout:.0f} s")
            sleep(interval)
