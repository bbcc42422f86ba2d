"""PATCH /v2/images/{id}: JSON-patch operations good and bad, both media types, who may change what."""

from __future__ import annotations

import json

import pytest

from tests.images.differential.sides import JSON, PATCH20, PATCH21, Differs, Side, Sides

CUSTOM_SCHEMA = (
    "imagehop's image schema has the custom properties of Glance's packaged schema-image.json and "
    "checks them; the Glance peer runs without that file"
)
STORES = "imagehop refuses 'stores' in a PATCH as in a create (read-only); Glance 33 stores it as a property"
NAMES = (
    "imagehop checks property names on PATCH as Glance does on create (1 to 255 characters); Glance 33 "
    "takes an empty name in a PATCH, and passes a longer one to its database, which refuses it (MySQL/MariaDB "
    "strict mode): 500"
)
GLANCE_500 = "Glance 33 fails with a 500 on this input; imagehop answers 400"


def refused(status: int, theirs: int, why: str) -> list[Differs]:
    """imagehop refuses what Glance takes: the PATCH (step 0) and so the image shown after it (step 1)."""
    return [Differs(0, "status", status, theirs, why, whole_step=True),
            Differs(1, "status", 200, 200, why, whole_step=True)]  # fmt: skip


PATCH_DIFFERENCES = {
    '[{"op": "add", "path": "/stores", "value": "local"}]': refused(403, 200, STORES),
    '[{"op": "add", "path": "/kernel_id", "value": "nope"}]': refused(400, 200, CUSTOM_SCHEMA),
    '[{"op": "add", "path": "/", "value": "empty"}]': refused(400, 200, NAMES),
    '[{"op": "add", "path": "/' + "x" * 256 + '", "value": "long"}]': refused(400, 500, NAMES),
    '[{"op": "add", "path": 5, "value": "v"}]': [Differs(0, "status", 400, 500, GLANCE_500, whole_step=True)],
}

# (ops, media type) each applied to a fresh queued image with property "p" and tag "t".
OPS = [
    [{"op": "add", "path": "/name", "value": "renamed"}],
    [{"op": "replace", "path": "/name", "value": None}],
    [{"op": "add", "path": "/q", "value": "new"}],
    [{"op": "add", "path": "/p", "value": "again"}],
    [{"op": "replace", "path": "/p", "value": "changed"}],
    [{"op": "replace", "path": "/missing", "value": "x"}],
    [{"op": "remove", "path": "/p"}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "remove", "path": "/name"}],
    [{"op": "remove", "path": "/min_ram"}],
    [{"op": "replace", "path": "/min_ram", "value": 1024}],
    [{"op": "replace", "path": "/min_ram", "value": -1}],
    [{"op": "replace", "path": "/min_ram", "value": "1"}],
    [{"op": "replace", "path": "/protected", "value": "true"}],
    [{"op": "replace", "path": "/visibility", "value": "public"}],
    [{"op": "replace", "path": "/visibility", "value": "community"}],
    [{"op": "replace", "path": "/visibility", "value": "private"}],
    [{"op": "replace", "path": "/visibility", "value": "bogus"}],
    [{"op": "replace", "path": "/os_hidden", "value": True}],
    [{"op": "replace", "path": "/owner", "value": "other"}],
    [{"op": "replace", "path": "/disk_format", "value": "qcow2"}],
    [{"op": "replace", "path": "/disk_format", "value": "floppy"}],
    [{"op": "replace", "path": "/container_format", "value": "ovf"}],
    [{"op": "replace", "path": "/tags", "value": ["x", "y", "x"]}],
    [{"op": "replace", "path": "/tags", "value": "x"}],
    [{"op": "add", "path": "/tags", "value": ["z"]}],
    [{"op": "remove", "path": "/tags"}],
    [{"op": "replace", "path": "/status", "value": "active"}],
    [{"op": "replace", "path": "/id", "value": "x"}],
    [{"op": "replace", "path": "/size", "value": 5}],
    [{"op": "replace", "path": "/checksum", "value": "x"}],
    [{"op": "add", "path": "/stores", "value": "local"}],
    [{"op": "add", "path": "/os_glance_x", "value": "v"}],
    [{"op": "add", "path": "/os_glance_failed_import", "value": "v"}],
    [{"op": "add", "path": "/deleted", "value": "v"}],
    [{"op": "add", "path": "/location", "value": "v"}],
    [{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}],
    [{"op": "replace", "path": "/locations", "value": []}],
    [{"op": "add", "path": "/q", "value": 5}],
    [{"op": "add", "path": "/q", "value": None}],
    [{"op": "add", "path": "/kernel_id", "value": "nope"}],
    [{"op": "add", "path": "/a~1b", "value": "slash"}],
    [{"op": "add", "path": "/a~0b", "value": "tilde"}],
    [{"op": "add", "path": "/a~2b", "value": "bad"}],
    [{"op": "add", "path": "/a/b", "value": "nested"}],
    [{"op": "add", "path": "a", "value": "no slash"}],
    [{"op": "add", "path": "/a/", "value": "trailing"}],
    [{"op": "add", "path": "//a", "value": "double"}],
    [{"op": "add", "path": "/", "value": "empty"}],
    [{"op": "add", "path": "/" + "x" * 256, "value": "long"}],
    [{"op": "move", "from": "/p", "path": "/q"}],
    [{"op": "copy", "from": "/p", "path": "/q"}],
    [{"op": "test", "path": "/p", "value": "v"}],
    [{"op": "add", "path": "/q"}],
    [{"path": "/q", "value": "v"}],
    [{"op": "add", "value": "v"}],
    [{"op": "add", "path": 5, "value": "v"}],
    [{"op": "add", "path": "/q", "value": "v", "extra": 1}],
    ["add"],
    [],
    [{"op": "add", "path": "/q", "value": "1"}, {"op": "replace", "path": "/missing", "value": "x"}],
    [{"op": "add", "path": "/q", "value": "1"}, {"op": "remove", "path": "/q"}],
    [{"op": "add", "path": "/q", "value": "1"}, {"op": "replace", "path": "/q", "value": "2"}],
]


