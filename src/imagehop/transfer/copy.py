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
from imagehop.transfer.compute import BootError, ComputeClient
from imagehop.transfer.glance import GlanceClient, GlanceError, user_properties
from imagehop.transfer.journal import Journal
from imagehop.transfer.mover import DEFAULT_SEGMENT_SIZE, MoveError, MoveResult, move_object
from imagehop.transfer.swift import SwiftClient, SwiftError

CONTENT_DIGEST = "imagehop.content_digest"
SOURCE_PROPERTY = "imagehop.source"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
EXPORT_BLOCKING = ("com.rackspace__1__options",)
METHODS = ("auto", "stream", "pull")
TEMPURL_SECONDS = 6 * 3600  # long enough for the target to fetch a large image, short enough to matter


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
    method: str = "auto"  # auto, stream or pull
    boot: str | None = None  # a server name to boot from the copy
    flavor: str | None = None


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
    method: str = ""  # stream, pull-glance or pull-web
    server: str | None = None
    notes: list[str] = field(default_factory=list)

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


def choose_method(source: Endpoint, target: Endpoint, wanted: str) -> str:
    """``stream``, ``pull-glance`` (glance-download, one deployment) or ``pull-web`` (web-download of a TempURL).

    ``auto`` pulls when the target advertises the import method needed in ``GET /v2/info/import``.
    """
    if wanted == "stream":
        return "stream"
    same = same_deployment(source, target)
    needed = "glance-download" if same else "web-download"
    try:
        available = target.glance.import_methods()
    except GlanceError:
        available = []
    if needed in available:
        return "pull-glance" if same else "pull-web"
    if wanted == "pull":
        raise CopyError(
            f"{target.label} does not offer the {needed} import method (it offers: {', '.join(available) or 'none'}); "
            "use --method stream"
        )
    return "stream"


def same_deployment(source: Endpoint, target: Endpoint) -> bool:
    """One cloud (one identity): its regions can pull from each other with the caller's token."""
    return source.cloud is target.cloud or source.cloud.name == target.cloud.name


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

    def step(name: str, /, **info: Any) -> None:
        state[name] = info or True
        journal.save_state(job, state)
        report.steps.append(name)

    def note(message: str) -> None:
        report.notes.append(message)
        say("note", {"message": message})

    existing = _already_copied(target.glance, key, value, image)
    if existing is not None:
        report.target_image, report.already_done = existing["id"], True
        report.method = state.get("method", "")
        report.verified_by = "content digest" if image.get(CONTENT_DIGEST) else "size"
        if options.boot and not options.dry_run:
            _boot(target, existing["id"], options, state, step, report, say)
        report.seconds = time.monotonic() - started
        say("done", {"image": existing["id"], "already": True})
        return report

    # A re-run keeps the method its first run chose, so it continues the same steps, unless told otherwise.
    journaled = str(state.get("method") or "")
    if journaled and (options.method == "auto" or journaled.startswith(options.method)):
        method = journaled
    else:
        method = choose_method(source, target, options.method)
    report.method = method
    if options.dry_run:
        report.seconds = time.monotonic() - started
        return report
    if state.get("method") != method:
        state["method"] = method
        journal.save_state(job, state)

    # 1. the coordinating property on the source image
    if image.get(key) != value:
        image = source.glance.patch(image["id"], {key: value}, image)
    props = user_properties(image)
    obj = f"{image['id']}.vhd"
    location = ""

    # 2. export (a glance-download pull reads the image itself: nothing to export)
    if method != "pull-glance":
        location = _export(source, image, options, state, step, say)
        obj = location.split("/", 1)[1]

    if method.startswith("pull"):
        try:
            new_id = _pull(source, target, image, method, location, options, state, step, say, note)
        except PullRefused as exc:
            if options.method != "auto" or method != "pull-web":
                raise CopyError(str(exc)) from None
            note(f"{target.label} refused web-download ({exc}); streaming the bytes instead")
            method = state["method"] = report.method = "stream"
            journal.save_state(job, state)
    if method == "stream":
        new_id = _stream(source, target, image, location, options, journal, state, step, say, report)
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

    # 7. clean up what was exported (in the source; in the target too when it was moved there)
    if method != "pull-glance" and not options.keep_exported:
        for side in (source, target) if method == "stream" else (source,):
            try:
                side.swift.delete_object(options.container, obj, large=True)
            except SwiftError as exc:
                say("warning", {"message": f"could not delete {options.container}/{obj} in {side.label}: {exc}"})
        step("cleaned")
    journal.finish_job(job)

    # 8. optionally, boot a server from the copy
    if options.boot:
        _boot(target, new_id, options, state, step, report, say)
    report.seconds = time.monotonic() - started
    say("done", {"image": new_id})
    return report


def _export(
    source: Endpoint, image: dict[str, Any], options: CopyOptions, state: dict, step: Callable, say: Progress
) -> str:
    """Export the image as ``{uuid}.vhd`` into the container; returns ``container/object``."""
    if "exported" not in state:
        obj = f"{image['id']}.vhd"
        source.swift.ensure_container(options.container)
        if source.swift.head_object(options.container, obj) is not None:
            # A leftover of a run the journal does not know: Rackspace refuses to overwrite it.
            source.swift.delete_object(options.container, obj, large=True)
        task = _run_task(
            source, "export", {"image_uuid": image["id"], "receiving_swift_container": options.container}, say
        )
        step("exported", task=task["id"], location=task["result"]["export_location"])
    return str(state["exported"]["location"])


