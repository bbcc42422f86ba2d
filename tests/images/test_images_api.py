"""The Glance v2 image API against a real `imagehop serve` process, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import uuid

import httpx

from tests.support import V20, V21, Cloud, Glance, MiB, disk_bytes, reference_digest
from tests.support.wait import wait_for


def test_versions_and_schemas(cloud: Cloud, demo: Glance) -> None:
    root = httpx.get(demo.url + "/")
    assert root.status_code == 300
    assert root.json()["versions"][0]["id"] == "v2.12"
    schema = demo.get("/v2/schemas/image").json()
    assert schema["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["os_distro"]["is_base"] is False
    assert "is_base" not in schema["properties"]["name"]
    for name in ("images", "member", "members", "task", "tasks", "metadefs/namespace", "metadefs/resource_type"):
        assert demo.get(f"/v2/schemas/{name}").status_code == 200, name
    assert demo.get("/v2/schemas/nope").status_code == 404
    assert httpx.get(demo.url + "/v2/images").status_code == 401


def test_create_show_delete(demo: Glance) -> None:
    image_id = str(uuid.uuid4())
    body = {"id": image_id, "name": "one", "disk_format": "raw", "container_format": "bare"}
    response = demo.post("/v2/images", json={**body, "owner_specified.openstack.md5": ""})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v2/images/{image_id}"
    assert "glance-direct" in response.headers["openstack-image-import-methods"]
    body = response.json()
    assert body["status"] == "queued" and body["visibility"] == "shared" and body["owner"] == demo.tenant
    assert body["owner_specified.openstack.md5"] == "" and body["tags"] == [] and body["size"] is None
    assert body["self"] == f"/v2/images/{image_id}" and body["created_at"].endswith("Z")
    assert demo.post("/v2/images", json={"id": image_id}).status_code == 409
    assert demo.get(f"/v2/images/{image_id}").json()["name"] == "one"
    assert demo.delete(f"/v2/images/{image_id}").status_code == 204
    assert demo.get(f"/v2/images/{image_id}").status_code == 404
    assert demo.delete(f"/v2/images/{image_id}").status_code == 404
    assert demo.get("/v2/images/not-a-uuid").status_code == 404
    assert demo.get("/v2/images/").status_code == 404


def test_create_rejections(demo: Glance) -> None:
    before = demo.ids("?limit=1000")
    cases = [
        ({"self": "x"}, 403), ({"status": "active"}, 403), ({"location": "x"}, 403), ({"os_glance_x": "y"}, 403),
        ({"deleted": True}, 403), ({"disk_format": "floppy"}, 400), ({"container_format": "box"}, 400),
        ({"name": "x" * 256}, 400), ({"prop": 1}, 400), ({"k" * 256: "v"}, 400), ({"min_ram": -1}, 400),
        ({"protected": "yes"}, 400), ({"visibility": "public"}, 403), ({"owner": "someone-else"}, 403),
        ({"id": "not-a-uuid"}, 400), ({"imagehop.content_digest": "sha256:00"}, 403),
    ]  # fmt: skip
    for body, status in cases:
        response = demo.post("/v2/images", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["code"].startswith(str(status))
    assert demo.post("/v2/images", content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert demo.post("/v2/images", json={"description": "x" * 200_000}).status_code == 413
    assert demo.ids("?limit=1000") == before


def test_article_curl_patch_and_filter(cloud: Cloud, demo: Glance) -> None:
    image = demo.create(name="db-slave-3-snap", disk_format="vhd", container_format="ovf")
    other = demo.create(name="other")
    url = f"{demo.url}/v2/images/{image['id']}"
    out = subprocess.run(
        ["curl", "-s", "-X", "PATCH", url, "-H", f"X-Auth-Token: {demo.token}",
         "-H", "Content-Type: application/openstack-images-v2.1-json-patch",
         "-d", '[{"op": "add", "path": "/com.mycompany.image-of", "value": "db-slave-3"}]'],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert json.loads(out)["com.mycompany.image-of"] == "db-slave-3"
    out = subprocess.run(
        ["curl", "-s", f"{demo.url}/v2/images?com.mycompany.image-of=db-slave-3", "-H", f"X-Auth-Token: {demo.token}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert [i["id"] for i in json.loads(out)["images"]] == [image["id"]]
    assert other["id"] not in demo.ids("?com.mycompany.image-of=db-slave-3")


def test_patch_rules(demo: Glance) -> None:
    image = demo.create(name="p", disk_format="raw", container_format="bare", color="red")
    iid = image["id"]
    ok = demo.patch(iid, [
        {"op": "replace", "path": "/name", "value": "q"}, {"op": "add", "path": "/a~1b", "value": "c"},
        {"op": "remove", "path": "/color"}, {"op": "replace", "path": "/tags", "value": ["x", "y"]},
        {"op": "add", "path": "/min_ram", "value": 512},
    ])  # fmt: skip
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["name"] == "q" and body["a/b"] == "c" and "color" not in body and sorted(body["tags"]) == ["x", "y"]
    assert body["min_ram"] == 512
    # 2.0 media type (tempest): the op is the key
    assert demo.patch(iid, [{"replace": "/name", "value": "r"}], V20).json()["name"] == "r"
    assert demo.patch(iid, [{"add": "/a~1b", "value": "d"}], V20).status_code == 409
    assert demo.patch(iid, [{"op": "add", "path": "/a~1b", "value": "d"}]).json()["a/b"] == "d"
    bad = [
        ([{"op": "move", "path": "/name", "value": "x"}], V21, 400),
        ([{"op": "add", "path": "name", "value": "x"}], V21, 400),
        ([{"op": "add", "path": "/a/b", "value": "x"}], V21, 400),
        ([{"op": "add", "path": "/x~2", "value": "x"}], V21, 400),
        ([{"op": "add", "path": "/name"}], V21, 400),
        ({"op": "add"}, V21, 400),
        ([{"op": "add", "path": "/min_ram", "value": "big"}], V21, 400),
        ([{"op": "add", "path": "/k", "value": 3}], V21, 400),
        ([{"op": "replace", "path": "/status", "value": "active"}], V21, 403),
        ([{"op": "add", "path": "/os_glance_foo", "value": "x"}], V21, 403),
        ([{"op": "remove", "path": "/name"}], V21, 403),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], V21, 403),
        ([{"op": "replace", "path": "/owner", "value": "other"}], V21, 403),
        ([{"op": "replace", "path": "/nope", "value": "x"}], V21, 409),
        ([{"op": "remove", "path": "/nope"}], V21, 409),
        ([{"add": "/x", "remove": "/y"}], V20, 400),
        ([{"op": "replace", "path": "/name", "value": "z"}], "application/json", 415),
        # a good change before a bad one: nothing is applied
        ([{"op": "replace", "path": "/name", "value": "z"}, {"op": "remove", "path": "/nope"}], V21, 409),
    ]
    for ops, media, status in bad:
        response = demo.patch(iid, ops, media)
        assert response.status_code == status, (ops, response.text)
    assert demo.patch(iid, [], "application/json").headers["accept-patch"].startswith("application/openstack-images")
    after = demo.get(f"/v2/images/{iid}").json()
    assert after["name"] == "r" and after["a/b"] == "d"


def test_list_filters_sorting_paging(demo: Glance) -> None:
    tag = uuid.uuid4().hex[:8]
    made = [demo.create(name=f"{tag}-{n}", disk_format=("raw" if n % 2 else "qcow2"), container_format="bare",
                        tags=[tag, f"n{n}"], min_disk=n) for n in range(7)]  # fmt: skip
    ids = [i["id"] for i in made]
    assert demo.ids(f"?tag={tag}") == ids[::-1]  # created_at desc
    assert demo.ids(f"?tag={tag}&tag=n3") == [ids[3]]
    assert demo.ids(f"?tag={tag}&disk_format=raw&sort_key=name&sort_dir=asc") == [ids[1], ids[3], ids[5]]
    assert demo.ids(f"?tag={tag}&name=in:{tag}-1,{tag}-2&sort=name:asc") == [ids[1], ids[2]]
    assert demo.ids(f"?tag={tag}&name=eq:{tag}-4") == [ids[4]]
    assert demo.ids(f"?tag={tag}&status=queued&sort=name:desc,id")[:1] == [ids[6]]
    first = demo.get(f"?tag={tag}&limit=3&sort_key=name&sort_dir=asc".join(["/v2/images", ""])).json()
    assert [i["id"] for i in first["images"]] == ids[:3]
    seen = [i["id"] for i in first["images"]]
    link = first["next"]
    while link:
        assert link.startswith("/v2/images?")
        page = demo.get(link).json()
        seen += [i["id"] for i in page["images"]]
        link = page.get("next")
    assert seen == ids
    assert first["first"].startswith("/v2/images?") and "marker" not in first["first"]
    created = made[3]["created_at"]
    assert set(demo.ids(f"?tag={tag}&created_at=lte:{created}")) >= {ids[0]}
    for query in ("?limit=x", "?limit=-1", f"?marker={uuid.uuid4()}", "?marker=zzz", "?sort_key=owner",
                  "?sort_dir=sideways", "?sort=name:asc&sort_key=name", "?sort_key=name&sort_key=id&sort_dir=asc"
                  "&sort_dir=desc&sort_dir=asc", "?visibility=everyone", "?member_status=maybe", "?protected=maybe",
                  "?os_hidden=2", "?created_at=gt:yesterday", "?created_at=since:2020-01-01", "?size_min=big",
                  "?name=foo:bar", "?changes-since=2020-01-01"):  # fmt: skip
        response = demo.get("/v2/images" + query)
        assert response.status_code == 400, (query, response.text)


def test_hidden_protected_tags_deactivate(demo: Glance) -> None:
    image = demo.create(name="h", os_hidden=True, protected=True, disk_format="raw", container_format="bare")
    iid = image["id"]
    assert iid not in demo.ids("?limit=1000")
    assert iid in demo.ids("?os_hidden=true&limit=1000")
    assert iid in demo.ids("?protected=true&os_hidden=true&limit=1000")
    assert demo.delete(f"/v2/images/{iid}").status_code == 403
    assert demo.put(f"/v2/images/{iid}/tags/blue").status_code == 204
    assert demo.put(f"/v2/images/{iid}/tags/blue").status_code == 204
    assert demo.get(f"/v2/images/{iid}").json()["tags"] == ["blue"]
    assert demo.delete(f"/v2/images/{iid}/tags/red").status_code == 404
    assert demo.delete(f"/v2/images/{iid}/tags/blue").status_code == 204
    assert demo.post(f"/v2/images/{iid}/actions/deactivate").status_code == 403  # queued
    assert demo.put(f"/v2/images/{iid}/file", content=b"x").status_code == 415
    data = b"hello image" * 1000
    assert demo.upload(iid, data).status_code == 204
    shown = demo.get(f"/v2/images/{iid}").json()
    assert shown["status"] == "active" and shown["size"] == len(data) and shown["virtual_size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512" and shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["imagehop.content_digest"].startswith("sha256:")
    assert demo.upload(iid, data).status_code == 409
    assert demo.post(f"/v2/images/{iid}/actions/deactivate").status_code == 204
    assert demo.get(f"/v2/images/{iid}").json()["status"] == "deactivated"
    assert demo.get(f"/v2/images/{iid}/file").status_code == 403
    assert demo.post(f"/v2/images/{iid}/actions/reactivate").status_code == 204
    assert demo.get(f"/v2/images/{iid}/file").content == data
    assert demo.patch(iid, [{"op": "replace", "path": "/protected", "value": False}]).status_code == 200
    assert demo.delete(f"/v2/images/{iid}").status_code == 204


def test_data_download_ranges_and_failures(demo: Glance) -> None:
    image = demo.create(name="d", disk_format="raw", container_format="bare")
    iid = image["id"]
    assert demo.get(f"/v2/images/{iid}/file").status_code == 204
    data = bytes(range(256)) * 20000 + bytes(3 << 20)  # some data, then zero blocks
    bad = demo.put(f"/v2/images/{iid}/file", content=data,
                   headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": "5"})  # fmt: skip
    assert bad.status_code == 400
    assert demo.get(f"/v2/images/{iid}").json()["status"] == "queued"
    assert demo.upload(iid, data).status_code == 204
    full = demo.get(f"/v2/images/{iid}/file")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-md5"] == hashlib.md5(data).hexdigest()
    part = demo.get(f"/v2/images/{iid}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert demo.get(f"/v2/images/{iid}/file", headers={"Range": "bytes=-5"}).content == data[-5:]
    assert demo.get(f"/v2/images/{iid}/file", headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    no_formats = demo.create(name="nf")
    assert demo.upload(no_formats["id"], b"abc").status_code == 400


class Broken(Exception):
    """Raised inside a request body: httpx drops the connection halfway through the upload."""


def test_resumable_upload_keeps_what_arrived_and_appends(demo: Glance) -> None:
    assert "imagehop.upload_kept" in demo.get("/v2/schemas/image").json()["properties"]  # how a client knows
    data = disk_bytes(12 * MiB, seed=7)
    iid = demo.create(name="resumed", disk_format="raw", container_format="bare")["id"]
    resumable = {"Content-Type": "application/octet-stream", "X-Imagehop-Resumable": "true"}

    def first_part():  # 5 MiB, then the connection breaks
        for start in range(0, 5 * MiB, MiB):
            yield data[start : start + MiB]
        raise Broken

    with contextlib.suppress(Broken, httpx.HTTPError):
        demo.put(f"/v2/images/{iid}/file", content=first_part(), headers=resumable)
    image = wait_for(lambda: (i := demo.get(f"/v2/images/{iid}").json()).get("imagehop.upload_kept") and i,
                     "the region keeps the interrupted upload")  # fmt: skip
    kept = int(image["imagehop.upload_kept"])
    assert image["status"] == "queued" and 0 < kept <= 5 * MiB and image["checksum"] is None
    # the kept count is the region's to say
    assert demo.patch(iid, [{"op": "add", "path": "/imagehop.upload_kept", "value": "0"}]).status_code == 403
    # more than is kept: 416, nothing changes; a malformed range: 400
    beyond = demo.put(f"/v2/images/{iid}/file", content=data[kept + 1 :],
                      headers={**resumable, "Content-Range": f"bytes {kept + 1}-*/*"})  # fmt: skip
    assert beyond.status_code == 416
    assert demo.put(f"/v2/images/{iid}/file", content=b"x",
                    headers={**resumable, "Content-Range": "bytes=1-"}).status_code == 400  # fmt: skip
    assert demo.get(f"/v2/images/{iid}").json()["imagehop.upload_kept"] == str(kept)
    # the rest from a point inside the kept bytes: the image is as from one PUT of the whole
    at = kept - 12345
    rest = demo.put(f"/v2/images/{iid}/file", content=data[at:],
                    headers={**resumable, "Content-Range": f"bytes {at}-{len(data) - 1}/{len(data)}"})  # fmt: skip
    assert rest.status_code == 204, rest.text
    image = demo.get(f"/v2/images/{iid}").json()
    assert image["status"] == "active" and image["size"] == len(data) and "imagehop.upload_kept" not in image
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["imagehop.content_digest"] == reference_digest(data)
    blocks = demo.get(f"/v2/images/{iid}/x-imagehop-blocks").json()
    assert blocks["content_digest"] == reference_digest(data) and blocks["virtual_size"] == len(data)
    assert demo.get(f"/v2/images/{iid}/file").content == data

    # Without the header a PUT is Glance's: an interrupted upload leaves nothing, Content-Range means nothing.
    plain = demo.create(name="plain", disk_format="raw", container_format="bare")["id"]
    with contextlib.suppress(Broken, httpx.HTTPError):
        demo.put(f"/v2/images/{plain}/file", content=first_part(), headers={"Content-Type": "application/octet-stream"})
    wait_for(lambda: demo.get(f"/v2/images/{plain}").json()["status"] == "queued", "the upload is dropped")
    assert "imagehop.upload_kept" not in demo.get(f"/v2/images/{plain}").json()
    whole = demo.put(f"/v2/images/{plain}/file", content=data,
                     headers={"Content-Type": "application/octet-stream", "Content-Range": "bytes 5-9/10"})  # fmt: skip
    assert whole.status_code == 204
    assert demo.get(f"/v2/images/{plain}").json()["os_hash_value"] == hashlib.sha512(data).hexdigest()

    # An image deleted with kept bytes takes them along (a new image of the same id starts afresh).
    gone = demo.create(name="gone", disk_format="raw", container_format="bare")["id"]
    with contextlib.suppress(Broken, httpx.HTTPError):
        demo.put(f"/v2/images/{gone}/file", content=first_part(), headers=resumable)
    wait_for(lambda: demo.get(f"/v2/images/{gone}").json().get("imagehop.upload_kept"), "the upload is kept")
    assert demo.delete(f"/v2/images/{gone}").status_code == 204


def test_tenants_members_and_reader(cloud: Cloud, demo: Glance, alt: Glance, admin: Glance) -> None:
    private = demo.create(name="mine", visibility="private", disk_format="raw", container_format="bare")
    assert demo.upload(private["id"], b"secret").status_code == 204
    pid = private["id"]
    for response in (
        alt.get(f"/v2/images/{pid}"), alt.get(f"/v2/images/{pid}/file"), alt.delete(f"/v2/images/{pid}"),
        alt.patch(pid, [{"op": "replace", "path": "/name", "value": "stolen"}]),
        alt.put(f"/v2/images/{pid}/tags/x"), alt.get(f"/v2/images/{pid}/members"),
    ):  # fmt: skip
        assert response.status_code == 404, response.text
    assert pid not in alt.ids("?limit=1000") and pid not in alt.ids("?visibility=all&limit=1000")
    assert admin.get(f"/v2/images/{pid}").status_code == 200
    assert demo.get(f"/v2/images/{pid}").json()["name"] == "mine"
    # sharing: only a shared image has members
    assert demo.post(f"/v2/images/{pid}/members", json={"member": alt.tenant}).status_code == 403
    shared = demo.create(name="shared-one")
    sid = shared["id"]
    member = demo.post(f"/v2/images/{sid}/members", json={"member": alt.tenant})
    assert member.status_code == 200 and member.json()["status"] == "pending"
    assert demo.post(f"/v2/images/{sid}/members", json={"member": alt.tenant}).status_code == 409
    assert demo.post(f"/v2/images/{sid}/members", json={}).status_code == 400
    assert alt.get(f"/v2/images/{sid}").status_code == 200  # a member sees it...
    assert sid not in alt.ids("?limit=1000")  # ...but lists it only once accepted
    assert sid in alt.ids("?visibility=shared&member_status=pending")
    assert demo.put(f"/v2/images/{sid}/members/{alt.tenant}", json={"status": "accepted"}).status_code == 403
    assert alt.put(f"/v2/images/{sid}/members/{alt.tenant}", json={"status": "maybe"}).status_code == 400
    assert alt.put(f"/v2/images/{sid}/members/{alt.tenant}", json={"status": "accepted"}).json()["status"] == "accepted"
    assert sid in alt.ids("?limit=1000")
    assert [m["member_id"] for m in alt.get(f"/v2/images/{sid}/members").json()["members"]] == [alt.tenant]
    assert alt.patch(sid, [{"op": "replace", "path": "/name", "value": "x"}]).status_code == 403
    assert alt.delete(f"/v2/images/{sid}").status_code == 403
    assert demo.delete(f"/v2/images/{sid}/members/{alt.tenant}").status_code == 204
    assert alt.get(f"/v2/images/{sid}").status_code == 404
    # only admins publish; everyone sees public images
    public = admin.create(name="pub", visibility="public")
    assert public["id"] in demo.ids("?visibility=public")
    assert demo.patch(public["id"], [{"op": "replace", "path": "/name", "value": "x"}]).status_code == 403


def test_errors_405_and_html(demo: Glance) -> None:
    response = demo.http.request("POST", "/v2/images/" + str(uuid.uuid4()))
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    plain = httpx.get(demo.url + f"/v2/images/{uuid.uuid4()}", headers={"X-Auth-Token": demo.token})
    assert plain.status_code == 404 and plain.headers["content-type"].startswith("text/html")
    assert "404 Not Found" in plain.text
    assert plain.headers["x-openstack-request-id"].startswith("req-")
    assert demo.get("/v2/info/import").json()["import-methods"]["value"][0] == "glance-direct"
    assert demo.get("/v2/info/stores").json()["stores"][0]["id"] == "local"


def test_one_member_shown(demo: Glance, alt: Glance, admin: Glance) -> None:
    shared = demo.create(name="shared-two", visibility="shared")
    sid = shared["id"]
    assert demo.post(f"/v2/images/{sid}/members", json={"member": alt.tenant}).status_code == 200
    for viewer in (demo, alt):  # the owner, and the member itself
        shown = viewer.get(f"/v2/images/{sid}/members/{alt.tenant}")
        assert shown.status_code == 200, shown.text
        member = shown.json()
        assert (member["image_id"], member["member_id"], member["status"]) == (sid, alt.tenant, "pending")
        assert member["schema"] == "/v2/schemas/member" and member["created_at"].endswith("Z")
    assert demo.get(f"/v2/images/{sid}/members/{admin.tenant}").status_code == 404  # not a member
    assert demo.get(f"/v2/images/{uuid.uuid4()}/members/{alt.tenant}").status_code == 404
    private = demo.create(name="private-two")
    assert alt.get(f"/v2/images/{private['id']}/members/{alt.tenant}").status_code == 404


def test_head_answers_as_get_without_a_body(demo: Glance) -> None:
    image = demo.create(name="headed", disk_format="raw", container_format="bare")
    data = b"x" * 5000
    assert demo.upload(image["id"], data).status_code == 204
    for path in (f"/v2/images/{image['id']}", "/v2/images", "/v2/schemas/image"):
        head, get = demo.head(path), demo.get(path)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-type"] == get.headers["content-type"]
    file_head = demo.head(f"/v2/images/{image['id']}/file")
    assert (file_head.status_code, file_head.content) == (200, b"")
    assert file_head.headers["content-length"] == str(len(data))
    assert file_head.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert demo.head(f"/v2/images/{uuid.uuid4()}").status_code == 404
    assert demo.head(f"/v2/images/{uuid.uuid4()}/file").status_code == 404
    assert httpx.head(demo.url + f"/v2/images/{image['id']}").status_code == 401


def test_web_download_from_private_addresses_is_refused_by_default(demo: Glance) -> None:
    """The operator has not allowed private addresses (this module's cloud): each is refused with 400
    at the import call, and nothing starts."""
    image = demo.create(name="guarded", disk_format="raw", container_format="bare")
    for uri in ("http://127.0.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x",
                "http://10.1.2.3/", "http://localhost:1/x"):  # fmt: skip
        response = demo.post(f"/v2/images/{image['id']}/import",
                             json={"method": {"name": "web-download", "uri": uri}})  # fmt: skip
        assert response.status_code == 400, (uri, response.text)
        assert "not allowed" in response.json()["message"], uri
    assert demo.get(f"/v2/images/{image['id']}/tasks").json()["tasks"] == []
    assert demo.image(image["id"])["status"] == "queued"