@pytest.mark.parametrize("ops", OPS, ids=[json.dumps(o)[:60] for o in OPS])
def test_v21_operations(sides: Sides, ops: list) -> None:
    def case(s: Side) -> list:
        image_id = s.create(p="v", tags=["t"])
        response = s.patch(image_id, ops)
        return [s.obs(response, "content-type"), s.obs(s.req("GET", f"/v2/images/{image_id}"))]

    sides.compare(case, *PATCH_DIFFERENCES.get(json.dumps(ops), []))


OPS20 = [
    [{"add": "/q", "value": "new"}],
    [{"add": "/p", "value": "again"}],
    [{"add": "/name", "value": "again"}],
    [{"replace": "/p", "value": "changed"}],
    [{"replace": "/missing", "value": "x"}],
    [{"remove": "/p"}],
    [{"add": "/q", "value": "v", "replace": "/p"}],
    [{"op": "add", "path": "/q", "value": "v"}],
    [{"add": "/q"}],
]


@pytest.mark.parametrize("ops", OPS20, ids=[json.dumps(o)[:60] for o in OPS20])
def test_v20_operations(sides: Sides, ops: list) -> None:
    def case(s: Side) -> list:
        image_id = s.create(p="v")
        response = s.patch(image_id, ops, media=PATCH20)
        return [s.obs(response, "content-type"), s.obs(s.req("GET", f"/v2/images/{image_id}"))]

    sides.compare(case)


@pytest.mark.parametrize(
    "content_type, raw",
    [(JSON, '[{"op": "add", "path": "/q", "value": "v"}]'), ("application/json-patch+json", "[]"), (None, "[]"),
     (PATCH21 + "; charset=utf-8", "[]"), (PATCH21, "{"), (PATCH21, "{}"), (PATCH21, ""), (PATCH21, "null"),
     (PATCH21, '"add"'), ("text/plain", "[]")],
)  # fmt: skip
def test_patch_bodies_and_media_types(sides: Sides, content_type: str | None, raw: str) -> None:
    def case(s: Side) -> list:
        image_id = s.create()
        headers = {"Content-Type": content_type} if content_type else {}
        response = s.req("PATCH", f"/v2/images/{image_id}", body=raw, headers=headers)
        return [s.obs(response, "content-type", "accept-patch")]

    sides.compare(case)


@pytest.mark.parametrize("who", ["other", "reader", "admin", "anon"])
def test_who_may_patch(sides: Sides, who: str) -> None:
    def case(s: Side) -> list:
        image_id = s.create()
        out = [s.obs(s.patch(image_id, [{"op": "add", "path": "/q", "value": "v"}], who=who))]
        s.req("PATCH", f"/v2/images/{image_id}", who="admin", body="[]", headers={"Content-Type": PATCH21})
        s.create(who="other", visibility="community")
        public = s.create(who="admin", visibility="public")
        out.append(s.obs(s.patch(public, [{"op": "add", "path": "/q", "value": "v"}], who=who)))
        s.req("DELETE", f"/v2/images/{public}", who="admin")
        return out

    sides.compare(case)


def test_patch_active_image(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create(p="v")
        s.upload(image_id)
        out = []
        for ops in (
            [{"op": "replace", "path": "/disk_format", "value": "qcow2"}],
            [{"op": "replace", "path": "/disk_format", "value": "raw"}],
            [{"op": "replace", "path": "/container_format", "value": "ovf"}],
            [{"op": "add", "path": "/q", "value": "v"}],
            [{"op": "replace", "path": "/visibility", "value": "private"}],
        ):
            out.append(s.obs(s.patch(image_id, ops)))
        return out

    sides.compare(case)
