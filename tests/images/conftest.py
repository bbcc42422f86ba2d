"""Helpers for image API tests: an authenticated httpx client per user against one region."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Cloud

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"


class Glance:
    """``httpx`` against ``<region>/image`` as one user; JSON errors unless told otherwise."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        self.url = cloud.regions[region] + "/image"
        self.token = cloud.token(user)
        self.tenant = cloud.credentials()[user]["tenant_id"]
        self.http = httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token, "Accept": "application/json"})

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw) -> httpx.Response:
        return self.http.put(path, **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return self.http.delete(path, **kw)

    def patch(self, image_id: str, ops: list, media: str = V21) -> httpx.Response:
        return self.http.patch(f"/v2/images/{image_id}", json=ops, headers={"Content-Type": media})

    def create(self, **body) -> dict:
        response = self.post("/v2/images", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, image_id: str, data: bytes) -> httpx.Response:
        return self.put(
            f"/v2/images/{image_id}/file", content=data, headers={"Content-Type": "application/octet-stream"}
        )

    def ids(self, query: str = "") -> list[str]:
        response = self.get("/v2/images" + query)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["images"]]


@pytest.fixture(scope="module")
def demo(cloud: Cloud) -> Glance:
    return Glance(cloud, "demo")


@pytest.fixture(scope="module")
def alt(cloud: Cloud) -> Glance:
    return Glance(cloud, "alt")


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Glance:
    return Glance(cloud, "admin")
