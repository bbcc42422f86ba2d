"""Discovery: the versions document, the schemas, ``/v2/info/import``, ``/v2/info/stores`` (and its
admin-only detail) and ``/v2/info/usage``."""

from __future__ import annotations

import pytest

from tests.images.differential.sides import OURS_ONLY_PREFIX, Differs, Side, Sides

VERSIONS_WHY = (
    "imagehop offers v2.0 to v2.12, v2.12 CURRENT; Glance 33 lists v2.0 to v2.13, v2.15 and v2.17 "
    "(CURRENT): the cache and new location APIs imagehop does not implement"
)
USAGE_WHY = (
    "imagehop always reports its quotas as a Glance with use_keystone_limits does (limit -1 when unset); "
    "a Glance without unified limits, as the peer, reports {}"
)
SCHEMA_WHY = (
    "imagehop's image schema also lists the custom properties of Glance's packaged schema-image.json "
    "and its own read-only imagehop.content_digest and imagehop.upload_kept"
)


def test_versions(sides: Sides) -> None:
    def case(s: Side) -> list:
        out = []
        for path in ("/", "/versions"):
            response = s.req("GET", path, who="anon")
            seen = s.obs(response, "content-type", "location", body=None)
            versions = response.json()["versions"]
            seen["ids"] = sorted(v["id"] for v in versions)
            seen["current"] = [v["id"] for v in versions if v["status"] == "CURRENT"]
            seen["links"] = sorted({s.text(link["href"]) for v in versions for link in v["links"]})
            out.append(seen)
        return out

    ours = [f"v2.{n}" for n in range(13)]
    theirs = [f"v2.{n}" for n in (*range(14), 15, 17)]
    differs = []
    for step in (0, 1):
        differs.append(Differs(step, "ids", sorted(ours), sorted(theirs), VERSIONS_WHY))
        differs.append(Differs(step, "current", ["v2.12"], ["v2.17"], VERSIONS_WHY))
    sides.compare(case, *differs)


@pytest.mark.parametrize("name", ["image", "images", "member", "members", "task", "tasks", "nothing"])
def test_schemas(sides: Sides, name: str) -> None:
    def case(s: Side) -> list:
        response = s.req("GET", f"/v2/schemas/{name}")
        seen = s.obs(response, "content-type", body="keys" if response.status_code == 200 else "auto")
        if response.status_code == 200 and name in ("image", "images"):
            schema = response.json()
            properties = (
                schema["properties"] if name == "image" else schema["properties"]["images"]["items"]["properties"]
            )
            seen["properties"] = sorted(properties)
            seen["additionalProperties"] = schema.get("additionalProperties") if name == "image" else None
        elif response.status_code == 200:
            seen["properties"] = sorted(response.json()["properties"])
        return [seen]

    differs = []
    if name in ("image", "images"):
        custom = [
            "architecture",
            "cinder_encryption_key_deletion_policy",
            "cinder_encryption_key_id",
            "description",
            "imagehop.content_digest",
            "imagehop.upload_kept",
            "instance_uuid",
            "kernel_id",
            "os_distro",
            "os_version",
            "ramdisk_id",
        ]
        base = [
            "checksum",
            "container_format",
            "created_at",
            "direct_url",
            "disk_format",
            "file",
            "id",
            "locations",
            "min_disk",
            "min_ram",
            "name",
            "os_hash_algo",
            "os_hash_value",
            "os_hidden",
            "owner",
            "protected",
            "schema",
            "self",
            "size",
            "status",
            "stores",
            "tags",
            "updated_at",
            "virtual_size",
            "visibility",
        ]
        differs.append(Differs(0, "properties", sorted(base + custom), base, SCHEMA_WHY))
    sides.compare(case, *differs)


def test_info_import_and_stores(sides: Sides) -> None:
    def case(s: Side) -> list:
        methods = s.req("GET", "/v2/info/import")
        seen = s.obs(methods, "content-type")
        value = seen["body"]["import-methods"]["value"]
        value[:] = [m for m in value if not m.startswith(OURS_ONLY_PREFIX)]  # imagehop-delta: imagehop's own
        out = [seen]
        out.append(s.obs(s.req("GET", "/v2/info/stores"), "content-type"))
        out.append(s.obs(s.req("GET", "/v2/info/stores", who="reader")))
        out.append(s.obs(s.req("GET", "/v2/info/stores/detail")))
        out.append(s.obs(s.req("GET", "/v2/info/stores/detail", who="reader")))
        detail = s.req("GET", "/v2/info/stores/detail", who="admin")
        seen = s.obs(detail, "content-type", body=None)
        [store] = detail.json()["stores"]
        seen["store"] = {k: v for k, v in store.items() if k != "properties"}
        seen["properties"] = sorted(store["properties"])
        out.append(seen)
        out.append(s.obs(s.req("GET", "/v2/info/import", who="anon")))
        return out

    why = (
        "the detail's properties: imagehop does not show where it keeps the data (Glance's data_dir, a path on "
        "its host)"
    )
    sides.compare(case, Differs(5, "properties", ["chunk_size", "thin_provisioning"],
                                ["chunk_size", "data_dir", "thin_provisioning"], why))  # fmt: skip


def test_info_usage(sides: Sides) -> None:
    def case(s: Side) -> list:
        response = s.req("GET", "/v2/info/usage")
        seen = s.obs(response, "content-type", body="keys")
        seen["usage"] = sorted(response.json()["usage"])
        return [seen, s.obs(s.req("GET", "/v2/info/usage", who="anon"))]

    quotas = ["image_count_total", "image_count_uploading", "image_size_total", "image_stage_total"]
    sides.compare(case, Differs(0, "usage", quotas, [], USAGE_WHY))
