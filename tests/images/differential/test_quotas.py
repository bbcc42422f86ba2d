"""Per-project quotas against a Glance 33 with Keystone's unified limits (``use_keystone_limits``):
``/v2/info/usage`` and the 413s of create, upload, stage and import, at the same limits on both sides.

The Glance is one more region of the session's peer (``QUO``), started here with oslo.limit reading
registered limits of the image service from Keystone; imagehop is a cloud with the same limits in
``[images]``. Each run (SQLite, PostgreSQL) uses new projects, since usage is counted per project.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.images.differential.sides import OCTET, Side, Sides, glance_side, imagehop_side
from tests.peers.openstack import SERVICE_PASSWORD, OpenStack
from tests.support import BACKENDS, make_cloud, wait_for

LIMITS = {"image_count_total": 3, "image_size_total": 1, "image_stage_total": 1, "image_count_uploading": 1}
MiB = 1 << 20


@pytest.fixture(scope="module")
def quota_glance(real_openstack: OpenStack) -> Iterator[tuple[OpenStack, str]]:
    """A Glance region enforcing Keystone's registered limits of the image service."""
    region = "QUO"
    openstack = real_openstack
    glance_user = openstack._lookup("users", "glance")
    reader = openstack._role_id("reader")
    openstack.api("PUT", f"/v3/system/users/{glance_user}/roles/{reader}")
    existing = openstack.api("GET", "/v3/regions").json()["regions"]
    if region not in {r["id"] for r in existing}:
        openstack.api("POST", "/v3/regions", json={"region": {"id": region}})
    limits = [{"service_id": openstack._image_service, "region_id": region, "resource_name": name,
               "default_limit": value} for name, value in LIMITS.items()]  # fmt: skip
    openstack.api("POST", "/v3/registered_limits", json={"registered_limits": limits})
    extra = {
        "DEFAULT": {"use_keystone_limits": True},
        "oslo_limit": {
            "auth_url": openstack.auth_url, "auth_type": "password", "username": "glance",
            "password": SERVICE_PASSWORD, "user_domain_id": "default", "system_scope": "all",
            "endpoint_service_type": "image", "endpoint_region_name": region, "endpoint_interface": "public",
        },
    }  # fmt: skip
    openstack.start_glance(region, extra)
    yield openstack, region
    openstack.stop_glance(region)


@pytest.fixture(scope="module", params=BACKENDS)
def quota_sides(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, quota_glance: tuple[OpenStack, str]
) -> Iterator[Sides]:
    openstack, region = quota_glance
    theirs = glance_side(openstack, region, f"quota-{request.param}")
    config = "[images]\nweb_download_allow_private = true\n" + "".join(f"{k} = {v}\n" for k, v in LIMITS.items())
    with make_cloud(tmp_path_factory.mktemp(f"quota-diff-{request.param}"), request.param, config=config) as cloud:
        ours = imagehop_side(cloud)
        yield Sides(ours, theirs)
        ours.client.close()
    theirs.client.close()


def usage(s: Side) -> dict:
    response = s.req("GET", "/v2/info/usage")
    return {"status": response.status_code, "usage": response.json().get("usage")}


def test_quotas(quota_sides: Sides) -> None:
    """Limits 3 images, 1 MiB stored, 1 MiB staged, 1 upload at a time; usage in whole MiB rounded down;
    an upload or a stage counts its Content-Length (in whole MiB) before its bytes arrive."""

    def case(s: Side) -> list:
        put = {"headers": {"Content-Type": OCTET}}
        out = [usage(s)]
        first = s.create(name="q1")
        out.append(s.obs(s.req("PUT", f"/v2/images/{first}/file", body=b"x" * (2 * MiB + 1), **put)))
        out.append(s.obs(s.req("PUT", f"/v2/images/{first}/file", body=b"x" * (MiB + 1000), **put)))
        out.append(usage(s))
        second = s.create(name="q2")
        out.append(s.obs(s.req("PUT", f"/v2/images/{second}/file", body=b"y" * MiB, **put)))
        out.append(s.obs(s.req("PUT", f"/v2/images/{second}/file", body=b"y" * 10, **put)))
        third = s.create(name="q3")
        out.append(s.obs(s.req("PUT", f"/v2/images/{third}/stage", body=b"z" * (2 * MiB), **put)))
        out.append(s.obs(s.req("PUT", f"/v2/images/{third}/stage", body=b"z" * 10, **put)))
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"name": "q4"})))
        out.append(usage(s))
        out.append(s.obs(s.req("POST", f"/v2/images/{third}/import", json_body={"method": {"name": "glance-direct"}})))
        out.append({"status": settled(s, third)["status"]})
        out.append(usage(s))
        s.req("DELETE", f"/v2/images/{third}").raise_for_status()
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"name": "q4", "case": s.tag}), body="status"))
        out.append(usage(s))
        out.append(usage_of(s, "other"))
        return out

    quota_sides.compare(case)


def settled(s: Side, image_id: str) -> dict:
    def check() -> dict | None:
        image = s.show(image_id)
        busy = image.get("os_glance_import_task") or image["status"] in ("importing", "saving", "uploading")
        return None if busy else image

    return wait_for(check, f"{s.name}: the import of {image_id} ends", timeout=120)


def usage_of(s: Side, who: str) -> dict:
    response = s.req("GET", "/v2/info/usage", who=who)
    return {"status": response.status_code, "usage": response.json().get("usage")}
