"""`imagehop copy`: the whole walkthrough (export, move, import, re-tag, find, verify) in one call.

Each step is recorded in the journal when it finishes, so running the same command again after a
crash, a Ctrl-C or a failure continues from the first unfinished step. Everything goes over HTTP
(Glance v2 with Rackspace-style tasks, and Swift), so a source or target can be any cloud offering
those APIs.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagehop.transfer.clouds import CloudSession
from imagehop.transfer.glance import GlanceClient, GlanceError, user_properties
from imagehop.transfer.journal import Journal
from imagehop.transfer.mover import DEFAULT_SEGMENT_SIZE, MoveError, MoveResult, move_object
from imagehop.transfer.swift import SwiftClient, SwiftError

CONTENT_DIGEST = "imagehop.content_digest"
SOURCE_PROPERTY = "imagehop.source"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
EXPORT_BLOCKING = ("com.rackspace__1__options",)


class CopyError(Exception):
    """The copy stopped; the message says why and what to do next."""


@dataclass
class Endpoint:
    """One side of a copy: a cloud and a region in it."""

    cloud: CloudSession
    region: str

    def __post_init__(self) -> None:
        self.glance = GlanceClient(self.cloud, self.region)
        self.swift = SwiftClient(self.cloud, self.region)

    @property
    def label(self) -> str:
        return f"{self.cloud.name}/{self.region}"

    @property
    def project_id(self) -> str:
        return self.cloud.session.get_project_id()


@dataclass
class CopyOptions:
    tag: tuple[str, str] | None = None
    container: str = "imagehop-exports"
    parallel: int = 4
    segment_size: int = DEFAULT_SEGMENT_SIZE
    keep_exported: bool = False
    dry_run: bool = False
    poll_interval: float = 30.0


@dataclass
class CopyReport:
    """What happened, for the final table or the ``--json`` document."""

    source_image: str
    source_region: str
    target_region: str
    coordinating_property: str
    target_image: str | None = None
    digest: str | None = None
    verified_by: str = ""
    bytes_moved: int = 0
    seconds: float = 0.0
    already_done: bool = False
    steps: list[str] = field(default_factory=list)
    move: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Progress = Callable[[str, dict[str, Any]], None]


def find_source_image(glance: GlanceClient, ref: str) -> dict[str, Any]:
    """An image by id, by ``KEY=VALUE`` property, or by name: exactly one must match."""
    if UUID_RE.match(ref):
        image = glance.get_image(ref)
        if image is None:
            raise CopyError(f"no image {ref} in {glance.region}")
        return image
    if "=" in ref:
        key, value = ref.split("=", 1)
        matches, how = glance.find_images(**{key: value}), f"with {key}={value}"
    else:
        matches, how = glance.find_images(name=ref), f"named {ref!r}"
    if not matches:
        raise CopyError(f"no image {how} in {glance.region}")
    if len(matches) > 1:
        ids = ", ".join(m["id"] for m in matches[:5])
        raise CopyError(f"{len(matches)} images {how} in {glance.region} ({ids}): name one by id")
    return matches[0]


def check_exportable(image: dict[str, Any], project_id: str) -> None:
    """What Rackspace checks when the export task runs, checked before any slow step."""
    if image.get("owner") != project_id:
        raise CopyError(
            f"image {image['id']} belongs to {image.get('owner')}, not to your project {project_id}: only the owner "
            "can export it. Boot a server from it and image that server to get a copy you own."
        )
    if image.get("status") != "active":
        raise CopyError(f"image {image['id']} is {image.get('status')}: only active images can be exported")
    options = image.get("com.rackspace__1__options", "0")
    if options not in ("0", "", None) or str(image.get("os_type", "")).lower() == "windows":
        raise CopyError(
            f"image {image['id']} cannot be exported due to licensing restrictions "
            f"(com.rackspace__1__options={options!r}, os_type={image.get('os_type')!r})"
        )


def copy_image(
    ref: str,
    source: Endpoint,
    target: Endpoint,
    options: CopyOptions,
    journal: Journal,
    progress: Progress | None = None,
) -> CopyReport:
    started = time.monotonic()
    say = progress or (lambda _phase, _info: None)
    source.glance.poll_interval = target.glance.poll_interval = options.poll_interval

    image = find_source_image(source.glance, ref)
    check_exportable(image, source.project_id)
    key, value = options.tag or (SOURCE_PROPERTY, f"{source.region}/{image['id']}")
    report = CopyReport(image["id"], source.label, target.label, f"{key}={value}", digest=image.get(CONTENT_DIGEST))
    job = (
        "copy:"
        + hashlib.sha256(
            "\n".join([source.swift.storage_url, image["id"], target.swift.storage_url, key, value]).encode()
        ).hexdigest()[:32]
    )
    state = journal.open_job(job)

    def step(name: str, **info: Any) -> None:
        state[name] = info or True
        journal.save_state(job, state)
        report.steps.append(name)

    existing = _already_copied(target.glance, key, value, image)
    if existing is not None:
        report.target_image, report.already_done = existing["id"], True
        report.verified_by = "content digest" if image.get(CONTENT_DIGEST) else "size"
        report.seconds = time.monotonic() - started
        say("done", {"image": existing["id"], "already": True})
        return report
    if options.dry_run:
        report.seconds = time.monotonic() - started
        return report

    # 1. the coordinating property on the source image
    if image.get(key) != value:
        image = source.glance.patch(image["id"], {key: value}, image)
    props = user_properties(image)
    obj = f"{image['id']}.vhd"

    # 2. export
    if "exported" not in state:
        source.swift.ensure_container(options.container)
        if source.swift.head_object(options.container, obj) is not None:
            # A leftover of a run the journal does not know: Rackspace refuses to overwrite it.
            source.swift.delete_object(options.container, obj, large=True)
        task = source.glance.create_task(
            "export", {"image_uuid": image["id"], "receiving_swift_container": options.container}
        )
        say("export", {"task": task["id"], "status": task["status"]})
        task = source.glance.wait_task(task["id"], lambda t: say("export", t))
        if task["status"] != "success":
            raise CopyError(f"the export task {task['id']} in {source.label} failed: {task.get('message')}")
        step("exported", task=task["id"], location=task["result"]["export_location"])
    location = state["exported"]["location"]
    container, obj = location.split("/", 1)

    # 3. move
    if "moved" not in state:
        say("move", {"object": location})
        try:
            moved: MoveResult = move_object(
                source.swift, container, obj, target.swift, options.container, obj,
                journal=journal, parallel=options.parallel, segment_size=options.segment_size,
                progress=lambda n: say("bytes", {"n": n}),
            )  # fmt: skip
        except (MoveError, SwiftError) as exc:
            raise CopyError(f"moving {location} to {target.label} stopped: {exc}") from exc
        step("moved", size=moved.size, segments=moved.segments, sent=moved.segments_sent, bytes=moved.bytes_sent,
             verified_by=moved.verified_by)  # fmt: skip
    report.move = state["moved"] if isinstance(state["moved"], dict) else None
    report.bytes_moved = report.move["bytes"] if report.move else 0

    # 4. import (only the name travels in the task: Rackspace refuses any other property there)
    if "imported" not in state:
        task = target.glance.create_task(
            "import",
            {
                "import_from": f"{options.container}/{obj}",
                "import_from_format": "vhd",
                "image_properties": {"name": image.get("name") or image["id"]},
            },
        )
        say("import", {"task": task["id"], "status": task["status"]})
        task = target.glance.wait_task(task["id"], lambda t: say("import", t))
        if task["status"] != "success":
            raise CopyError(f"the import task {task['id']} in {target.label} failed: {task.get('message')}")
        step("imported", task=task["id"], image=task["result"]["image_id"])
    new_id = state["imported"]["image"]
    report.target_image = new_id

    # 5. every user property, the coordinating one included
    new_image = target.glance.get_image(new_id)
    if new_image is None:
        raise CopyError(f"the imported image {new_id} vanished from {target.label}; run the copy again")
    new_image = target.glance.patch(new_id, {**props, key: value}, new_image)
    step("tagged", properties=len(props))

    # 6. verify
    report.verified_by = verify(image, new_image)
    step("verified", by=report.verified_by)

    # 7. clean up what was exported, in both regions
    if not options.keep_exported:
        for side in (source, target):
            try:
                side.swift.delete_object(options.container, obj, large=True)
            except SwiftError as exc:
                say("warning", {"message": f"could not delete {options.container}/{obj} in {side.label}: {exc}"})
        step("cleaned")
    journal.finish_job(job)
    report.seconds = time.monotonic() - started
    say("done", {"image": new_id})
    return report


def _already_copied(glance: GlanceClient, key: str, value: str, image: dict[str, Any]) -> dict[str, Any] | None:
    for candidate in glance.find_images(**{key: value}):
        if candidate.get("status") != "active":
            continue
        digest = image.get(CONTENT_DIGEST)
        if digest and candidate.get(CONTENT_DIGEST) == digest:
            return candidate
        if not digest and candidate.get("virtual_size") == image.get("virtual_size"):
            return candidate
    return None


def verify(source: dict[str, Any], target: dict[str, Any]) -> str:
    """Compare what both sides offer; say which check was possible. Raises on a mismatch."""
    a, b = source.get(CONTENT_DIGEST), target.get(CONTENT_DIGEST)
    if a and b:
        if a != b:
            raise CopyError(
                f"the copy differs from the source: content digest {b} != {a}. The target image {target['id']} "
                "is left for inspection; delete it and run the copy again."
            )
        return "content digest"
    vs_a, vs_b = source.get("virtual_size"), target.get("virtual_size")
    if vs_a and vs_b:
        if vs_a != vs_b:
            raise CopyError(f"the copy's virtual size {vs_b} differs from the source's {vs_a}")
        return "virtual size (no content digest on both sides)"
    return "none possible (neither content digest nor virtual size on both sides)"


__all__ = ["CopyError", "CopyOptions", "CopyReport", "Endpoint", "GlanceError", "copy_image"]
