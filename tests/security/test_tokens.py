"""Identity: who may revoke or inspect a token (on both databases), and password checks that cannot
starve the server (issue 10, items 4 and 8; on SQLite only: the limits live in the process, and the
database plays no part in them)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import httpx
import pytest

from tests.support import Cloud, imagehop
from tests.support.hostile import server_memory
from tests.support.wait import wait_for


def v3_password(user: str, password: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}}}}  # fmt: skip


def v3_token(cloud: Cloud, user: str) -> str:
    return cloud.token(user)


def is_valid(cloud: Cloud, token: str) -> bool:
    response = httpx.get(cloud.regions["ORD"] + "/image/v2/images", headers={"X-Auth-Token": token})
    return response.status_code == 200


def test_v3_a_user_cannot_revoke_or_inspect_another_users_token(cloud: Cloud) -> None:
    url = cloud.identity_url + "/v3/auth/tokens"
    demo, alt = v3_token(cloud, "demo"), v3_token(cloud, "alt")
    for method in ("DELETE", "GET", "HEAD"):
        response = httpx.request(method, url, headers={"X-Auth-Token": demo, "X-Subject-Token": alt})
        assert response.status_code == 403, (method, response.text)
    assert is_valid(cloud, alt)
    # Its owner and an admin may.
    assert httpx.get(url, headers={"X-Auth-Token": alt, "X-Subject-Token": alt}).status_code == 200
    admin = v3_token(cloud, "admin")
    assert httpx.get(url, headers={"X-Auth-Token": admin, "X-Subject-Token": alt}).status_code == 200
    assert httpx.delete(url, headers={"X-Auth-Token": admin, "X-Subject-Token": alt}).status_code == 204
    assert not is_valid(cloud, alt)
    other = v3_token(cloud, "demo")
    assert httpx.delete(url, headers={"X-Auth-Token": demo, "X-Subject-Token": other}).status_code == 204
    assert not is_valid(cloud, other)
    assert httpx.delete(url, headers={"X-Auth-Token": demo, "X-Subject-Token": demo}).status_code == 204
    assert not is_valid(cloud, demo)


def test_v2_revocation_by_owner_or_admin_only(cloud: Cloud) -> None:
    base = cloud.identity_url + "/v2.0/tokens"
    demo, alt = v3_token(cloud, "demo"), v3_token(cloud, "alt")
    assert httpx.delete(f"{base}/{alt}", headers={"X-Auth-Token": demo}).status_code == 403
    assert httpx.get(f"{base}/{alt}", headers={"X-Auth-Token": demo}).status_code == 403
    assert is_valid(cloud, alt)
    # Rackspace's self-revocation: DELETE /v2.0/tokens/{own} and DELETE /v2.0/tokens.
    assert httpx.delete(f"{base}/{alt}", headers={"X-Auth-Token": alt}).status_code == 204
    assert not is_valid(cloud, alt)
    assert httpx.delete(base, headers={"X-Auth-Token": demo}).status_code == 204
    assert not is_valid(cloud, demo)


def test_unknown_user_and_wrong_password_answer_alike(sqlite_cloud: Cloud) -> None:
    url = sqlite_cloud.identity_url + "/v3/auth/tokens"
    wrong = httpx.post(url, json=v3_password("demo", "not-the-password"))
    unknown = httpx.post(url, json=v3_password("nobody-at-all", "not-the-password"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


@pytest.fixture
def limited_cloud(cloud_factory: Callable[..., Cloud]) -> Cloud:
    env = {"IMAGEHOP_IDENTITY_BURST_PER_ADDRESS": "8", "IMAGEHOP_IDENTITY_RATE_PER_ADDRESS": "0.2",
           "IMAGEHOP_IDENTITY_BURST_PER_USER": "3", "IMAGEHOP_IDENTITY_RATE_PER_USER": "0.1"}  # fmt: skip
    cloud = cloud_factory("limited", env=env)
    cloud.start()
    return cloud


def test_failed_logins_for_one_user_are_rate_limited_with_429(limited_cloud: Cloud) -> None:
    url = limited_cloud.identity_url + "/v3/auth/tokens"
    statuses = [httpx.post(url, json=v3_password("alt", "guess")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    refused = httpx.post(url, json=v3_password("alt", limited_cloud.credentials()["alt"]["password"]))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == 429
    # Another user from the same address is not locked out by alt's failures ...
    demo = limited_cloud.credentials()["demo"]
    issued = httpx.post(url, json=v3_password("demo", demo["password"]))
    assert issued.status_code == 201
    # ... but the address's own budget (8 attempts) runs out too; v2.0 and API keys count alike.
    v2 = limited_cloud.identity_url + "/v2.0/tokens"
    api_key = {"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "demo", "apiKey": demo["api_key"]}}}
    statuses = []
    while 429 not in statuses and len(statuses) < 20:
        statuses.append(httpx.post(v2, json=api_key).status_code)
    assert statuses[:3] == [200, 200, 200]
    assert set(statuses) == {200, 429}
    # A token-method request needs no password check and is not limited.
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": issued.headers["X-Subject-Token"]}}}}
    assert httpx.post(url, json=body).status_code == 201


def test_a_storm_of_token_requests_leaves_the_regions_serving(sqlite_cloud: Cloud) -> None:
    """1,000 concurrent token requests (right and wrong passwords): every answer is 201, 401 or 429,
    an authenticated GET meanwhile succeeds, and the server's memory stays bounded."""
    url = sqlite_cloud.identity_url + "/v3/auth/tokens"
    token = v3_token(sqlite_cloud, "demo")
    password = sqlite_cloud.credentials()["alt"]["password"]
    bodies = [v3_password("alt", password if i % 2 else "wrong") for i in range(1000)]
    limits = httpx.Limits(max_connections=200)
    with httpx.Client(limits=limits, timeout=120) as client, concurrent.futures.ThreadPoolExecutor(64) as pool:
        storm = [pool.submit(client.post, url, json=body) for body in bodies]
        gets = [
            httpx.get(sqlite_cloud.regions["ORD"] + "/image/v2/images", headers={"X-Auth-Token": token}, timeout=30)
            for _ in range(5)
        ]
        statuses = {future.result().status_code for future in storm}
    assert statuses <= {201, 401, 429}, statuses
    assert 429 in statuses
    assert [g.status_code for g in gets] == [200] * 5
    _, peak = server_memory(sqlite_cloud)
    assert peak < 300 << 20


