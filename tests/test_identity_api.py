"""Identity against a real `imagehop serve` process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import Cloud, curl, imagehop, wait_for


def v3_body(user: str, password: str, project_id: str | None = None) -> dict:
    body: dict = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            }
        }
    }
    if project_id:
        body["auth"]["scope"] = {"project": {"id": project_id}}
    return body


def test_discovery_documents(cloud: Cloud) -> None:
    root = httpx.get(cloud.identity_url + "/", headers={"Accept": "application/json"})
    assert root.status_code == 300
    values = root.json()["versions"]["values"]
    assert [v["id"] for v in values] == ["v3.14", "v2.0"]
    assert values[0]["links"][0]["href"] == cloud.identity_url + "/v3/"
    assert root.headers["location"] == cloud.identity_url + "/v3/"
    for path, version in (("/v3", "v3.14"), ("/v2.0", "v2.0")):
        response = httpx.get(cloud.identity_url + path)
        assert response.status_code == 200
        assert response.json()["version"]["id"] == version


def test_v2_password_and_rackspace_api_key(cloud: Cloud) -> None:
    demo = cloud.credentials()["demo"]
    for credentials in (
        {"passwordCredentials": {"username": "demo", "password": demo["password"]}},
        {"RAX-KSKEY:apiKeyCredentials": {"username": "demo", "apiKey": demo["api_key"]}},
    ):
        response = httpx.post(cloud.identity_url + "/v2.0/tokens", json={"auth": credentials})
        assert response.status_code == 200, response.text
        access = response.json()["access"]
        assert access["token"]["tenant"]["id"] == "10000001"
        assert access["token"]["expires"].endswith("Z")
        assert access["user"]["name"] == "demo"
        assert access["user"]["RAX-AUTH:defaultRegion"] == "ORD"
        catalog = {entry["type"]: entry for entry in access["serviceCatalog"]}
        assert catalog["image"]["name"] == "cloudImages"
        assert catalog["object-store"]["name"] == "cloudFiles"
        assert catalog["compute"]["name"] == "cloudServersOpenStack"
        files = {e["region"]: e for e in catalog["object-store"]["endpoints"]}
        assert files["IAD"]["publicURL"] == cloud.regions["IAD"] + "/v1/AUTH_10000001"
        assert files["IAD"]["tenantId"] == "10000001"
        images = {e["region"]: e["publicURL"] for e in catalog["image"]["endpoints"]}
        assert images == {name: url + "/image" for name, url in cloud.regions.items()}
        compute = {e["region"]: e["publicURL"] for e in catalog["compute"]["endpoints"]}
        assert compute["ORD"] == cloud.regions["ORD"] + "/compute/v2.1/10000001"


def accepted_by_regions(cloud: Cloud, token: str) -> list[int]:
    """What ORD's image list and IAD's object storage answer to ``token``: calls that need a valid one."""
    tenant = cloud.tenant("demo")
    return [
        httpx.get(cloud.regions["ORD"] + "/image/v2/images", headers={"X-Auth-Token": token}).status_code,
        httpx.get(f"{cloud.regions['IAD']}/v1/AUTH_{tenant}", headers={"X-Auth-Token": token}).status_code,
    ]


def test_curl_api_key_login_as_in_the_article(cloud: Cloud) -> None:
    demo = cloud.credentials()["demo"]
    body = json.dumps({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "demo", "apiKey": demo["api_key"]}}})
    response = curl("-X", "POST", cloud.identity_url + "/v2.0/tokens", "-H", "Content-Type: application/json",
                    "-d", body)  # fmt: skip
    assert response.status == 200
    token = response.json()["access"]["token"]["id"]
    # The token opens the regions (IAD's account of demo is empty: 204); one character off, it does not.
    assert accepted_by_regions(cloud, token) == [200, 204]
    assert accepted_by_regions(cloud, token[:-1] + ("0" if token[-1] != "0" else "1")) == [401, 401]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("{not json", 400, "Malformed"),
        ('{"auth": {}}', 400, "Expecting exactly one"),
        ('{"auth": {"passwordCredentials": {"username": "demo"}}}', 400, "password"),
        ('{"auth": {"passwordCredentials": {"username": "nobody", "password": "x"}}}', 401, "invalid"),
        ('{"auth": {"passwordCredentials": {"username": "demo", "password": "wrong"}}}', 401, "invalid"),
        ('{"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "demo", "apiKey": "wrong"}}}', 401, "api key"),
        ('{"auth": {"tenantId": "1", "tenantName": "1", "token": {"id": "x"}}}', 400, "not both"),
        ('{"auth": {"token": {"id": "0000"}}}', 401, "not valid"),
    ],
)
def test_v2_bad_input(cloud: Cloud, body: str, status: int, words: str) -> None:
    response = httpx.post(
        cloud.identity_url + "/v2.0/tokens", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status
    assert words.lower() in error["message"].lower()


def test_v2_wrong_tenant_is_refused(cloud: Cloud) -> None:
    demo = cloud.credentials()["demo"]
    body = {"auth": {"passwordCredentials": {"username": "demo", "password": demo["password"]}, "tenantId": "10000002"}}
    response = httpx.post(cloud.identity_url + "/v2.0/tokens", json=body)
    assert response.status_code == 401
    assert "no access" in response.json()["error"]["message"]


def test_v3_token_lifecycle(cloud: Cloud) -> None:
    creds = cloud.credentials()
    response = httpx.post(
        cloud.identity_url + "/v3/auth/tokens", json=v3_body("demo", creds["demo"]["password"], "10000001")
    )
    assert response.status_code == 201
    token = response.headers["X-Subject-Token"]
    body = response.json()["token"]
    assert body["project"]["id"] == "10000001"
    assert [r["name"] for r in body["roles"]] == ["member"]
    endpoints = [e for entry in body["catalog"] for e in entry["endpoints"] if entry["type"] == "object-store"]
    assert {(e["region"], e["region_id"], e["interface"]) for e in endpoints} >= {("ORD", "ORD", "public")}

    # A token validates itself, and an admin validates anyone's.
    admin = cloud.token("admin")
    for caller in (token, admin):
        check = httpx.get(
            cloud.identity_url + "/v3/auth/tokens", headers={"X-Auth-Token": caller, "X-Subject-Token": token}
        )
        assert check.status_code == 200
        assert check.headers["X-Subject-Token"] == token
        assert check.json()["token"]["user"]["name"] == "demo"

    # HEAD validates without a body; the subject header is required.
    url = cloud.identity_url + "/v3/auth/tokens"
    head = httpx.head(url, headers={"X-Auth-Token": admin, "X-Subject-Token": token})
    assert (head.status_code, head.headers["X-Subject-Token"], head.content) == (200, token, b"")
    assert httpx.get(url, headers={"X-Auth-Token": admin}).status_code == 400

    # Regions accept it ...
    assert accepted_by_regions(cloud, token) == [200, 204]

    # ... until it is revoked: then identity answers 404 for it as a subject, 401 as a caller.
    revoke = httpx.delete(url, headers={"X-Auth-Token": admin, "X-Subject-Token": token})
    assert revoke.status_code == 204
    assert httpx.get(url, headers={"X-Auth-Token": admin, "X-Subject-Token": token}).status_code == 404
    assert httpx.head(url, headers={"X-Auth-Token": admin, "X-Subject-Token": token}).status_code == 404
    as_caller = httpx.get(cloud.identity_url + "/v3/auth/catalog", headers={"X-Auth-Token": token})
    assert as_caller.status_code == 401
    assert "revoked" in as_caller.json()["error"]["message"]
    assert accepted_by_regions(cloud, token) == [401, 401]


def test_v3_auth_catalog_projects_and_domains(cloud: Cloud) -> None:
    token = cloud.token("alt")
    headers = {"X-Auth-Token": token}
    catalog = httpx.get(cloud.identity_url + "/v3/auth/catalog", headers=headers)
    assert catalog.status_code == 200
    by_type = {entry["type"]: entry for entry in catalog.json()["catalog"]}
    assert {"identity", "image", "object-store", "compute"} <= set(by_type)
    storage = {e["region"]: e["url"] for e in by_type["object-store"]["endpoints"] if e["interface"] == "public"}
    assert storage == {name: f"{url}/v1/AUTH_10000002" for name, url in cloud.regions.items()}

    projects = httpx.get(cloud.identity_url + "/v3/auth/projects", headers=headers)
    assert projects.status_code == 200
    assert [(p["id"], p["domain_id"], p["enabled"]) for p in projects.json()["projects"]] == [
        ("10000002", "default", True)
    ]
    domains = httpx.get(cloud.identity_url + "/v3/auth/domains", headers=headers)
    assert domains.status_code == 200
    # The domains the user holds a role on: none, as Keystone 30 answers (roles are on projects).
    assert domains.json()["domains"] == []

    for path in ("/v3/auth/catalog", "/v3/auth/projects", "/v3/auth/domains"):
        for bad in ({}, {"X-Auth-Token": "not-a-token"}):
            response = httpx.get(cloud.identity_url + path, headers=bad)
            assert response.status_code == 401, (path, bad, response.text)
            assert response.json()["error"]["code"] == 401


def test_v3_token_method_and_scope_by_name(cloud: Cloud) -> None:
    first = cloud.token("alt")
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": first}},
            "scope": {"project": {"name": "10000002", "domain": {"name": "Default"}}},
        }
    }
    response = httpx.post(cloud.identity_url + "/v3/auth/tokens?nocatalog", json=body)
    assert response.status_code == 201
    assert response.json()["token"]["project"]["id"] == "10000002"
    assert "catalog" not in response.json()["token"]


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda b: b["auth"].pop("identity"), 400),
        (lambda b: b["auth"]["identity"].update(methods="password"), 400),
        (lambda b: b["auth"]["identity"]["password"]["user"].pop("domain"), 400),
        (lambda b: b["auth"]["identity"]["password"]["user"].update(domain={"id": "other"}), 401),
        (lambda b: b["auth"]["identity"]["password"]["user"].update(password="wrong"), 401),
        (lambda b: b["auth"]["identity"]["password"]["user"].update(name="nobody"), 401),
        (lambda b: b["auth"].update(scope={"project": {"id": "10000002"}}), 401),
        (lambda b: b["auth"].update(scope={"domain": {"id": "default"}}), 401),
    ],
)
def test_v3_bad_input(cloud: Cloud, mutate, status: int) -> None:  # type: ignore[no-untyped-def]
    body = v3_body("demo", cloud.credentials()["demo"]["password"], "10000001")
    mutate(body)
    response = httpx.post(cloud.identity_url + "/v3/auth/tokens", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == status
    assert "X-Subject-Token" not in response.headers


def test_v2_token_validation_needs_admin(cloud: Cloud) -> None:
    demo_token = cloud.token("demo")
    admin = cloud.token("admin")
    url = f"{cloud.identity_url}/v2.0/tokens/{demo_token}"
    assert httpx.get(url, headers={"X-Auth-Token": demo_token}).status_code == 403
    ok = httpx.get(url, headers={"X-Auth-Token": admin})
    assert ok.status_code == 200
    assert ok.json()["access"]["token"]["tenant"]["id"] == "10000001"
    assert httpx.get(url + "?belongsTo=10000002", headers={"X-Auth-Token": admin}).status_code == 404
    assert httpx.get(f"{cloud.identity_url}/v2.0/tokens/bogus", headers={"X-Auth-Token": admin}).status_code == 404


def test_v2_tenants_endpoints_head_and_delete_of_a_token(cloud: Cloud) -> None:
    demo_token, admin = cloud.token("demo"), cloud.token("admin")
    identity = cloud.identity_url
    tenants = httpx.get(f"{identity}/v2.0/tenants", headers={"X-Auth-Token": demo_token})
    assert tenants.status_code == 200
    assert [(t["id"], t["enabled"]) for t in tenants.json()["tenants"]] == [("10000001", True)]
    assert httpx.get(f"{identity}/v2.0/tenants").status_code == 401
    assert httpx.get(f"{identity}/v2.0/tenants", headers={"X-Auth-Token": "nope"}).status_code == 401

    endpoints_url = f"{identity}/v2.0/tokens/{demo_token}/endpoints"
    endpoints = httpx.get(endpoints_url, headers={"X-Auth-Token": admin})
    assert endpoints.status_code == 200
    storage = {e["region"]: e["publicURL"] for e in endpoints.json()["endpoints"] if e["type"] == "object-store"}
    assert storage == {name: f"{url}/v1/AUTH_10000001" for name, url in cloud.regions.items()}
    assert httpx.get(endpoints_url, headers={"X-Auth-Token": demo_token}).status_code == 403
    assert httpx.get(f"{identity}/v2.0/tokens/bogus/endpoints", headers={"X-Auth-Token": admin}).status_code == 404

    url = f"{identity}/v2.0/tokens/{demo_token}"
    head = httpx.head(url, headers={"X-Auth-Token": admin})
    assert (head.status_code, head.content) == (200, b"")
    assert httpx.head(url + "?belongsTo=10000002", headers={"X-Auth-Token": admin}).status_code == 404
    assert httpx.head(url, headers={"X-Auth-Token": demo_token}).status_code == 403

    # Another user may not revoke it, an admin may; afterwards the token opens nothing.
    assert httpx.delete(url, headers={"X-Auth-Token": cloud.token("alt")}).status_code == 403
    assert accepted_by_regions(cloud, demo_token) == [200, 204]
    assert httpx.delete(url, headers={"X-Auth-Token": admin}).status_code == 204
    assert httpx.get(url, headers={"X-Auth-Token": admin}).status_code == 404
    assert httpx.head(url, headers={"X-Auth-Token": admin}).status_code == 404
    assert accepted_by_regions(cloud, demo_token) == [401, 401]


def test_regions_require_a_valid_token(cloud: Cloud) -> None:
    protected = [cloud.regions["ORD"] + "/image/v2/images", cloud.regions["IAD"] + "/v1/AUTH_10000001"]
    for url in protected:
        for headers in ({}, {"X-Auth-Token": "not-a-token"}):
            response = httpx.get(url, headers={"Accept": "application/json", **headers})
            assert response.status_code == 401, (url, response.text)
    # With a valid token: the image list (200), and demo's IAD account, which holds no container (204).
    assert accepted_by_regions(cloud, cloud.token("demo")) == [200, 204]
    # Version documents need no token.
    assert httpx.get(cloud.regions["ORD"] + "/image/").status_code == 300
    missing = httpx.get(cloud.regions["ORD"] + "/nowhere")
    assert missing.status_code == 404
    assert "image API" in missing.json()["error"]["message"]


def test_expired_token_is_refused(cloud_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    short = cloud_factory("short", backend, regions=("ORD",), env={"IMAGEHOP_TOKEN_LIFETIME": "1"})
    short.start()
    token = short.token("demo")
    catalog = short.identity_url + "/v3/auth/catalog"
    # A lifetime of 1 s: within a moment (no sleep of ours) the token is refused, and as expired.
    refused = wait_for(
        lambda: (r := httpx.get(catalog, headers={"X-Auth-Token": token})).status_code == 401 and r,
        "the 1-second token is refused",
        timeout=30,
    )
    assert "expired" in refused.json()["error"]["message"]


def test_restart_keeps_users_and_credentials(cloud_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    running = cloud_factory("restart", backend)
    running.start()
    before = running.credentials()
    imagehop("user", "create", "--user", "viewer", "--tenant-id", "10000001", "--role", "reader",
             "--password", "s3cret-pass", "--data-dir", str(running.data_dir),
             *(["--config", str(running.config_file)] if running.config_file else []))  # fmt: skip
    assert running.stop() == 0

    running.start()
    after = running.credentials()
    assert {k: after[k] for k in before} == before
    assert after["viewer"]["roles"] == ["reader"]
    # The old password still works after the restart, for the built-in and the added user.
    for user, password in (("demo", before["demo"]["password"]), ("viewer", "s3cret-pass")):
        response = httpx.post(running.identity_url + "/v3/auth/tokens", json=v3_body(user, password))
        assert response.status_code == 201
        assert response.json()["token"]["project"]["id"] == "10000001"
    viewer_roles = response.json()["token"]["roles"]
    assert [r["name"] for r in viewer_roles] == ["reader"]


def test_a_matched_secret_is_remembered_and_nothing_else_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret that matched is accepted again without scrypt (the swift CLI logs in once per thread);
    a wrong one always costs scrypt and fails; a changed password is not accepted from memory."""
    import hashlib

    from imagehop.identity import hashing

    stored = hashing.hash_secret("right horse")
    calls = []
    real_scrypt = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **kw: calls.append(1) or real_scrypt(*a, **kw))
    assert hashing.verify_secret("right horse", stored) and len(calls) == 1
    assert hashing.verify_secret("right horse", stored) and len(calls) == 1  # from memory
    assert not hashing.verify_secret("wrong horse", stored) and len(calls) == 2
    assert not hashing.verify_secret("wrong horse", stored) and len(calls) == 3  # never remembered
    changed = hashing.hash_secret("new horse")
    calls.clear()
    assert not hashing.verify_secret("right horse", changed) and len(calls) == 1  # a scrypt against the new hash
    assert not hashing.verify_secret("right horse", None)  # an unknown user: the dummy hash's work, no match
    monkeypatch.setattr(hashing, "REMEMBER", -1.0)  # remembered from now on for no time at all
    fresh = hashing.hash_secret("other horse")
    assert hashing.verify_secret("other horse", fresh)
    calls.clear()
    assert hashing.verify_secret("other horse", fresh) and len(calls) == 1


def test_repeated_log_ins_and_a_wrong_password_between_them(cloud: Cloud) -> None:
    password = cloud.credentials()["demo"]["password"]
    url = cloud.identity_url + "/v3/auth/tokens"
    statuses = [httpx.post(url, json=v3_body("demo", pw)).status_code for pw in [password, password, "x" + password,
                                                                              password]]  # fmt: skip
    assert statuses == [201, 201, 401, 201]
