"""The read-only calls `openstack` users try first, answered as Keystone and Nova answer them.

Identity: `region list`, `endpoint list`, `service list`, `project list`, `domain list`, `user list`,
`role list`; compute: `limits show`, `availability zone list`; and a sentence saying so for what
imagehop does not implement (`keypair list`, writes to the directory, any other path). The shapes and the
default policy are compared with a real Keystone 30 (``real_openstack``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.peers.openstack import OpenStack
from tests.support.cloud import Cloud
from tests.support.run import openstack

FORBIDDEN = "You are not authorized to perform the requested action: identity:{action}."


def test_openstack_cli_identity_as_a_member_and_as_admin(cloud: Cloud) -> None:
    demo, alt, admin = cloud.env("imagehop"), cloud.env("imagehop-alt"), cloud.env("imagehop-admin")
    regions = openstack(demo, "region", "list")
    assert [r["Region"] for r in regions] == ["ORD", "IAD"]
    assert openstack(demo, "region", "show", "IAD")["region"] == "IAD"

    # project list: a member sees its own (openstack falls back to /v3/users/{id}/projects on the 403).
    assert [(p["ID"], p["Name"]) for p in openstack(demo, "project", "list")] == [("10000001", "10000001")]
    assert [p["ID"] for p in openstack(alt, "project", "list")] == ["10000002"]
    assert [p["ID"] for p in openstack(admin, "project", "list")] == ["10000000", "10000001", "10000002"]
    assert openstack(demo, "project", "show", "10000001")["name"] == "10000001"

    # Admin-only lists: the member gets Keystone's 403, with what to do instead.
    for command, action, instead in (
        (("endpoint", "list"), "list_endpoints", "`openstack catalog list` shows your endpoints"),
        (("service", "list"), "list_services", "`openstack catalog list` shows the services and your endpoints"),
        (("domain", "list"), "list_domains", "`openstack domain show default` shows yours"),
        (("user", "list"), "list_users", "`imagehop user list` on the server shows them"),
    ):
        refused = openstack(demo, *command, json_out=False, expect=1)
        assert (
            FORBIDDEN.format(action=action) + " In imagehop, as in Keystone, this needs the admin role "
            f"(the imagehop-admin cloud); {instead}." in refused.stderr
        )

    endpoints = openstack(admin, "endpoint", "list")
    public = {(e["Region"], e["Service Type"], e["URL"]) for e in endpoints if e["Interface"] == "public"}
    for name, url in cloud.regions.items():
        assert (name, "image", f"{url}/image") in public
        assert (name, "object-store", f"{url}/v1/AUTH_$(project_id)s") in public
        assert (name, "compute", f"{url}/compute/v2.1/$(project_id)s") in public
        assert (name, "identity", f"{cloud.identity_url}/v3") in public
    filtered = openstack(admin, "endpoint", "list", "--service", "image", "--region", "IAD", "--interface", "public")
    assert [e["URL"] for e in filtered] == [cloud.regions["IAD"] + "/image"]
    services = {s["Type"]: s["Name"] for s in openstack(admin, "service", "list")}
    assert services == {"image": "cloudImages", "object-store": "cloudFiles", "compute": "cloudServersOpenStack",
                        "identity": "keystone"}  # fmt: skip
    assert [d["ID"] for d in openstack(admin, "domain", "list")] == ["default"]
    assert openstack(demo, "domain", "show", "default")["name"] == "Default"
    assert {u["Name"] for u in openstack(admin, "user", "list")} >= {"demo", "alt", "admin"}
    assert {r["Name"] for r in openstack(admin, "role", "list")} >= {"admin", "member", "reader"}


def test_openstack_cli_compute_limits_and_zones(cloud: Cloud) -> None:
    from tests.support.clients import Compute
    from tests.support.images import create_image

    env = cloud.env("imagehop-alt")  # alt's tenant: no other test module's servers
    before = {row["Name"]: row["Value"] for row in openstack(env, "limits", "show", "--absolute")}
    image = create_image(cloud, "ORD", "limits", data=b"\1" * 65536, user="alt")
    compute = Compute(cloud, "alt", "ORD")
    server = compute.boot(image["id"], name="counted", flavor="3")  # m1.medium: 2 vCPUs, 4096 MiB
    compute.wait_status(server["id"], "ACTIVE")
    after = {row["Name"]: row["Value"] for row in openstack(env, "limits", "show", "--absolute")}
    assert after["total_instances_used"] == before["total_instances_used"] + 1
    assert after["total_cores_used"] == before["total_cores_used"] + 2
    assert after["total_ram_used"] == before["total_ram_used"] + 4096
    assert after["max_total_instances"] == -1 and after["max_server_meta"] == 128 and after["max_total_keypairs"] == 0
    assert compute("DELETE", f"/servers/{server['id']}").status_code == 204

    zones = openstack(env, "availability", "zone", "list", "--compute")
    assert [(z["Zone Name"], z["Zone Status"]) for z in zones] == [("nova", "available")]
    detail = openstack(cloud.env("imagehop-admin"), "availability", "zone", "list", "--compute", "--long")
    assert {(z["Zone Name"], z["Host Name"], z["Service Name"]) for z in detail} == {
        ("nova", "imagehop-ORD", "nova-compute")
    }

    refused = openstack(env, "keypair", "list", json_out=False, expect=1)
    assert "404" in refused.stderr
    assert (
        "Keypairs are not implemented in imagehop: its servers run no guest, so there is nothing to log in to. "
        "Boot without --key-name." in refused.stderr
    )


def test_what_is_not_implemented_says_so(cloud: Cloud) -> None:
    headers = {"X-Auth-Token": cloud.token("admin")}
    for method, path in (("POST", "/v3/projects"), ("DELETE", "/v3/regions/ORD"), ("PATCH", "/v3/users/x")):
        answer = httpx.request(method, cloud.identity_url + path, headers=headers, json={})
        assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD"
        assert answer.json()["error"] == {
            "code": 405, "title": "Method Not Allowed",
            "message": f"{method} {path} is not implemented in imagehop: its identity API changes nothing but "
                       "tokens. Manage users and tenants with `imagehop user create|list|delete`.",
        }  # fmt: skip
    # A path it does not know: a 404 (as Keystone's) that says it is not implemented, never a 5xx.
    answer = httpx.get(cloud.identity_url + "/v3/OS-FEDERATION/identity_providers", headers=headers)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith(
        "GET /v3/OS-FEDERATION/identity_providers is not implemented in imagehop. Its identity API serves tokens"
    )
    assert httpx.get(cloud.identity_url + "/nothing", headers=headers).status_code == 404
    base = f"{cloud.regions['ORD']}/compute/v2.1/10000000"
    answer = httpx.get(f"{base}/os-quota-sets/10000000", headers=headers)
    assert answer.status_code == 404
    assert answer.json()["itemNotFound"]["message"].startswith(
        "GET /compute/v2.1/10000000/os-quota-sets/10000000 is not implemented in imagehop. Its compute API offers"
    )
    action = f"{base}/servers/00000000-0000-0000-0000-000000000000/action"
    answer = httpx.post(action, headers=headers, json={"reboot": {"type": "SOFT"}})
    assert answer.status_code == 400
    assert answer.json()["badRequest"]["message"] == (
        "The server action reboot is not implemented in imagehop: its servers run no guest, so only createImage is "
        "offered."
    )
    answer = httpx.post(action, headers=headers, json={"fly": {}})
    assert answer.status_code == 400 and answer.json()["badRequest"]["message"] == "There is no such action: fly"
    # Missing things stay 404, in each service's own words.
    for path, message in (("/v3/regions/DFW", "Could not find region: DFW."),
                          ("/v3/projects/nope", "Could not find project: nope.")):  # fmt: skip
        answer = httpx.get(cloud.identity_url + path, headers=headers)
        assert answer.status_code == 404 and answer.json()["error"]["message"] == message


# --- against a real Keystone --------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """A JSON value with every leaf replaced by its type: what must agree between two clouds."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _entry_keys(body: dict, key: str) -> set[str]:
    entries = body[key] if isinstance(body[key], list) else [body[key]]
    assert entries, f"no {key} to compare"
    return set.union(*(set(e) for e in entries))


