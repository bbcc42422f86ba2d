"""Bounded request bodies and safe JSON on every JSON endpoint (issue 10, items 7 and 10).

On SQLite only: a refused body never reaches the database.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import Cloud
from tests.support.hostile import Tenant, send_chunked, server_memory

DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture(scope="module")
def demo(sqlite_cloud: Cloud) -> Tenant:
    return Tenant(sqlite_cloud, "demo")


PATCH_JSON = "application/openstack-images-v2.1-json-patch"


def json_endpoints(cloud: Cloud, demo: Tenant) -> list[tuple[str, str, str]]:
    """(method, URL, content type) of every kind of JSON endpoint."""
    image = demo.new_image()
    demo.http.put(demo.swift + "/manifests")
    plain = "application/json"
    return [
        ("POST", cloud.identity_url + "/v3/auth/tokens", plain),
        ("POST", cloud.identity_url + "/v2.0/tokens", plain),
        ("POST", demo.image + "/images", plain),
        ("PATCH", demo.image + f"/images/{image['id']}", PATCH_JSON),
        ("POST", demo.image + f"/images/{image['id']}/import", plain),
        ("POST", demo.image + f"/images/{image['id']}/members", plain),
        ("POST", demo.image + "/tasks", plain),
        ("POST", demo.compute + "/servers", plain),
        ("POST", demo.compute + f"/{demo.tenant}/servers", plain),
        ("PUT", demo.swift + "/manifests/slo?multipart-manifest=put", plain),
    ]


def test_oversized_bodies_stop_at_the_limit_with_413(sqlite_cloud: Cloud, demo: Tenant) -> None:
    """A 64 MiB chunked body (no Content-Length) is refused as soon as it passes the limit (8 MiB at most)."""
    _, before = server_memory(sqlite_cloud)
    for method, url, media in json_endpoints(sqlite_cloud, demo):
        headers = {"X-Auth-Token": demo.token, "Content-Type": media}
        status, sent = send_chunked(url, method, headers, total=64 << 20)
        assert status == 413, (method, url, status)
        assert sent < 32 << 20, (method, url, sent)  # the server answered long before the end
    _, after = server_memory(sqlite_cloud)
    assert after - before < 48 << 20


def test_declared_oversized_body_is_refused_before_reading(sqlite_cloud: Cloud, demo: Tenant) -> None:
    for method, url, media in json_endpoints(sqlite_cloud, demo):
        if "multipart-manifest" in url:
            continue  # Swift's manifest limit is 8 MiB
        body = b"{" + b" " * (200 << 10) + b"}"
        response = demo.http.request(method, url, content=body, headers={"Content-Type": media})
        assert response.status_code == 413, (method, url, response.text)


@pytest.mark.parametrize("body", [DEEP, '{"a":' * 200 + "1" + "}" * 200, '{"a": NaN}', '{"a": -Infinity}', b"\xff\xfe"])
def test_hostile_json_is_a_400_everywhere(sqlite_cloud: Cloud, demo: Tenant, body: str | bytes) -> None:
    for method, url, media in json_endpoints(sqlite_cloud, demo):
        response = demo.http.request(method, url, content=body, headers={"Content-Type": media})
        assert response.status_code == 400, (method, url, response.status_code, response.text[:200])


def test_a_task_with_nan_in_its_input_is_never_stored(sqlite_cloud: Cloud, demo: Tenant) -> None:
    """Before the fix such a task was created and then every GET of it (and of the list) was a 500."""
    before = demo.http.get(demo.image + "/tasks").json()["tasks"]
    body = '{"type": "import", "input": {"import_from": "c/o", "x": NaN}}'
    response = demo.http.post(demo.image + "/tasks", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    listing = demo.http.get(demo.image + "/tasks")
    assert listing.status_code == 200
    assert listing.json()["tasks"] == before


def test_bodies_within_the_limits_still_work(sqlite_cloud: Cloud, demo: Tenant) -> None:
    nested = {"a": {"b": {"c": {"d": "e"}}}}
    task = demo.http.post(demo.image + "/tasks", json={"type": "import", "input": {"import_from": "c/o", "n": nested}})
    assert task.status_code == 201, task.text
    shown = demo.http.get(demo.image + f"/tasks/{task.json()['id']}")
    assert shown.json()["input"]["n"] == nested
    creds = sqlite_cloud.credentials()["demo"]
    token = httpx.post(
        sqlite_cloud.identity_url + "/v2.0/tokens",
        content=json.dumps({"auth": {"passwordCredentials": {"username": "demo", "password": creds["password"]}}}),
        headers={"Content-Type": "application/json"},
    )
    assert token.status_code == 200
