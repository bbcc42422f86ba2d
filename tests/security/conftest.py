"""Two tenants (and an admin) against one real server, for the security tests."""

from __future__ import annotations

import httpx

from tests.conftest import Cloud


class Client:
    """``httpx`` as one user against one cloud: identity, and a region's image/compute/object URLs."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        self.cloud = cloud
        self.user = user
        self.region = cloud.regions[region]
        self.token = cloud.token(user)
        self.tenant = cloud.credentials()[user]["tenant_id"]
        self.http = httpx.Client(headers={"X-Auth-Token": self.token, "Accept": "application/json"}, timeout=60)

    @property
    def image(self) -> str:
        return self.region + "/image/v2"

    @property
    def compute(self) -> str:
        return self.region + "/compute/v2.1"

    @property
    def swift(self) -> str:
        return f"{self.region}/v1/AUTH_{self.tenant}"

    def new_image(self, **body) -> dict:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        response = self.http.post(self.image + "/images", json=body)
        assert response.status_code == 201, response.text
        return response.json()