def test_the_directory_matches_a_real_keystone(sqlite_cloud: Cloud, real_openstack: OpenStack, tmp_path: Path) -> None:
    """Same status for a member and for an admin, same keys in every entry and in the list envelope.

    Runs on SQLite only: the comparison is about the wire, and both backends run the same code above the store.
    """
    keystone, imagehop = real_openstack, sqlite_cloud
    member = keystone.create_user()
    sides = {
        "keystone": {
            "url": keystone.auth_url,
            "member": (keystone.token(member), member.user_id, member.project_id),
            "admin": (keystone.admin_token(), keystone.admin.user_id, keystone.admin.project_id),
        },
        "imagehop": {
            "url": imagehop.identity_url,
            "member": (imagehop.token("demo"), None, "10000001"),
            "admin": (imagehop.token("admin"), None, "10000000"),
        },
    }
    for side in sides.values():
        for role in ("member", "admin"):
            token, user_id, project_id = side[role]
            if user_id is None:
                user_id = httpx.get(f"{side['url']}/v3/auth/tokens", headers={"X-Auth-Token": token,
                                    "X-Subject-Token": token}).json()["token"]["user"]["id"]  # fmt: skip
            side[role] = (token, user_id, project_id)

    paths = [
        ("/v3/regions", "regions"), ("/v3/regions/ORD", "region"), ("/v3/endpoints", "endpoints"),
        ("/v3/services", "services"), ("/v3/projects", "projects"), ("/v3/users/{user}/projects", "projects"),
        ("/v3/auth/projects", "projects"), ("/v3/projects/{project}", "project"), ("/v3/domains", "domains"),
        ("/v3/domains/default", "domain"), ("/v3/auth/domains", "domains"), ("/v3/users/{user}", "user"),
        ("/v3/users", "users"), ("/v3/roles", "roles"), ("/v3/limits", "limits"), ("/v3/auth/system", "system"),
    ]  # fmt: skip
    answers: dict[str, dict[tuple[str, str], httpx.Response]] = {}
    for name, side in sides.items():
        for role in ("member", "admin"):
            token, user_id, project_id = side[role]
            for path, _key in paths:
                url = side["url"] + path.format(user=user_id, project=project_id)
                answers.setdefault(name, {})[(role, path)] = httpx.get(url, headers={"X-Auth-Token": token})

    statuses = {name: {k: r.status_code for k, r in a.items()} for name, a in answers.items()}
    assert statuses["imagehop"] == statuses["keystone"]
    compared = 0
    for (role, path), theirs in answers["keystone"].items():
        ours = answers["imagehop"][(role, path)]
        key = dict(paths)[path]
        if theirs.status_code != 200:
            assert ours.json()["error"]["message"].startswith(theirs.json()["error"]["message"])
            continue
        assert set(ours.json()) == set(theirs.json()), path
        assert _shape(ours.json().get("links")) == _shape(theirs.json().get("links")), path
        if key in ("limits", "system") or not theirs.json()[key] or not ours.json()[key]:
            continue
        extra = {"default_project_id"} if key.startswith("user") else set()  # Keystone shows it when set
        assert _entry_keys(ours.json(), key) - extra == _entry_keys(theirs.json(), key) - extra, path
        compared += 1
    assert compared >= 20
