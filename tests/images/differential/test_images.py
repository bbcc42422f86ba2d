"""Image records: create (with properties, tags, an id; bad bodies), show, delete, protected, 404s, and
the headers of the answers, as Glance 33 gives them."""

from __future__ import annotations

import pytest

from tests.images.differential.sides import JSON, Differs, Side, Sides

CREATE_HEADERS = ("content-type", "location", "openstack-image-import-methods", "openstack-image-store-ids")
LOCATION_WHY = (
    "Glance's Location is webob's absolute form of /v2/images/<id> on the host, without its /image "
    "mount (a URL that does not answer); imagehop sends the path /v2/images/<id>"
)


def location(step: int, image: str = "<id-1>") -> Differs:
    return Differs(step, "location", f"/v2/images/{image}", f"BASE/v2/images/{image}", LOCATION_WHY)


GLANCE_500 = "Glance 33 fails with a 500 on this input; imagehop answers 400"
CUSTOM_SCHEMA = (
    "imagehop's image schema has the custom properties of Glance's packaged schema-image.json and "
    "checks them; the Glance peer runs without that file"
)


def test_create_show_delete(sides: Sides) -> None:
    def case(s: Side) -> list:
        body = {"name": "web", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512, "min_disk": 2,
                "tags": ["a", "b", "a"], "os_distro": "ubuntu", "com.example.k": "v", "case": s.tag}  # fmt: skip
        created = s.req("POST", "/v2/images", json_body=body)
        image_id = created.json()["id"]
        out = [s.obs(created, *CREATE_HEADERS)]
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}"), "content-type"))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}", who="reader")))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}", who="other")))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}", who="reader")))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}", who="other")))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}")))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}")))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}")))
        return out

    sides.compare(case, location(0))


def test_create_minimal_and_with_id(sides: Sides) -> None:
    def case(s: Side) -> list:
        out = [s.obs(s.req("POST", "/v2/images", json_body={}), *CREATE_HEADERS)]
        image_id = s.new_id()
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"id": image_id, "name": "mine"}), "location"))
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"id": image_id})))
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"id": image_id}, who="other")))
        s.req("DELETE", f"/v2/images/{image_id}").raise_for_status()
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"id": image_id})))
        return out

    sides.compare(case, location(0), location(1, "<id-2>"))


BAD_BODIES = [
    {"id": "not-a-uuid"},
    {"id": 5},
    {"name": "x" * 256},
    {"name": 5},
    {"visibility": "everyone"},
    {"visibility": "public"},
    {"visibility": "private"},
    {"visibility": "community"},
    {"protected": "yes"},
    {"os_hidden": 1},
    {"min_ram": -1},
    {"min_ram": "512"},
    {"min_disk": 2**31},
    {"min_disk": 1.5},
    {"disk_format": "floppy"},
    {"container_format": "zip"},
    {"tags": "a,b"},
    {"tags": [1]},
    {"tags": ["x" * 256]},
    {"status": "active"},
    {"checksum": "abc"},
    {"size": 5},
    {"virtual_size": 5},
    {"created_at": "2020-01-01T00:00:00Z"},
    {"self": "/x"},
    {"file": "/x"},
    {"schema": "/x"},
    {"stores": "local"},
    {"os_hash_value": "abc"},
    {"locations": []},
    {"location": "http://x"},
    {"deleted": "false"},
    {"os_glance_foo": "x"},
    {"os_glance_importing_to_stores": "local"},
    {"owner": "someone-else"},
    {"prop": 5},
    {"prop": None},
    {"prop": ["a"]},
    {"x" * 256: "v"},
    {"kernel_id": "not-a-uuid"},
    {"kernel_id": "5a6a30a4-7d4e-4b0e-b7c0-b07b5f0a0c00"},
    {"cinder_encryption_key_deletion_policy": "never"},
    {"description": 5},
    {"architecture": None},
]


BODY_DIFFERENCES = {
    "kernel_id=not-a-uuid": Differs(0, "status", 400, 201, CUSTOM_SCHEMA, whole_step=True),
    "cinder_encryption_ke=never": Differs(0, "status", 400, 201, CUSTOM_SCHEMA, whole_step=True),
}


def body_id(body: dict) -> str:
    return ",".join(f"{k[:20]}={str(v)[:40]}" for k, v in body.items())


@pytest.mark.parametrize("body", BAD_BODIES, ids=[body_id(b) for b in BAD_BODIES])
def test_create_bodies(sides: Sides, body: dict) -> None:
    def case(s: Side) -> list:
        response = s.req("POST", "/v2/images", json_body=body)
        seen = s.obs(response, "content-type")
        if response.status_code == 201:
            seen["body"] = sorted(response.json())
            s.req("DELETE", f"/v2/images/{response.json()['id']}", who="admin")
        return [seen]

    known = BODY_DIFFERENCES.get(body_id(body))
    sides.compare(case, *([known] if known else []))


