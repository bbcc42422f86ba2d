"""The compute API over HTTP against a real `imagehop serve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Cloud, Compute, Glance, MiB, create_image, disk_bytes, wait_for, wait_image

Api = Compute  # a tenant's view of one region's compute API


@pytest.fixture(scope="module")
def demo(cloud: Cloud) -> Compute:
    return Compute(cloud)


@pytest.fixture(scope="module")
def glance(cloud: Cloud) -> Glance:
    """The same user's image API in the same region (ORD)."""
    return Glance(cloud)


@pytest.fixture(scope="module")
def base_image(cloud: Cloud) -> dict:
    return create_image(cloud, "ORD", "cirros", disk_bytes(16 * MiB, seed=1))


def test_versions_and_microversions(demo: Api) -> None:
    root = httpx.get(f"{demo.region}/compute/")
    assert root.status_code == 200
    (entry,) = root.json()["versions"]
    assert entry["id"] == "v2.1" and entry["min_version"] == "2.1" and entry["version"] >= "2.47"
    assert httpx.get(f"{demo.region}/compute/v2.1").json()["version"]["id"] == "v2.1"

    ok = demo("GET", "/flavors", version="2.45")
    assert ok.headers["OpenStack-API-Version"] == "compute 2.45"
    assert ok.headers["X-OpenStack-Nova-API-Version"] == "2.45"
    assert "OpenStack-API-Version" in ok.headers["Vary"]
    latest = demo("GET", "/flavors", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "compute 2.47"
    legacy = httpx.get(
        f"{demo.base}/flavors", headers={"X-Auth-Token": demo.token, "X-OpenStack-Nova-API-Version": "2.9"}
    )
    assert legacy.headers["X-OpenStack-Nova-API-Version"] == "2.9"
    plain = httpx.get(f"{demo.base}/flavors", headers={"X-Auth-Token": demo.token})
    assert plain.headers["OpenStack-API-Version"] == "compute 2.1"

    assert demo("GET", "/flavors", version="3.0").status_code == 406
    bad = demo("GET", "/flavors", version="two")
    assert bad.status_code == 400 and bad.json()["badRequest"]["code"] == 400
    assert httpx.get(f"{demo.base}/servers").status_code == 401


def test_flavors(demo: Api) -> None:
    flavors = demo("GET", "/flavors").json()["flavors"]
    assert {"1", "2"} <= {f["id"] for f in flavors}
    detail = {f["id"]: f for f in demo("GET", "/flavors/detail").json()["flavors"]}
    assert detail["1"]["disk"] == 1 and detail["1"]["ram"] == 512 and detail["1"]["vcpus"] == 1
    assert demo("GET", "/flavors/2").json()["flavor"]["name"] == "m1.small"
    missing = demo("GET", "/flavors/nope")
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    # The same resources without the tenant segment.
    assert httpx.get(f"{demo.region}/compute/v2.1/flavors/1", headers={"X-Auth-Token": demo.token}).status_code == 200


def test_boot_metadata_image_and_delete(demo: Api, glance: Glance, base_image: dict) -> None:
    response = demo("POST", "/servers", json={"server": {
        "name": "Slave Database 3", "imageRef": base_image["id"], "flavorRef": "1", "metadata": {"role": "db"},
        "networks": "auto",
    }})  # fmt: skip
    assert response.status_code == 202, response.text
    created = response.json()["server"]
    assert created["adminPass"] and response.headers["Location"].endswith(f"/servers/{created['id']}")
    server_id = created["id"]

    server = demo.wait_status(server_id, "ACTIVE")
    assert server["flavor"]["original_name"] == "m1.tiny" and server["flavor"]["disk"] == 1
    assert server["image"]["id"] == base_image["id"] and server["metadata"] == {"role": "db"}
    assert server["OS-EXT-STS:vm_state"] == "active"
    old = demo("GET", f"/servers/{server_id}", version="2.1").json()["server"]
    assert old["flavor"]["id"] == "1" and "locked" not in old

    # Filters.
    names = [s["id"] for s in demo("GET", "/servers", params={"name": "Slave Database"}).json()["servers"]]
    assert server_id in names
    assert demo("GET", "/servers", params={"name": "^nothing$"}).json()["servers"] == []
    assert server_id in [s["id"] for s in demo("GET", "/servers/detail", params={"status": "ACTIVE"}).json()["servers"]]
    assert demo("GET", "/servers/detail", params={"status": "ERROR", "name": "Slave"}).json()["servers"] == []
    by_image = demo("GET", "/servers/detail", params={"image": base_image["id"]}).json()["servers"]
    assert server_id in [s["id"] for s in by_image]

    # Metadata.
    assert demo("POST", f"/servers/{server_id}/metadata", json={"metadata": {"a": "1"}}).json()["metadata"] == {
        "role": "db", "a": "1",
    }  # fmt: skip
    assert demo("PUT", f"/servers/{server_id}/metadata/b", json={"meta": {"b": "2"}}).status_code == 200
    assert demo("GET", f"/servers/{server_id}/metadata/b").json() == {"meta": {"b": "2"}}
    assert demo("DELETE", f"/servers/{server_id}/metadata/a").status_code == 204
    assert demo("PUT", f"/servers/{server_id}/metadata", json={"metadata": {"x": "y"}}).json()["metadata"] == {"x": "y"}
    assert demo("GET", f"/servers/{server_id}/metadata").json() == {"metadata": {"x": "y"}}
    assert demo("GET", f"/servers/{server_id}/metadata/a").status_code == 404

    # createImage: the snapshot has the disk's content digest.
    action = {"createImage": {"name": "db-slave-3-image", "metadata": {"com.mycompany.image-of": "db-slave-3"}}}
    response = demo("POST", f"/servers/{server_id}/action", json=action)
    assert response.status_code == 202, response.text
    image_id = response.json()["image_id"]
    assert response.headers["Location"].endswith(f"/images/{image_id}")
    snapshot = wait_image(glance, image_id)
    assert snapshot["image_type"] == "snapshot"
    assert snapshot["instance_uuid"] == server_id and snapshot["base_image_ref"] == base_image["id"]
    assert snapshot["com.mycompany.image-of"] == "db-slave-3"
    assert snapshot["imagehop.content_digest"] == base_image["imagehop.content_digest"]
    assert snapshot["checksum"] == base_image["checksum"] and snapshot["virtual_size"] == base_image["virtual_size"]
    # Before 2.45: the image is named by the Location header only.
    old_style = demo("POST", f"/servers/{server_id}/action", version="2.1", json={"createImage": {"name": "again"}})
    assert old_style.status_code == 202 and old_style.content == b""
    second = old_style.headers["Location"].rsplit("/", 1)[1]
    wait_image(glance, second)

    # The compute images proxy shows the server an image was made from.
    proxied = demo("GET", f"/images/{image_id}").json()["image"]
    assert proxied["status"] == "ACTIVE" and proxied["server"]["id"] == server_id
    assert [i["id"] for i in demo("GET", "/images", params={"name": "db-slave-3-image"}).json()["images"]] == [image_id]

    # A server booted from the snapshot, imaged again: the same content digest.
    copy = demo.boot(image_id, name="copy")
    demo.wait_status(copy["id"], "ACTIVE")
    again = demo("POST", f"/servers/{copy['id']}/action", json={"createImage": {"name": "copy-image"}}).json()
    image = wait_image(glance, again["image_id"])
    assert image["imagehop.content_digest"] == base_image["imagehop.content_digest"]

    # Delete: 204, DELETED, then gone.
    for sid in (server_id, copy["id"]):
        assert demo("DELETE", f"/servers/{sid}").status_code == 204
        wait_for(lambda sid=sid: demo("GET", f"/servers/{sid}").status_code == 404, f"server {sid} is gone")
    assert server_id not in [s["id"] for s in demo("GET", "/servers").json()["servers"]]


def test_boot_failures_end_in_error_with_a_fault(cloud: Cloud, demo: Api, base_image: dict) -> None:
    queued = create_image(cloud, "ORD", "no-data")
    server = demo.boot(queued["id"], name="from-queued")
    failed = demo.wait_status(server["id"], "ERROR", "ACTIVE")
    assert failed["status"] == "ERROR" and "not active" in failed["fault"]["message"]

    big = create_image(cloud, "ORD", "needs-disk", b"\1" * 4096, min_disk=50)
    server = demo.boot(big["id"], name="too-small", flavor="1")
    failed = demo.wait_status(server["id"], "ERROR", "ACTIVE")
    assert failed["status"] == "ERROR" and "too small" in failed["fault"]["message"]

    conflict = demo("POST", f"/servers/{server['id']}/action", json={"createImage": {"name": "x"}})
    assert conflict.status_code == 409 and "conflictingRequest" in conflict.json()
    assert demo("DELETE", f"/servers/{server['id']}").status_code == 204


def _count(demo: Api) -> int:
    """The tenant's servers (a deletion in flight from an earlier test is already out of this list)."""
    return len(demo("GET", "/servers").json()["servers"])


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (
            {"server": {"name": "x", "imageRef": "8b2d1a6e-0000-4000-8000-000000000000", "flavorRef": "1"}},
            400,
            "badRequest",
        ),
        ({"server": {"name": "x", "imageRef": "IMAGE", "flavorRef": "no-such-flavor"}}, 400, "badRequest"),
        ({"server": {"imageRef": "IMAGE", "flavorRef": "1"}}, 400, "badRequest"),
        ({"server": {"name": "x", "imageRef": "IMAGE", "flavorRef": "1", "metadata": {"a": 1}}}, 400, "badRequest"),
        ({"server": {"name": "x", "imageRef": "IMAGE", "flavorRef": "1", "networks": 7}}, 400, "badRequest"),
        ({"name": "x"}, 400, "badRequest"),
        ("[not json", 400, "badRequest"),
    ],
)
def test_bad_create_changes_nothing(demo: Api, base_image: dict, body: object, status: int, kind: str) -> None:
    before = _count(demo)
    if isinstance(body, str):
        response = demo("POST", "/servers", content=body, headers={"Content-Type": "application/json"})
    else:
        text = httpx.Request("POST", "http://x", json=body).content.decode().replace("IMAGE", base_image["id"])
        response = demo("POST", "/servers", content=text, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()[kind]["code"] == status and response.json()[kind]["message"]
    assert _count(demo) == before


def test_other_tenants_see_nothing(cloud: Cloud, demo: Api, base_image: dict) -> None:
    server = demo.boot(base_image["id"], name="private-server")
    demo.wait_status(server["id"], "ACTIVE")
    alt = Api(cloud, "alt")
    sid = server["id"]
    for method, path, body in [
        ("GET", f"/servers/{sid}", None),
        ("DELETE", f"/servers/{sid}", None),
        ("GET", f"/servers/{sid}/metadata", None),
        ("POST", f"/servers/{sid}/metadata", {"metadata": {"a": "b"}}),
        ("POST", f"/servers/{sid}/action", {"createImage": {"name": "steal"}}),
    ]:
        response = alt(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["itemNotFound"]["code"] == 404
    assert sid not in [s["id"] for s in alt("GET", "/servers").json()["servers"]]
    # The URL's tenant must be the caller's.
    wrong = httpx.get(f"{demo.region}/compute/v2.1/{alt.tenant}/servers", headers={"X-Auth-Token": demo.token})
    assert wrong.status_code == 400 and "badRequest" in wrong.json()
    # Nothing changed for the owner.
    shown = demo("GET", f"/servers/{sid}").json()["server"]
    assert shown["status"] == "ACTIVE" and shown["metadata"] == {}


def test_bad_actions(demo: Api, base_image: dict) -> None:
    server = demo.boot(base_image["id"], name="actions")
    demo.wait_status(server["id"], "ACTIVE")
    sid = server["id"]
    # Nova's other actions get Nova's 400 for an unknown action, saying they are not implemented here
    reboot = demo("POST", f"/servers/{sid}/action", json={"reboot": {"type": "SOFT"}})
    assert reboot.status_code == 400
    assert "reboot is not implemented in imagehop" in reboot.json()["badRequest"]["message"]
    assert demo("POST", f"/servers/{sid}/action", json={"teleport": {}}).status_code == 400
    assert demo("POST", f"/servers/{sid}/action", json={"createImage": {}}).status_code == 400
    assert (
        demo("POST", f"/servers/{sid}/action", json={"createImage": {"name": "x", "metadata": []}}).status_code == 400
    )
    missing = demo("POST", "/servers/8b2d1a6e-0000-4000-8000-000000000000/action", json={"createImage": {"name": "x"}})
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    assert demo("GET", f"/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"] is None
    assert demo("DELETE", f"/servers/{sid}").status_code == 204


def test_update_server(demo: Api, base_image: dict) -> None:
    server = demo.boot(base_image["id"], name="before")
    sid = server["id"]
    demo.wait_status(sid, "ACTIVE")
    renamed = demo("PUT", f"/servers/{sid}", json={"server": {"name": "after", "description": "db"}})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["server"]["name"], renamed.json()["server"]["description"]) == ("after", "db")
    assert demo.server(sid)["name"] == "after"
    # description needs 2.19; unknown keys and empty names are refused, and change nothing
    for body, version in (
        ({"server": {"description": "x"}}, "2.18"),
        ({"server": {"name": ""}}, "2.47"),
        ({"server": {"flavorRef": "2"}}, "2.47"),
        ({"name": "x"}, "2.47"),
    ):
        response = demo("PUT", f"/servers/{sid}", json=body, version=version)
        assert response.status_code == 400 and response.json()["badRequest"]["code"] == 400, (body, response.text)
    assert (demo.server(sid)["name"], demo.server(sid)["description"]) == ("after", "db")
    missing = demo("PUT", "/servers/8b2d1a6e-0000-4000-8000-000000000000", json={"server": {"name": "x"}})
    assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404
    assert demo("DELETE", f"/servers/{sid}").status_code == 204


def test_flavor_extra_specs_versions_and_unknown_routes(demo: Api) -> None:
    specs = demo("GET", "/flavors/1/os-extra_specs")
    assert specs.status_code == 200 and specs.json() == {"extra_specs": {}}
    missing = demo("GET", "/flavors/nope/os-extra_specs")
    assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404

    # The version document answers at the root, at /v2.1 and at the catalog URL, without a token.
    for url in (f"{demo.region}/compute/v2.1", f"{demo.region}/compute/v2.1/", demo.base):
        response = httpx.get(url)
        assert response.status_code == 200, url
        version = response.json()["version"]
        assert (version["id"], version["status"], version["min_version"]) == ("v2.1", "CURRENT", "2.1")
        assert version["version"] == "2.47"
        assert httpx.head(url).status_code == 200

    # A missing resource is Nova's 404; a path imagehop does not offer is a 404 that says so; a known path with
    # another method is a 405 that says what is allowed.
    missing_server = demo("GET", "/servers/8b2d1a6e-0000-4000-8000-000000000000")
    assert missing_server.status_code == 404 and missing_server.json()["itemNotFound"]["code"] == 404
    unknown = demo("GET", "/no-such-thing")
    assert unknown.status_code == 404
    assert "/no-such-thing is not implemented in imagehop" in unknown.json()["itemNotFound"]["message"]
    for method, path, allowed in (
        ("DELETE", "/flavors", "GET"),
        ("POST", "/servers/8b2d1a6e-0000-4000-8000-000000000000", "DELETE, GET, PUT"),
        ("GET", "/servers/8b2d1a6e-0000-4000-8000-000000000000/action", "POST"),
    ):
        response = demo(method, path)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["Allow"] == allowed
        [(_kind, fault)] = response.json().items()
        assert fault["code"] == 405 and method in fault["message"]


def test_images_proxy_list_and_detail(demo: Api, base_image: dict) -> None:
    brief = demo("GET", "/images", params={"name": "cirros"})
    assert brief.status_code == 200
    assert [(i["id"], i["name"]) for i in brief.json()["images"]] == [(base_image["id"], "cirros")]
    assert set(brief.json()["images"][0]) == {"id", "name", "links"}
    detail = demo("GET", "/images/detail", params={"name": "cirros"})
    assert detail.status_code == 200
    [image] = detail.json()["images"]
    assert (image["id"], image["status"], image["progress"], image["minDisk"]) == (base_image["id"], "ACTIVE", 100, 0)
    assert image["OS-EXT-IMG-SIZE:size"] == base_image["size"] == 16 * MiB
    assert image["metadata"]["imagehop.content_digest"] == base_image["imagehop.content_digest"]
    assert demo("GET", "/images/detail", params={"status": "SAVING", "name": "cirros"}).json()["images"] == []
    missing = demo("GET", "/images/8b2d1a6e-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404
    assert httpx.get(f"{demo.base}/images/detail").status_code == 401
