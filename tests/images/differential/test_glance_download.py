"""glance-download, Glance's inter-region import: the target region (ORD) pulls an image from another region
(IAD) of the same Keystone with the caller's token. A good pull (the image becomes active with the source's
formats and the properties Glance copies; the task), and every way it is refused or fails: at the request
(400: no region, no or a malformed source id; 409: the target not queued) and in the task (an unknown region,
a source that does not exist, is not active or is another project's), with the image and task afterwards."""

from __future__ import annotations

import pytest

from tests.images.differential.sides import Differs, Side, Sides
from tests.support import disk_bytes, wait_for

IMPORTING, FAILED = "os_glance_importing_to_stores", "os_glance_failed_import"

DATA = disk_bytes(192 << 10, seed=12)
# On the source: what Glance's default glance_download_properties.extra_properties copy (hw_*, trait:*,
# os_distro, os_secure_boot, os_type) and what they do not.
SOURCE_PROPERTIES = {"hw_disk_bus": "scsi", "hw_qemu_guest_agent": "yes", "os_distro": "ubuntu", "os_type": "linux",
                     "trait:CUSTOM_X": "required", "os_secure_boot": "optional", "custom": "not copied",
                     "os_version": "22.04"}  # fmt: skip


def ended(s: Side, image_id: str) -> list:
    """Once the image's one task has ended: the image, its store properties, the task and the task's message
    (each a step of its own, so a documented difference names one)."""

    def check() -> list | None:
        tasks = s.req("GET", f"/v2/images/{image_id}/tasks").json()["tasks"]
        image = s.show(image_id)
        busy = not tasks or tasks[0]["status"] in ("pending", "processing") or image.get("os_glance_import_task")
        return None if busy else [image, tasks]

    image, tasks = wait_for(check, f"{s.name}: the glance-download into {image_id} ends", timeout=120)
    stores = {"importing": image.pop(IMPORTING, None), "failed": image.pop(FAILED, None)}
    message = tasks[0].pop("message")
    seen = [{"image": s.value(image)}, stores, {"tasks": s.value(tasks)}]
    return [*seen, {"message": s.text(message)}]  # ids numbered in the order of the steps


# What Glance 33 does where imagehop does otherwise, on purpose (docs/api-coverage.md): when the task fails
# before any byte is stored, Glance's task message hides the cause, and the image keeps saying it imports into
# 'local' (its flow reverts before the store bookkeeping); imagehop says why, and reports the store as failed,
# as both do for a failed web-download.
GLANCE_FAILURE = "Task failed due to Internal Error"


def failed_as_documented(why: str, message: str) -> tuple[Differs, ...]:
    return (
        Differs(2, "importing", "", "local", "Glance 33 leaves the failed store in os_glance_importing_to_stores"),
        Differs(2, "failed", "local", "", "Glance 33 leaves os_glance_failed_import empty"),
        Differs(4, "message", message, GLANCE_FAILURE, why),
    )


def pull(s: Side, image_id: str, method: dict, who: str = "owner") -> dict:
    """The answer to POST /import; an error's message too (glanceclient and openstacksdk show it)."""
    body = {"method": {"name": "glance-download", **method}}
    response = s.req("POST", f"/v2/images/{image_id}/import", who=who, json_body=body)
    return s.obs(response, "content-type", body="message")


def active_source(s: Side, name: str, **properties: str) -> str:
    """An active image of ``DATA`` in IAD, the region each case pulls from."""
    image = s.create(region="IAD", name=name, **properties)
    s.upload(image, DATA, region="IAD")
    return image


def test_glance_download_good(sides: Sides) -> None:
    def case(s: Side) -> list:
        source = active_source(s, "source", **SOURCE_PROPERTIES)
        target = s.create(name="target", disk_format="qcow2", container_format="ovf", hw_disk_bus="ide")
        out = [pull(s, target, {"glance_image_id": source, "glance_region": "IAD",
                                "glance_service_interface": "public"})]  # fmt: skip
        out += ended(s, target)
        out.append(s.obs(s.req("GET", f"/v2/images/{target}/file", accept=None), "content-md5", "content-length",
                         body=None))  # fmt: skip
        return out

    sides.compare(case)


def test_glance_download_default_interface(sides: Sides) -> None:
    """Without ``glance_service_interface`` Glance records ``public`` in the task's request."""

    def case(s: Side) -> list:
        source = active_source(s, "source")
        target = s.create(name="target")
        return [pull(s, target, {"glance_image_id": source, "glance_region": "IAD"}), *ended(s, target)]

    sides.compare(case)


def source_of(s: Side, kind: str) -> str:
    if kind == "missing":
        return s.new_id()
    if kind == "queued":
        return s.create(region="IAD", name="not active")
    if kind == "deactivated":
        image = active_source(s, "deactivated")
        assert s.req("POST", f"/v2/images/{image}/actions/deactivate", region="IAD").status_code == 204
        return image
    assert kind == "other project's"
    image = s.create(who="other", region="IAD", name="private")
    s.upload(image, DATA, who="other", region="IAD")
    return image


BAD_SOURCES = {
    "missing": "Remote image <id-3> in IAD: HTTP 404.",
    "queued": "Source image status should be active instead of queued",
    "deactivated": "Source image status should be active instead of deactivated",
    "other project's": "Remote image <id-3> in IAD: HTTP 404.",
}


@pytest.mark.parametrize("kind", list(BAD_SOURCES))
def test_glance_download_bad_source(sides: Sides, kind: str) -> None:
    def case(s: Side) -> list:
        source = source_of(s, kind)
        target = s.create(name="target", hw_disk_bus="ide")
        out = [pull(s, target, {"glance_image_id": source, "glance_region": "IAD"})]
        return out + ended(s, target)

    sides.compare(case, *failed_as_documented("Glance 33 hides why the source cannot be read", BAD_SOURCES[kind]))


def test_glance_download_unknown_region(sides: Sides) -> None:
    def case(s: Side) -> list:
        source = active_source(s, "source")
        target = s.create(name="target")
        return [pull(s, target, {"glance_image_id": source, "glance_region": "NOWHERE"}), *ended(s, target)]

    sides.compare(
        case,
        *failed_as_documented(
            "Glance 33 hides that the region has no image endpoint",
            "No image endpoint for region NOWHERE in the service catalog.",
        ),
    )


REFUSALS = [
    ("no glance_image_id", {"glance_region": "IAD"}),
    ("no glance_region", {"glance_image_id": "<source>"}),
    ("neither", {}),
    ("id not a uuid", {"glance_image_id": "not-a-uuid", "glance_region": "IAD"}),
]


@pytest.mark.parametrize("label, method", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_glance_download_refused(sides: Sides, label: str, method: dict) -> None:
    def case(s: Side) -> list:
        source = active_source(s, "source")
        target = s.create(name="target")
        sent = {k: source if v == "<source>" else v for k, v in method.items()}
        out = [pull(s, target, sent)]
        image = s.show(target)
        out.append({"image": s.value(image)})
        out.append(s.obs(s.req("GET", f"/v2/images/{target}/tasks")))
        return out

    sides.compare(case, label=label)


def test_glance_download_target_not_queued(sides: Sides) -> None:
    def case(s: Side) -> list:
        source = active_source(s, "source")
        target = s.create(name="target")
        s.upload(target, DATA)
        out = [pull(s, target, {"glance_image_id": source, "glance_region": "IAD"})]
        out.append(pull(s, target, {"glance_image_id": source, "glance_region": "IAD"}, who="other"))
        out.append(pull(s, target, {"glance_image_id": source, "glance_region": "IAD"}, who="reader"))
        return out

    sides.compare(case)
