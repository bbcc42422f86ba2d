"""Members (who shares, who accepts) and tags, with their errors."""

from __future__ import annotations

import pytest

from tests.images.differential.sides import Differs, Side, Sides

MEMBER_WHY = (
    "imagehop takes a member id that is a string of 1 to 64 characters (a project id); Glance 33 stores "
    "any JSON value, a number too"
)
LONG_MEMBER_WHY = (
    "imagehop takes a member id that is a string of 1 to 64 characters (a project id); Glance 33 passes a "
    "300-character one to its database, which refuses it (MySQL/MariaDB strict mode): 500"
)
UTF8_WHY = (
    "a tag in the URL is UTF-8: imagehop keeps 'ünï'; Glance 33 keeps the WSGI path's latin-1 reading of "
    "its bytes ('Ã¼nÃ¯')"
)
MEMBER_BODIES = [{}, {"member": ""}, {"member": 5}, {"member": "x" * 300}, {"member": "someone"},
                 {"member": "a", "b": 1}, [], None]  # fmt: skip


def test_members_lifecycle(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create(visibility="shared")
        other = s.projects["other"]
        base = f"/v2/images/{image_id}/members"
        out = [s.obs(s.req("GET", base), "content-type")]
        out.append(s.obs(s.req("POST", base, json_body={"member": other}), "content-type"))
        out.append(s.obs(s.req("POST", base, json_body={"member": other})))
        for who in ("owner", "other", "reader", "admin"):
            out.append(s.obs(s.req("GET", base, who=who)))
            out.append(s.obs(s.req("GET", f"{base}/{other}", who=who)))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}", who="other")))
        out.append(s.obs(s.req("PUT", f"{base}/{other}", json_body={"status": "accepted"})))
        out.append(s.obs(s.req("PUT", f"{base}/{other}", who="other", json_body={"status": "bogus"})))
        out.append(s.obs(s.req("PUT", f"{base}/{other}", who="other", json_body={})))
        out.append(s.obs(s.req("PUT", f"{base}/{other}", who="other", json_body={"status": "accepted"})))
        out.append(s.obs(s.req("PUT", f"{base}/{other}", who="other", json_body={"status": "rejected"})))
        out.append(s.obs(s.req("DELETE", f"{base}/{other}", who="other")))
        out.append(s.obs(s.req("DELETE", f"{base}/{other}", who="reader")))
        out.append(s.obs(s.req("DELETE", f"{base}/{other}")))
        out.append(s.obs(s.req("DELETE", f"{base}/{other}")))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}", who="other")))
        return out

    sides.compare(case)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"member": ""},
        {"member": 5},
        {"member": "x" * 300},
        {"member": "someone"},
        {"member": "a", "b": 1},
        [],
        None,
    ],
)
def test_member_bodies(sides: Sides, body: object) -> None:
    def case(s: Side) -> list:
        image_id = s.create(visibility="shared")
        raw = {"body": b"null" if body is None else __import__("json").dumps(body).encode(),
               "headers": {"Content-Type": "application/json"}}  # fmt: skip
        return [s.obs(s.req("POST", f"/v2/images/{image_id}/members", **raw))]

    differs = {5: [Differs(0, "status", 400, 200, MEMBER_WHY, whole_step=True)],
               "x" * 300: [Differs(0, "status", 400, 500, LONG_MEMBER_WHY, whole_step=True)]}  # fmt: skip
    sides.compare(case, *(differs.get(body.get("member"), []) if isinstance(body, dict) else []))


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_members_need_shared(sides: Sides, visibility: str) -> None:
    def case(s: Side) -> list:
        who = "admin" if visibility == "public" else "owner"
        image_id = s.create(who=who, visibility=visibility)
        out = [s.obs(s.req("POST", f"/v2/images/{image_id}/members", who=who,
                           json_body={"member": s.projects["other"]}))]  # fmt: skip
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}/members", who=who)))
        if visibility == "public":
            s.req("DELETE", f"/v2/images/{image_id}", who="admin")
        return out

    sides.compare(case)


def test_members_survive_visibility_changes(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create(visibility="shared")
        s.req("POST", f"/v2/images/{image_id}/members", json_body={"member": s.projects["other"]}).raise_for_status()
        out = [s.obs(s.patch(image_id, [{"op": "replace", "path": "/visibility", "value": "private"}]))]
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}/members")))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}", who="other")))
        out.append(s.obs(s.patch(image_id, [{"op": "replace", "path": "/visibility", "value": "shared"}])))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}/members")))
        return out

    sides.compare(case)


@pytest.mark.parametrize("tag", ["plain", "with space", "ünï", "a/b", "x" * 255, "x" * 256, "a,b", "%2F"])
def test_tags(sides: Sides, tag: str) -> None:
    def case(s: Side) -> list:
        image_id = s.create(tags=["keep"])
        from urllib.parse import quote

        path = f"/v2/images/{image_id}/tags/{quote(tag, safe='')}"
        out = [s.obs(s.req("PUT", path), "content-type")]
        out.append(s.obs(s.req("PUT", path)))
        out.append({"tags": sorted(s.show(image_id)["tags"])})
        out.append(s.obs(s.req("PUT", path, who="other")))
        out.append(s.obs(s.req("PUT", path, who="reader")))
        out.append(s.obs(s.req("DELETE", path)))
        out.append(s.obs(s.req("DELETE", path)))
        out.append({"tags": sorted(s.show(image_id)["tags"])})
        return out

    utf8 = Differs(2, "tags", ["keep", "ünï"], ["keep", "Ã¼nÃ¯"], UTF8_WHY)
    sides.compare(case, *([utf8] if tag == "ünï" else []))


def test_tag_limit(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create(tags=[f"t{i}" for i in range(127)])
        out = [s.obs(s.req("PUT", f"/v2/images/{image_id}/tags/last"))]
        out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/tags/over")))
        out.append(s.obs(s.req("POST", "/v2/images", json_body={"tags": [f"t{i}" for i in range(129)]})))
        out.append(
            s.obs(s.patch(image_id, [{"op": "replace", "path": "/tags", "value": [str(i) for i in range(129)]}]))
        )
        return out

    sides.compare(case)
