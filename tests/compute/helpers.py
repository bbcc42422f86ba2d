"""Helpers for compute tests: images made over the image API, and polling."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

MIB = 1 << 20
NEWEST = {"OpenStack-API-Version": "compute 2.47"}


def sparse_disk(size: int = 16 * MIB) -> bytes:
    """A raw disk with data at the start and near the end, zeros between."""
    data = bytearray(size)
    data[: 3 * MIB] = os.urandom(3 * MIB)
    data[10 * MIB : 10 * MIB + 4000] = b"tail" * 1000
    return bytes(data)


def make_image(region: str, token: str, name: str, data: bytes | None = None, **attrs: Any) -> dict:
    """An image created with ``POST /image/v2/images``; with ``data``, uploaded with ``PUT .../file``."""
    headers = {"X-Auth-Token": token}
    body = {"name": name, "disk_format": "raw", "container_format": "bare", **attrs}
    response = httpx.post(f"{region}/image/v2/images", json=body, headers=headers)
    assert response.status_code == 201, response.text
    image = response.json()
    if data is not None:
        put = httpx.put(
            f"{region}/image/v2/images/{image['id']}/file",
            content=data,
            headers={**headers, "Content-Type": "application/octet-stream"},
            timeout=60,
        )
        assert put.status_code == 204, put.text
        image = get_image(region, token, image["id"])
    return image


def get_image(region: str, token: str, image_id: str) -> dict:
    response = httpx.get(f"{region}/image/v2/images/{image_id}", headers={"X-Auth-Token": token})
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(check: Callable[[], Any], timeout: float = 30, every: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(every)