def test_a_token_remembered_by_the_regions_stops_working_when_revoked_or_its_user_deleted(cloud_factory) -> None:  # type: ignore[no-untyped-def]
    """Regions remember a token they validated for a moment (``TOKEN_CACHE_TTL``, 2 s): a revocation
    through the same process is seen at once, a user deleted by the CLI (another process) within it."""
    cloud = cloud_factory()
    cloud.data_dir.mkdir(parents=True)
    imagehop("user", "create", "--user", "gone", "--tenant-id", "10000001", "--role", "member",
             "--password", "gone-pass", "--data-dir", str(cloud.data_dir))  # fmt: skip
    cloud.start()
    url = cloud.identity_url + "/v3/auth/tokens"

    def token(user: str, password: str) -> str:
        body = v3_password(user, password)
        body["auth"]["scope"] = {"project": {"id": "10000001"}}
        response = httpx.post(url, json=body)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    demo, gone = cloud.token("demo"), token("gone", "gone-pass")
    for _ in range(3):  # remembered now
        assert is_valid(cloud, demo) and is_valid(cloud, gone)
    revoke = httpx.delete(url, headers={"X-Auth-Token": demo, "X-Subject-Token": demo})
    assert revoke.status_code == 204
    assert not is_valid(cloud, demo)  # at once: the revocation went through this process
    for _ in range(3):  # the other token still works, and is remembered again
        assert is_valid(cloud, gone)

    imagehop("user", "delete", "gone", "--data-dir", str(cloud.data_dir))
    wait_for(lambda: not is_valid(cloud, gone), "the deleted user's token is refused", timeout=30)
    assert not is_valid(cloud, gone)