@pytest.mark.parametrize(
    "raw, content_type",
    [("{", JSON), ("[]", JSON), ('"x"', JSON), ("null", JSON), ("", JSON), ('{"name": "a"}', "text/plain"),
     ('{"name": "a"}', None), ("{\"name\": \"\\ud800\"}", JSON), ("\xff", JSON)],
)  # fmt: skip
def test_create_raw_bodies(sides: Sides, raw: str, content_type: str | None) -> None:
    def case(s: Side) -> list:
        headers = {"Content-Type": content_type} if content_type else {}
        response = s.req("POST", "/v2/images", body=raw.encode("utf-8", "surrogatepass"), headers=headers)
        if response.status_code == 201:
            s.req("DELETE", f"/v2/images/{response.json()['id']}", who="admin")
        return [s.obs(response, "content-type")]

    glance_fails = raw in ("[]", '{"name": "\\ud800"}')
    sides.compare(case, *([Differs(0, "status", 400, 500, GLANCE_500, whole_step=True)] if glance_fails else []))


def test_protected(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create(protected=True)
        out = [s.obs(s.req("DELETE", f"/v2/images/{image_id}"))]
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}", who="admin")))
        out.append(s.obs(s.patch(image_id, [{"op": "replace", "path": "/protected", "value": False}])))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}")))
        return out

    sides.compare(case)


@pytest.mark.parametrize("who", ["owner", "anon"])
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/v2/images/{missing}"), ("GET", "/v2/images/not-a-uuid"), ("DELETE", "/v2/images/{missing}"),
     ("PATCH", "/v2/images/{missing}"), ("GET", "/v2/images/{missing}/file"), ("PUT", "/v2/images/{missing}/file"),
     ("PUT", "/v2/images/{missing}/stage"), ("POST", "/v2/images/{missing}/import"),
     ("POST", "/v2/images/{missing}/actions/deactivate"), ("POST", "/v2/images/{missing}/actions/reactivate"),
     ("PUT", "/v2/images/{missing}/tags/t"), ("DELETE", "/v2/images/{missing}/tags/t"),
     ("GET", "/v2/images/{missing}/members"), ("POST", "/v2/images/{missing}/members"),
     ("GET", "/v2/images/{missing}/members/x"), ("GET", "/v2/images/{missing}/tasks"), ("GET", "/v2/nothing"),
     ("GET", "/v2/images/{missing}/nothing"), ("GET", "/v2/images/"), ("DELETE", "/v2/images/")],
)  # fmt: skip
def test_missing_things(sides: Sides, method: str, path: str, who: str) -> None:
    def case(s: Side) -> list:
        target = path.replace("{missing}", s.new_id())
        headers = {"Content-Type": "application/octet-stream"} if method == "PUT" else {}
        if method == "PATCH":
            headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        body = b"[]" if method == "PATCH" else (b"{}" if method == "POST" else None)
        if method == "POST":
            headers = {"Content-Type": JSON}
        response = s.req(method, target, who=who, body=body, headers=headers)
        return [s.obs(response, "content-type", "www-authenticate")]

    sides.compare(case)


@pytest.mark.parametrize(
    "method, path",
    [("PUT", "/v2/images"), ("DELETE", "/v2/images"), ("POST", "/v2/images/{id}"), ("PUT", "/v2/images/{id}"),
     ("POST", "/v2/images/{id}/file"), ("DELETE", "/v2/images/{id}/file"), ("GET", "/v2/images/{id}/stage"),
     ("GET", "/v2/images/{id}/import"), ("GET", "/v2/images/{id}/actions/deactivate"),
     ("GET", "/v2/images/{id}/tags/t"), ("PUT", "/v2/images/{id}/members"), ("POST", "/v2/images/{id}/members/x"),
     ("POST", "/v2/schemas/image"), ("POST", "/v2/info/import"), ("HEAD", "/v2/images/{id}"),
     ("HEAD", "/v2/images")],
)  # fmt: skip
def test_methods_not_allowed(sides: Sides, method: str, path: str) -> None:
    def case(s: Side) -> list:
        image_id = s.create()
        response = s.req(method, path.replace("{id}", image_id))
        return [s.obs(response, "allow", "content-type")]

    head = Differs(0, "status", 200, 405, "imagehop answers HEAD as GET without a body; Glance 33 answers 405",
                   whole_step=True)  # fmt: skip
    sides.compare(case, *([head] if method == "HEAD" else []))


@pytest.mark.parametrize("size", [100_000, 114_688, 114_689, 300_000])
def test_large_json_bodies(sides: Sides, size: int) -> None:
    """Glance's max_request_body_size (112 KiB): a create body just under, at and over it."""

    def case(s: Side) -> list:
        body = '{"name": "big", "description": "' + "x" * (size - 34) + '"}'
        assert len(body) == size
        response = s.req("POST", "/v2/images", body=body, headers={"Content-Type": JSON})
        if response.status_code == 201:
            s.req("DELETE", f"/v2/images/{response.json()['id']}")
        return [s.obs(response, "content-type", body="status")]

    why = (
        "imagehop refuses a JSON body over 112 KiB (Glance's max_request_body_size, as Keystone and Nova) with "
        "413 before reading it, and stores a property value of any length below that; the Glance 33 peer reads "
        "the body and passes a value over 65,535 bytes to its database, which refuses it (a MySQL/MariaDB TEXT "
        "column in strict mode): 500"
    )
    sides.compare(case, Differs(0, "status", 413 if size > 114_688 else 201, 500, why, whole_step=True))
