"""Thin httpx clients of one region's APIs as one user: the tests' own raw-HTTP view.

Real clients (swift, glance, openstack, openstacksdk, rclone, curl) are driven through ``run.py``;
these are for the exact status codes, headers and bodies a test asserts.
"""

from __future__ import annotations

import os

import httpx

from tests.support.cloud import Cloud
from tests.support.wait import wait_for

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"
NEWEST_COMPUTE = "2.47"


def storage_url(cloud: Cloud, user: str = "demo", region: str = "ORD") -> str:
    """The Swift storage URL of ``user``'s account in ``region``."""
    return f"{cloud.regions[region]}/v1/AUTH_{cloud.tenant(user)}"


class Glance:
    """``httpx`` against ``<region>/image`` as one user; JSON errors unless told otherwise."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        self.url = cloud.regions[region] + "/image"
        self.token = cloud.token(user)
        self.tenant = cloud.tenant(user)
        self.http = httpx.Client(
            base_url=self.url, headers={"X-Auth-Token": self.token, "Accept": "application/json"}, timeout=120
        )

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def head(self, path: str, **kw) -> httpx.Response:
        return self.http.head(path, **kw)

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

    def image(self, image_id: str) -> dict:
        response = self.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def ids(self, query: str = "") -> list[str]:
        response = self.get("/v2/images" + query)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["images"]]


class Swift:
    """``httpx`` against one region's object storage as one user (paths relative to the account)."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        self.url = storage_url(cloud, user, region)
        self.token = cloud.token(user)
        self.http = httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token}, timeout=120)

    def put(self, path: str, data: bytes = b"", **kw) -> httpx.Response:
        """PUT that must succeed (201 or 202)."""
        response = self.http.put(path, content=data, **kw)
        assert response.status_code in (201, 202), response.text
        return response

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def head(self, path: str, **kw) -> httpx.Response:
        return self.http.head(path, **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return self.http.delete(path, **kw)

    def names(self, container: str) -> list[str]:
        """The object names of a container ([] when it is empty or missing)."""
        response = self.get(f"/{container}", params={"format": "json"})
        if response.status_code in (204, 404):
            return []
        assert response.status_code == 200, response.text
        return [o["name"] for o in response.json()]


class Compute:
    """A tenant's view of one region's compute API; ``compute(method, path)`` with a microversion."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        self.region = cloud.regions[region]
        self.token = cloud.token(user)
        self.tenant = cloud.tenant(user)
        self.base = f"{self.region}/compute/v2.1/{self.tenant}"

    def __call__(self, method: str, path: str, version: str = NEWEST_COMPUTE, **kwargs) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": f"compute {version}"}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(method, self.base + path, headers=headers, timeout=60, **kwargs)

    def boot(self, image_id: str, name: str = "Slave Database 3", flavor: str = "1", **extra) -> dict:
        body = {"server": {"name": name, "imageRef": image_id, "flavorRef": flavor, "networks": "auto", **extra}}
        response = self("POST", "/servers", json=body)
        assert response.status_code == 202, response.text
        return response.json()["server"]

    def server(self, server_id: str) -> dict:
        response = self("GET", f"/servers/{server_id}")
        assert response.status_code == 200, response.text
        return response.json()["server"]

    def wait_status(self, server_id: str, *statuses: str, timeout: float = 120) -> dict:
        return wait_for(
            lambda: (s := self.server(server_id))["status"] in statuses and s,
            f"server {server_id} is {' or '.join(statuses)}",
            timeout=timeout,
        )


def swift_env(cloud: Cloud, user: str = "demo", region: str = "ORD") -> dict[str, str]:
    """Environment for python-swiftclient's `swift` CLI: Keystone v3 password auth, as an operator sets it."""
    entry = cloud.credentials()[user]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    env.update(
        OS_AUTH_URL=cloud.identity_url + "/v3", OS_IDENTITY_API_VERSION="3", OS_USERNAME=user,
        OS_PASSWORD=entry["password"], OS_PROJECT_ID=entry["tenant_id"], OS_USER_DOMAIN_NAME="Default",
        OS_PROJECT_DOMAIN_NAME="Default", OS_REGION_NAME=region,
    )  # fmt: skip
    return env


def rclone_env(cloud: Cloud, name: str = "ORD", user: str = "demo", region: str = "ORD") -> dict[str, str]:
    """An rclone remote called ``name`` configured only through RCLONE_CONFIG_* variables."""
    entry = cloud.credentials()[user]
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_", "RCLONE_"))}
    env.update({
        prefix + "TYPE": "swift", prefix + "AUTH": cloud.identity_url + "/v3", prefix + "USER": user,
        prefix + "KEY": entry["password"], prefix + "DOMAIN": "Default", prefix + "TENANT_ID": entry["tenant_id"],
        prefix + "TENANT_DOMAIN": "Default", prefix + "REGION": region, "RCLONE_CONFIG": os.devnull,
    })  # fmt: skip
    return env