def _stream(
    source: Endpoint, target: Endpoint, image: dict[str, Any], location: str, options: CopyOptions,
    journal: Journal, state: dict, step: Callable, say: Progress, report: CopyReport,
) -> str:  # fmt: skip
    """Move the exported object through the client, then import it with a task; returns the new image id."""
    container, obj = location.split("/", 1)
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

    # import (only the name travels in the task: Rackspace refuses any other property there)
    if "imported" not in state:
        task_input = {
            "import_from": f"{options.container}/{obj}",
            "import_from_format": "vhd",
            "image_properties": {"name": image.get("name") or image["id"]},
        }
        task = _run_task(target, "import", task_input, say)
        step("imported", task=task["id"], image=task["result"]["image_id"])
    return str(state["imported"]["image"])


def _run_task(side: Endpoint, kind: str, task_input: dict[str, Any], say: Progress) -> dict[str, Any]:
    """Create a Rackspace-style task and wait for it; a failed task raises with its message."""
    task = side.glance.create_task(kind, task_input)
    say(kind, {"task": task["id"], "status": task["status"]})
    task = side.glance.wait_task(task["id"], lambda t: say(kind, t))
    if task["status"] != "success":
        raise CopyError(f"the {kind} task {task['id']} in {side.label} failed: {task.get('message')}")
    return task


class PullRefused(Exception):
    """The target refused to start the import (bad request): nothing was left behind."""


def _pull(
    source: Endpoint, target: Endpoint, image: dict[str, Any], method: str, location: str, options: CopyOptions,
    state: dict, step: Callable, say: Progress, note: Callable[[str], None],
) -> str:  # fmt: skip
    """Ask the target region to fetch the bytes itself; returns the new, active image's id.

    ``pull-glance``: ``glance-download`` of the source image (same deployment, the caller's token).
    ``pull-web``: ``web-download`` of a TempURL of the exported VHD; the target image is created
    with ``disk_format`` ``vhd``, so the server measures the VHD's virtual disk and its content
    digest is comparable with the source's.
    """
    if "pulled" in state:
        return str(state["pulled"]["image"])
    glance = target.glance
    current = None
    if "created" in state:
        current = glance.get_image(state["created"]["image"])
        if current is None or current.get("status") not in ("queued", "importing", "saving", "active"):
            if current is not None:
                glance.delete_image(current["id"])
            current = None
            del state["created"]
    if current is None:
        if method == "pull-glance":
            formats = {"disk_format": image.get("disk_format"), "container_format": image.get("container_format")}
        else:
            formats = {"disk_format": "vhd", "container_format": "bare"}
        current = glance.create_image({"name": image.get("name") or image["id"], **formats})
        step("created", image=current["id"])
    new_id = current["id"]
    if current["status"] == "queued":
        if method == "pull-glance":
            request = {
                "name": "glance-download", "glance_image_id": image["id"], "glance_region": source.region,
                "glance_service_interface": "public",
            }  # fmt: skip
        else:
            container, obj = location.split("/", 1)
            if source.swift.ensure_tempurl_key():
                note(f"set a TempURL key (X-Account-Meta-Temp-URL-Key) on the {source.label} account: it had none")
            request = {"name": "web-download", "uri": source.swift.temp_url(container, obj, TEMPURL_SECONDS)}
        try:
            glance.start_import(new_id, request)
        except GlanceError as exc:
            glance.delete_image(new_id)
            del state["created"]
            if exc.status == 400:
                raise PullRefused(str(exc)) from None
            raise CopyError(f"the {request['name']} import in {target.label} could not start: {exc}") from None
        say("pull", {"id": new_id, "status": "started", "message": request["name"]})
    try:
        _wait_active(glance, new_id, say)
    except CopyError:
        glance.delete_image(new_id)  # nothing half-made left visible in the target
        del state["created"]
        raise
    step("pulled", image=new_id)
    return str(new_id)


def _wait_active(
    glance: GlanceClient, image_id: str, say: Progress, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Poll the image until it is active; fail with its import task's message."""
    while True:
        current = glance.get_image(image_id)
        if current is None:
            raise CopyError(f"the image {image_id} was deleted in {glance.region} during the import")
        if current.get("status") == "active":
            return
        poll = glance.import_task(image_id)
        if poll is not None:
            say("pull", poll.task)
            if poll.task.get("status") == "failure":
                raise CopyError(
                    f"the import of {image_id} in {glance.region} failed: {poll.task.get('message') or 'no message'}"
                )
        if current.get("status") in ("killed", "deleted", "deactivated"):
            raise CopyError(f"the image {image_id} in {glance.region} became {current['status']} during the import")
        sleep(glance.next_delay(poll.retry_after if poll else None))


def _boot(
    target: Endpoint, image_id: str, options: CopyOptions, state: dict, step: Callable, report: CopyReport,
    say: Progress,
) -> None:  # fmt: skip
    """Boot ``options.boot`` from the copy once (a re-run reports the same server)."""
    booted = state.get("booted")
    if isinstance(booted, dict) and booted.get("name") == options.boot and booted.get("image") == image_id:
        report.server = booted["server"]
        return
    compute = ComputeClient(target.cloud, target.region)
    say("boot", {"name": options.boot})
    try:
        server = compute.boot(str(options.boot), image_id, options.flavor or "", on_update=lambda s: say("boot", s))
    except BootError as exc:
        raise CopyError(
            f"the copy {image_id} in {target.label} is done, but booting {options.boot!r} failed: {exc}"
        ) from None
    report.server = server["id"]
    step("booted", name=options.boot, image=image_id, server=server["id"])


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
