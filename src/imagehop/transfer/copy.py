"""`imagehop copy`: the whole walkthrough (find, choose a way, move, re-tag, verify) in one call.

First each side is asked what it offers (``discover.py``) and a way is chosen: ``glance-download``
between regions of one cloud, ``web-download`` of a TempURL, the direct ``stream`` over the image
data APIs, or Rackspace's export/import ``tasks``. Each step is recorded in the journal when it
finishes, so running the same command again after a crash, a Ctrl-C or a failure continues from the
first unfinished step. Everything goes over HTTP, so a source or target can be any cloud with
Glance v2; imagehop and Rackspace add object storage and tasks.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from imagehop import formats
from imagehop.transfer import discover as disc
from imagehop.transfer import incremental as inc
from imagehop.transfer import stream as direct
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
METHODS = ("auto", *disc.WAYS, "pull")
CONVERSIONS = ("raw", "qcow2", "vhd")
TEMPURL_SECONDS = 6 * 3600  # long enough for the target to fetch a large image, short enough to matter
# Base attributes a copy carries besides the user's properties.
CARRIED_ATTRIBUTES = ("min_ram", "min_disk")
TASK_SETTLE = 30.0  # seconds an active image's import task may take to record its outcome


class CopyError(Exception):
    """The copy stopped; the message says why and what to do next. ``resumable`` says whether the
    same command, run again, continues where it stopped (else the cause must be fixed first)."""

    def __init__(self, message: str, resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable


def final(message: str) -> CopyError:
    return CopyError(message, resumable=False)


@dataclass
class Endpoint:
    """One side of a copy: a cloud and a region in it."""

    cloud: CloudSession
    region: str

    def __post_init__(self) -> None:
        self.glance = GlanceClient(self.cloud, self.region)
        self._lock = threading.Lock()
        self._capabilities: disc.Capabilities | None = None
        self._asking: Future[disc.Capabilities] | None = None

    @cached_property
    def swift(self) -> SwiftClient | None:
        """The region's object storage, or ``None`` where the catalog has none."""
        if not self.cloud.has("object-store", self.region):
            return None
        return SwiftClient(self.cloud, self.region)

    @property
    def capabilities(self) -> disc.Capabilities:
        """What this side offers, asked once (the answer of :meth:`discover_soon` when it was started)."""
        with self._lock:
            if self._capabilities is None:
                asking, self._asking = self._asking, None
                self._capabilities = asking.result() if asking is not None else disc.discover(self)
            return self._capabilities

    def discover_soon(self) -> None:
        """Start asking this side what it offers, in a thread, while the caller asks the other side
        and reads block maps: the same requests as :attr:`capabilities` makes, sent sooner."""
        with self._lock:
            if self._capabilities is None and self._asking is None:
                self._asking = _in_thread(disc.discover, self)

    @property
    def label(self) -> str:
        return f"{self.cloud.name}/{self.region}"

    @property
    def project_id(self) -> str:
        return self.cloud.project_id


def _in_thread(fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """``fn(*args)`` in a daemon thread (a copy that stops meanwhile does not wait for it at exit)."""
    future: Future[Any] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever reads the result
                future.set_exception(exc)

    threading.Thread(target=run, name="imagehop-discover", daemon=True).start()
    return future


@dataclass
class CopyOptions:
    tag: tuple[str, str] | None = None
    container: str = "imagehop-exports"
    parallel: int = 4
    segment_size: int = DEFAULT_SEGMENT_SIZE
    keep_exported: bool = False
    dry_run: bool = False
    poll_interval: float = 30.0
    method: str = "auto"  # auto, glance-download, web-download, stream, tasks (pull: either pull)
    boot: str | None = None  # a server name to boot from the copy
    flavor: str | None = None
    convert: str | None = None  # raw, qcow2 or vhd
    base: str | None = None  # the target image to build on (id or name); None: the best one found
    no_base: bool = False  # always a full copy


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
    dry_run: bool = False
    steps: list[str] = field(default_factory=list)
    move: dict[str, Any] | None = None
    method: str = ""  # glance-download, web-download, stream or tasks
    why: str = ""  # why that way (and why not the better ones)
    disk_format: str | None = None
    visibility: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)  # task kind -> task id
    server: str | None = None
    left_out: dict[str, str] = field(default_factory=dict)  # property -> why it was not carried
    notes: list[str] = field(default_factory=list)
    discovered: dict[str, Any] | None = None  # what each side offers (with --dry-run)
    image_size: int = 0  # bytes of the source image
    bytes_to_move: int = 0  # what the plan expects to move (the image size for a full copy)
    base: dict[str, Any] | None = None  # the base of an incremental copy (see transfer/incremental.py)
    incremental: str = ""  # why incremental with that base, or why a full copy
    blocks_reused: int = 0  # blocks the target took from the base
    blocks_sent: int = 0  # blocks that moved

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Progress = Callable[[str, dict[str, Any]], None]


def find_source_image(glance: GlanceClient, ref: str) -> dict[str, Any]:
    """An image by id, by ``KEY=VALUE`` property, or by name: exactly one must match."""
    if UUID_RE.match(ref):
        image = glance.get_image(ref)
        if image is None:
            raise final(f"no image {ref} in {glance.region} (or your project cannot see it): check the id")
        return image
    if "=" in ref:
        key, value = ref.split("=", 1)
        matches, how = glance.find_images(**{key: value}), f"with {key}={value}"
    else:
        matches, how = glance.find_images(name=ref), f"named {ref!r}"
    if not matches:
        raise final(f"no image {how} in {glance.region}: check the name, or list them with `openstack image list`")
    if len(matches) > 1:
        ids = ", ".join(m["id"] for m in matches[:5])
        raise final(f"{len(matches)} images {how} in {glance.region} ({ids}): name one by id")
    return matches[0]


def check_exportable(image: dict[str, Any], project_id: str) -> None:
    """What Rackspace checks when the export task runs, checked before any slow step."""
    if image.get("owner") != project_id:
        raise final(
            f"image {image['id']} belongs to {image.get('owner')}, not to your project {project_id}: only the owner "
            "can export it. Boot a server from it and image that server to get a copy you own."
        )
    options = image.get("com.rackspace__1__options", "0")
    if options not in ("0", "", None) or str(image.get("os_type", "")).lower() == "windows":
        raise final(
            f"image {image['id']} cannot be exported due to licensing restrictions "
            f"(com.rackspace__1__options={options!r}, os_type={image.get('os_type')!r})"
        )


def check_format(image: dict[str, Any], target: Endpoint, convert: str | None) -> str:
    """The disk format the target will hold; refuses, naming ``--convert``, what the target refuses."""
    fmt = str(image.get("disk_format") or "raw")
    out = convert or fmt
    accepted = target.capabilities.disk_formats
    if accepted is None or out in accepted:
        return out
    possible = [f for f in ("raw", "vhd") if f in accepted and (fmt, f) in direct.CONVERSIONS]
    if convert:
        raise final(
            f"{target.label} refuses disk_format {out} (it accepts: {', '.join(accepted)})"
            + (f": pass --convert {possible[0]}" if possible else "")
        )
    if possible:
        raise final(
            f"{target.label} refuses disk_format {fmt} (it accepts: {', '.join(accepted)}): pass --convert "
            f"{possible[0]} to convert the image while it streams"
        )
    raise final(
        f"{target.label} refuses disk_format {fmt} (it accepts: {', '.join(accepted)}), and imagehop cannot convert "
        f"{fmt} to any of those while streaming: convert it with qemu-img first"
    )


def choose_method(source: Endpoint, target: Endpoint, image: dict[str, Any], options: CopyOptions) -> disc.Choice:
    try:
        return disc.choose(source.capabilities, target.capabilities, image, options.method, options.convert)
    except ValueError as exc:
        raise final(f"{exc}. Leave out --method to let imagehop pick a way both clouds support.") from None


# Statuses that the same command cannot get past by running again: the cause must be fixed first.
FINAL_STATUSES = (400, 401, 403, 404, 413, 415)


def copy_image(
    ref: str,
    source: Endpoint,
    target: Endpoint,
    options: CopyOptions,
    journal: Journal,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy one image; every failure is a :class:`CopyError` that says whether a re-run continues."""
    try:
        return _copy_image(ref, source, target, options, journal, progress)
    except GlanceError as exc:
        raise CopyError(str(exc), resumable=exc.status not in FINAL_STATUSES) from exc
    except SwiftError as exc:
        raise CopyError(str(exc), resumable=exc.status not in FINAL_STATUSES) from exc


def _copy_image(
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
    if source.glance.base == target.glance.base:
        raise final(
            f"the source and the target are the same image service ({source.label}): nothing to copy. "
            "Pick another --to region or --to-cloud."
        )

    image = find_source_image(source.glance, ref)
    if image.get("status") != "active":
        raise final(f"image {image['id']} is {image.get('status')}: only active images can be copied")
    key, value = options.tag or (SOURCE_PROPERTY, f"{source.region}/{image['id']}")
    report = CopyReport(image["id"], source.label, target.label, f"{key}={value}", digest=image.get(CONTENT_DIGEST))
    report.dry_run = options.dry_run
    report.visibility = image.get("visibility")
    what = [source.glance.base, image["id"], target.glance.base, key, value, options.convert or ""]
    job = "copy:" + hashlib.sha256("\n".join(what).encode()).hexdigest()[:32]
    state = journal.open_job(job)

    def step(name: str, /, **info: Any) -> None:
        state[name] = info or True
        journal.save_state(job, state)
        report.steps.append(name)

    def note(message: str) -> None:
        report.notes.append(message)
        say("note", {"message": message})

    existing = _already_copied(target.glance, key, value, image, options.convert)
    if existing is not None:
        report.target_image, report.already_done = existing["id"], True
        report.method = state.get("method", "")
        report.disk_format = existing.get("disk_format")
        report.verified_by = _already_by(image, existing)
        if options.boot and not options.dry_run:
            _boot(target, existing["id"], options, state, step, report, say)
        report.seconds = time.monotonic() - started
        say("done", {"image": existing["id"], "already": True})
        return report

    # A re-run keeps the method its first run chose, so it continues the same steps, unless told otherwise.
    journaled = str(state.get("method") or "")
    resumed = journaled in disc.WAYS and options.method in ("auto", journaled)
    if not resumed:  # choosing a way needs what the source offers: ask it while the target is asked below
        source.discover_soon()
    report.disk_format = check_format(image, target, options.convert)
    report.image_size = report.bytes_to_move = int(image.get("size") or 0)
    plan, report.incremental = _plan_incremental(source, target, image, (key, value), options)
    if plan is not None:
        report.base, report.bytes_to_move = plan.as_dict(), plan.bytes_to_move
    else:
        report.incremental += f"; the whole image ({report.image_size:,} bytes) moves"
    if resumed:
        choice = disc.Choice(journaled, "the way the interrupted run chose", upload=str(state.get("upload") or ""))
    else:
        choice = choose_method(source, target, image, options)
        if plan is not None and options.method == "auto" and choice.method in ("web-download", "tasks"):
            passed = [*choice.passed_over, (choice.method, "it moves the whole image; the target can build on a base")]
            choice = disc.Choice("stream", f"only the blocks {target.label}'s base lacks pass through this client, "
                                 f"into its {inc.DELTA_METHOD} import", passed, upload="delta")  # fmt: skip
    if plan is not None and choice.method not in ("glance-download", "stream"):
        report.incremental = f"full copy: the {choice.method} way moves whole images (incremental: pull or stream)"
        plan, report.base, report.bytes_to_move = None, None, report.image_size
    method = report.method = choice.method
    report.why = choice.explain()
    if options.dry_run:
        report.discovered = {"source": source.capabilities.as_dict(), "target": target.capabilities.as_dict()}
        report.seconds = time.monotonic() - started
        return report
    if method in ("web-download", "tasks"):
        check_exportable(image, source.project_id)
    if state.get("method") != method:
        state["method"], state["upload"] = method, choice.upload
        journal.save_state(job, state)
    say("plan", {"method": method, "why": choice.reason})

    # 1. the coordinating property on the source image (best effort where the image is not ours)
    if image.get(key) != value:
        try:
            image = source.glance.patch(image["id"], {key: value}, image)
        except GlanceError as exc:
            note(f"could not set {key}={value} on the source image ({exc.status}); the copy carries it only")
    props = user_properties(image)
    obj = f"{image['id']}.vhd"
    location = ""

    # 2. the bytes
    if method in ("web-download", "tasks"):
        location = _export(source, image, options, state, step, say, report)
        obj = location.split("/", 1)[1]
    if method in ("glance-download", "web-download"):
        try:
            new_id = _pull(source, target, image, method, location, options, state, step, say, note,
                           plan if method == "glance-download" else None, journal=journal, job=job)  # fmt: skip
        except PullRefused as exc:
            if options.method != "auto" or method != "web-download":
                raise CopyError(str(exc), resumable=False) from None
            note(f"{target.label} refused web-download ({exc}); streaming the bytes instead")
            method = state["method"] = report.method = "stream"
            state["upload"] = disc.stream_upload(target.capabilities, report.disk_format)
            journal.save_state(job, state)
    delta_id = None
    if method == "stream" and (plan is None or state.get("delta_failed")) and state.get("delta_image"):
        target.glance.delete_image(state.pop("delta_image"))  # an interrupted run's incremental image
        state.pop("created", None)
        journal.save_state(job, state)
    if method == "stream" and plan is not None and not state.get("delta_failed"):
        delta_id = _stream_delta(source, target, image, plan, state, step, say, report, note)
        if delta_id is None:  # the target could not build on the base: the whole image, as a stream would
            state["delta_failed"] = report.incremental
            state["upload"] = disc.stream_upload(target.capabilities, report.disk_format)
            journal.save_state(job, state)
    if delta_id is not None:
        new_id = delta_id
    elif method == "stream":
        if state.get("upload") == "segments" and not options.convert:
            new_id = _stream_segments(source, target, image, options, journal, state, step, say, report)
        else:
            new_id = _stream_put(source, target, image, options, state, step, say, report, note)
    elif method == "tasks":
        new_id = _tasks(source, target, image, location, options, journal, state, step, say, report)
    report.target_image = new_id

    # 3. every user property, the coordinating one included; visibility as the source has it
    new_image = target.glance.get_image(new_id)
    if new_image is None:
        raise CopyError(f"the new image {new_id} vanished from {target.label}; run the same command again")
    if method in ("glance-download", "web-download"):
        report.tasks["pull"] = str(state["pulled"].get("task") or "")
        report.bytes_moved = int(new_image.get("size") or 0)  # fetched by the target, none through here
        report.move = {"bytes": report.bytes_moved, "through_client": 0}
        if plan is not None:
            _pulled_delta(target, new_id, report, note)
    new_image = _carry(target, new_image, image, {**props, key: value}, report, note)
    step("tagged", properties=len(props))

    # 4. verify
    report.verified_by = verify(image, new_image, state, options.convert)
    report.disk_format = new_image.get("disk_format")
    step("verified", by=report.verified_by)

    # 5. clean up what was exported or staged in object storage
    if method in ("web-download", "tasks") and not options.keep_exported:
        for side in (source, target) if method == "tasks" else (source,):
            _delete_object(side, options.container, obj, say)
        step("cleaned")
    if "segments" in state and not options.keep_exported:
        _delete_object(target, options.container, state["segments"]["object"], say)
        step("cleaned")
    journal.finish_job(job)

    # 6. optionally, boot a server from the copy
    if options.boot:
        _boot(target, new_id, options, state, step, report, say)
    report.seconds = time.monotonic() - started
    say("done", {"image": new_id})
    return report


def _delete_object(side: Endpoint, container: str, obj: str, say: Progress) -> None:
    if side.swift is None:
        return
    try:
        side.swift.delete_object(container, obj, large=True)
    except SwiftError as exc:
        say("warning", {"message": f"could not delete {container}/{obj} in {side.label}: {exc}"})


def _export(
    source: Endpoint, image: dict[str, Any], options: CopyOptions, state: dict, step: Callable, say: Progress,
    report: CopyReport,
) -> str:  # fmt: skip
    """Export the image as ``{uuid}.vhd`` into the container; returns ``container/object``."""
    swift = _need_swift(source)
    if "exported" not in state:
        obj = f"{image['id']}.vhd"
        swift.ensure_container(options.container)
        if swift.head_object(options.container, obj) is not None:
            # A leftover of a run the journal does not know: Rackspace refuses to overwrite it.
            swift.delete_object(options.container, obj, large=True)
        task = _run_task(
            source, "export", {"image_uuid": image["id"], "receiving_swift_container": options.container}, say
        )
        step("exported", task=task["id"], location=task["result"]["export_location"])
    report.tasks["export"] = str(state["exported"]["task"])
    return str(state["exported"]["location"])


def _need_swift(side: Endpoint) -> SwiftClient:
    if side.swift is None:
        raise final(f"{side.label} has no object storage in its catalog, which this way needs")
    return side.swift


def _tasks(
    source: Endpoint, target: Endpoint, image: dict[str, Any], location: str, options: CopyOptions,
    journal: Journal, state: dict, step: Callable, say: Progress, report: CopyReport,
) -> str:  # fmt: skip
    """Move the exported object through the client, then import it with a task; returns the new image id."""
    container, obj = location.split("/", 1)
    if "moved" not in state:
        say("move", {"object": location, "size": None})
        try:
            moved: MoveResult = move_object(
                _need_swift(source), container, obj, _need_swift(target), options.container, obj,
                journal=journal, parallel=options.parallel, segment_size=options.segment_size,
                progress=lambda n: say("bytes", {"n": n}),
            )  # fmt: skip
        except (MoveError, SwiftError) as exc:
            raise CopyError(f"moving {location} to {target.label} stopped: {exc}") from exc
        step("moved", size=moved.size, segments=moved.segments, sent=moved.segments_sent, bytes=moved.bytes_sent,
             verified_by=moved.verified_by)  # fmt: skip
        say("moved", {})
    report.move = state["moved"] if isinstance(state["moved"], dict) else None
    report.bytes_moved = report.move["bytes"] if report.move else 0
    return _import_task(target, image, f"{options.container}/{obj}", "vhd", state, step, say, report)


def _import_task(
    target: Endpoint, image: dict[str, Any], import_from: str, fmt: str, state: dict, step: Callable, say: Progress,
    report: CopyReport,
) -> str:  # fmt: skip
    """A Rackspace-style import task from the target's object storage; returns the new image id.
    Only the name travels in the task: Rackspace refuses any other property there."""
    if "imported" not in state:
        task_input = {
            "import_from": import_from,
            "import_from_format": fmt,
            "image_properties": {"name": image.get("name") or image["id"]},
        }
        task = _run_task(target, "import", task_input, say)
        step("imported", task=task["id"], image=task["result"]["image_id"])
    report.tasks["import"] = str(state["imported"]["task"])
    return str(state["imported"]["image"])


def _stream_segments(
    source: Endpoint, target: Endpoint, image: dict[str, Any], options: CopyOptions, journal: Journal, state: dict,
    step: Callable, say: Progress, report: CopyReport,
) -> str:  # fmt: skip
    """The direct stream into a target with object storage and import tasks: verified segments
    (resumable, read from the source with Range), then an import task."""
    fmt = str(image.get("disk_format") or "raw")
    obj = f"{image['id']}.{fmt}"
    if "moved" not in state:
        reader = direct.ImageFileSource(source.glance, image)
        say("move", {"object": f"{source.label} image {image['id']}", "size": int(image.get("size") or 0)})
        try:
            moved = move_object(
                reader, "", "", _need_swift(target), options.container, obj,  # type: ignore[arg-type]
                journal=journal, parallel=options.parallel, segment_size=options.segment_size,
                progress=lambda n: say("bytes", {"n": n}),
            )  # fmt: skip
        except (MoveError, SwiftError) as exc:
            raise CopyError(f"streaming image {image['id']} into {target.label} stopped: {exc}") from exc
        state["segments"] = {"object": obj}
        step("moved", size=moved.size, segments=moved.segments, sent=moved.segments_sent, bytes=moved.bytes_sent,
             read=reader.bytes_read, verified_by=moved.verified_by)  # fmt: skip
        say("moved", {})
    report.move = state["moved"] if isinstance(state["moved"], dict) else None
    report.bytes_moved = report.move["bytes"] if report.move else 0
    return _import_task(target, image, f"{options.container}/{obj}", fmt, state, step, say, report)


def _create_target(target: Endpoint, image: dict[str, Any], disk_format: str, step: Callable) -> dict[str, Any]:
    """The target image, hidden from listings until the copy is verified; private stays private."""
    body: dict[str, Any] = {
        "name": image.get("name") or image["id"],
        "disk_format": disk_format,
        "container_format": image.get("container_format") or "bare",
        "os_hidden": True,
    }
    if image.get("visibility") in ("private", "shared", "community"):
        body["visibility"] = image["visibility"]
    created = target.glance.create_image(body)
    step("created", image=created["id"])
    return created


def _reuse_created(glance: GlanceClient, state: dict) -> dict[str, Any] | None:
    """The target image an interrupted run created, if it can take the bytes (else it is deleted)."""
    if "created" not in state:
        return None
    current = glance.get_image(state["created"]["image"])
    if current is not None and current.get("status") in ("queued", "importing", "saving", "uploading", "active"):
        return current
    if current is not None:
        glance.delete_image(current["id"])
    del state["created"]
    return None


def _stream_put(
    source: Endpoint, target: Endpoint, image: dict[str, Any], options: CopyOptions, state: dict, step: Callable,
    say: Progress, report: CopyReport, note: Callable[[str], None],
) -> str:  # fmt: skip
    """The direct stream by ``PUT /v2/images/{id}/file`` (``stage`` + ``glance-direct`` where PUT is
    refused); hashes computed in flight and compared with the target's."""
    glance = target.glance
    if "streamed" in state:
        return str(state["created"]["image"])
    fmt = options.convert or str(image.get("disk_format") or "raw")
    # Resumable where the target keeps a broken upload, the bytes are the source's as they are, and
    # the source publishes a hash of them to check the whole against (the kept bytes were sent by an
    # earlier run, so no hash computed here could cover them).
    resumable = (
        state.get("upload") == "resumable"
        and not options.convert
        and bool(image.get("os_hash_value") or image.get("checksum"))
    )
    current = _reuse_created(glance, state)
    if current is not None and resumable and current.get("status") == "saving":
        note(f"{target.label} image {current['id']} is still saving from the interrupted run: waiting for it to "
             "keep what arrived")  # fmt: skip
        current = _until_not_saving(glance, current, target.label)
    if current is not None and current.get("status") != "queued":
        # Glance drops a partial upload; an image left uploading or half-imported is started again.
        glance.delete_image(current["id"])
        del state["created"]
        current = None
    if current is None:
        current = _create_target(target, image, fmt, step)
    new_id = str(current["id"])
    size = int(image.get("size") or 0) if not options.convert else None
    say("move", {"object": f"{source.label} image {image['id']}", "size": size})
    glance_direct = state.get("upload") == "glance-direct"
    algo = str(image.get("os_hash_algo") or "sha512")
    try:
        if resumable:
            kept = int(current.get("imagehop.upload_kept") or 0)
            if kept:
                note(f"{target.label} kept {kept:,} bytes of the interrupted upload: sending the rest")
                say("bytes", {"n": kept})
            try:
                done = direct.put_resumable(
                    source.glance, image, glance, new_id, kept, progress=lambda n: say("bytes", {"n": n})
                )
            except (GlanceError, direct.StreamError) as exc:
                if isinstance(exc, GlanceError) and exc.status in FINAL_STATUSES:
                    raise
                # The target keeps what arrived: the same command continues from there.
                raise CopyError(f"streaming into {target.label} stopped: {exc}. Run the same command again: "
                                "it sends only the rest") from None  # fmt: skip
            _wait_active(glance, new_id, say)
        else:
            done = _put_stream(source, target, image, options, state, new_id, algo, glance_direct, say, report, note)
    except (GlanceError, direct.StreamError, CopyError) as exc:
        if isinstance(exc, CopyError) and resumable and exc.resumable:
            raise
        glance.delete_image(new_id)  # nothing half-made left visible in the target
        state.pop("created", None)
        if isinstance(exc, GlanceError) and exc.status in FINAL_STATUSES:
            raise CopyError(f"streaming into {target.label} failed: {exc}", resumable=False) from None
        raise CopyError(f"streaming into {target.label} stopped: {exc}") from None
    finished = glance.get_image(new_id) or {}
    check_stream(done, finished, image, options.convert, target.label)
    if done.upload == "resumable":
        step("streamed", size=done.size, upload=done.upload, read=done.read, resumed_at=done.resumed_at)
        report.move = {"bytes": done.size, "upload": done.upload, "read": done.read, "resumed_at": done.resumed_at}
    else:
        step("streamed", size=done.size, md5=done.md5, algo=done.algo, hash=done.digest, upload=done.upload)
        report.move = {"bytes": done.size, "upload": done.upload}
    report.bytes_moved = done.size
    return new_id


def _until_not_saving(glance: GlanceClient, current: dict[str, Any], label: str, timeout: float = 120.0
                      ) -> dict[str, Any]:  # fmt: skip
    """The image once its region has put it back to ``queued`` (keeping what arrived) after the
    connection of a killed run dropped; :class:`CopyError` if that takes longer than ``timeout``
    (its upload is then not ours to cut short: another copy may be sending it)."""
    deadline = time.monotonic() + timeout
    while current.get("status") == "saving":
        if time.monotonic() > deadline:
            raise CopyError(
                f"{label} image {current['id']} is still receiving an upload {timeout:.0f} s after this run began "
                "(another copy of the same image may be running, or the target has not yet noticed the interrupted "
                "run's connection drop). Run the same command again once no other copy runs: it resumes from the "
                "bytes the target kept"
            )
        time.sleep(0.5)
        current = glance.get_image(current["id"]) or {}
    return current


def _put_stream(
    source: Endpoint, target: Endpoint, image: dict[str, Any], options: CopyOptions, state: dict, new_id: str,
    algo: str, glance_direct: bool, say: Progress, report: CopyReport, note: Callable[[str], None],
) -> direct.Streamed:  # fmt: skip
    """Glance's PUT (or stage + glance-direct), hashed in flight; waits until the image is active."""
    glance = target.glance
    try:
        done = direct.put_stream(
            source.glance, image, glance, new_id, convert=options.convert, algo=algo,
            progress=lambda n: say("bytes", {"n": n}), glance_direct=glance_direct,
        )  # fmt: skip
    except GlanceError as exc:
        if exc.status not in (403, 405) or glance_direct or not target.capabilities.offers("glance-direct"):
            raise
        note(f"{target.label} refused a direct upload ({exc.status}); staging and importing with glance-direct")
        state["upload"] = "glance-direct"
        done = direct.put_stream(
            source.glance, image, glance, new_id, convert=options.convert, algo=algo,
            progress=lambda n: say("bytes", {"n": n}), glance_direct=True,
        )  # fmt: skip
    if done.upload == "glance-direct":
        glance.start_import(new_id, {"name": "glance-direct"})
        say("import", {"id": new_id, "status": "started", "message": "glance-direct"})
    task_id = _wait_active(glance, new_id, say)
    if done.upload == "glance-direct" and task_id:
        report.tasks["import"] = task_id
    return done


def check_stream(done: direct.Streamed, target: dict[str, Any], source: dict[str, Any], convert: str | None,
                 label: str) -> None:  # fmt: skip
    """The hashes computed in flight against the target's, and (no conversion) the source's; for a
    resumable upload, where nothing is hashed here, the target's against the source's."""
    problems = []
    if done.upload == "resumable":
        for key in ("checksum", "os_hash_value", "size"):
            mine, theirs = target.get(key), source.get(key)
            if key == "os_hash_value" and target.get("os_hash_algo") != source.get("os_hash_algo"):
                continue
            if theirs is not None and mine != theirs:
                problems.append(f"the target's {key} {mine} is not the source's {theirs}")
        if problems:
            raise CopyError(f"the copy in {label} differs: " + "; ".join(problems) + ". Delete it and copy again.",
                            resumable=False)  # fmt: skip
        return
    if target.get("checksum") and target["checksum"] != done.md5:
        problems.append(f"the target's checksum {target['checksum']} is not the MD5 sent ({done.md5})")
    if (
        target.get("os_hash_value")
        and target.get("os_hash_algo") == done.algo
        and target["os_hash_value"] != done.digest
    ):
        problems.append(f"the target's os_hash_value is not the {done.algo} of the bytes sent")
    if not convert:
        if source.get("checksum") and source["checksum"] != done.md5:
            problems.append(f"the source's checksum {source['checksum']} is not the MD5 of the bytes read")
        if (
            source.get("os_hash_value")
            and source.get("os_hash_algo") == done.algo
            and source["os_hash_value"] != done.digest
        ):
            problems.append(f"the source's os_hash_value is not the {done.algo} of the bytes read")
        if source.get("size") and int(source["size"]) != done.size:
            problems.append(f"read {done.size} bytes, the source has {source['size']}")
    if problems:
        raise CopyError(f"the copy in {label} differs: " + "; ".join(problems) + ". Run the same command again.")


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
    state: dict, step: Callable, say: Progress, note: Callable[[str], None], plan: inc.BasePlan | None = None,
    *, journal: Journal, job: str,
) -> str:  # fmt: skip
    """Ask the target region to fetch the bytes itself; returns the new, active image's id.

    ``glance-download``: the source image, with the caller's token (one Keystone).
    ``web-download``: a TempURL of the exported VHD; the target image is created with
    ``disk_format`` ``vhd``, so the server measures the VHD's virtual disk and its content digest is
    comparable with the source's.
    """
    if "pulled" in state:
        return str(state["pulled"]["image"])
    glance = target.glance
    current = _reuse_created(glance, state)
    if current is None:
        fmt = str(image.get("disk_format") or "raw") if method == "glance-download" else "vhd"
        current = _create_target(target, image, fmt, step)
    new_id = current["id"]
    if current["status"] == "queued":
        if method == "glance-download":
            request = {
                "name": "glance-download", "glance_image_id": image["id"], "glance_region": source.region,
                "glance_service_interface": "public",
            }  # fmt: skip
            if plan is not None:  # imagehop's extension: build on this base, fetch only what it lacks
                request[inc.BASE_KEY] = plan.spec
        else:
            container, obj = location.split("/", 1)
            swift = _need_swift(source)
            left = state.get("tempurl_key")  # the fingerprint of a key an interrupted run set
            fingerprint = swift.claim_tempurl_key(left)
            if left and left != fingerprint:
                _release_tempurl_key(source, state, say)
            if fingerprint:
                state["tempurl_key"] = fingerprint
                journal.save_state(job, state)
                note(f"set a TempURL key ({swift.OWN_KEY}) on the {source.label} account, which had none; it is "
                     f"removed once {target.label} has fetched the image")  # fmt: skip
            request = {"name": "web-download", "uri": swift.temp_url(container, obj, TEMPURL_SECONDS)}
        try:
            try:
                glance.start_import(new_id, request)
            except GlanceError as exc:
                if exc.status != 404 or inc.BASE_KEY not in request:
                    raise
                note(f"the base {plan.image_id if plan else ''} is gone from {target.label}: copying in full")
                del request[inc.BASE_KEY]
                glance.start_import(new_id, request)
        except GlanceError as exc:
            glance.delete_image(new_id)
            del state["created"]
            if exc.status == 400:
                raise PullRefused(str(exc)) from None
            raise CopyError(f"the {request['name']} import in {target.label} could not start: {exc}") from None
        say("pull", {"id": new_id, "status": "started", "message": request["name"]})
    try:
        task_id = _wait_active(glance, new_id, say)
    except CopyError:
        glance.delete_image(new_id)  # nothing half-made left visible in the target
        del state["created"]
        raise
    finally:
        if state.get("tempurl_key"):  # the target has fetched the image (or failed to): the key can go
            _release_tempurl_key(source, state, say)
            journal.save_state(job, state)
    step("pulled", image=new_id, task=task_id)
    return str(new_id)


def _release_tempurl_key(source: Endpoint, state: dict, say: Progress) -> None:
    """Remove the TempURL key this copy set on the source account (never one the account had)."""
    fingerprint = state.pop("tempurl_key", None)
    if not fingerprint or source.swift is None:
        return
    try:
        source.swift.release_tempurl_key(fingerprint)
    except SwiftError as exc:
        say("warning", {"message": f"could not remove the TempURL key set on the {source.label} account: {exc}"})


def _plan_incremental(
    source: Endpoint, target: Endpoint, image: dict[str, Any], coordinating: tuple[str, str], options: CopyOptions
) -> tuple[inc.BasePlan | None, str]:
    """The base to build on in the target (block maps compared, no bytes read), or why a full copy."""
    if options.no_base:
        return None, "full copy: --no-base"
    if options.convert:
        return None, "full copy: --convert makes new bytes"
    why = inc.unsupported(image, source.label, target.label, target.capabilities.offers(inc.DELTA_METHOD))
    if why:
        if options.base:
            raise final(f"--base {options.base} cannot be used: {why.removeprefix('full copy: ')}")
        return None, why
    try:
        return inc.plan_base(source.glance, target.glance, image, coordinating, options.base)
    except inc.BaseError as exc:
        raise final(str(exc)) from None


def _pulled_delta(target: Endpoint, new_id: str, report: CopyReport, note: Callable[[str], None]) -> None:
    """What the target's incremental pull reused and fetched, from its import task's result."""
    poll = target.glance.import_task(new_id)
    result = ((poll.task.get("result") or {}) if poll is not None else {}).get("x-imagehop-delta")
    if not isinstance(result, dict):
        report.incremental = "full copy: the target did not report building on the base"
        report.base = None
        return
    report.blocks_reused, report.blocks_sent = int(result["blocks_reused"]), int(result["blocks_sent"])
    report.bytes_moved = int(result["bytes_sent"])
    report.move = {"bytes": report.bytes_moved, "through_client": 0, "blocks_reused": report.blocks_reused}
    if result.get("fallback"):
        report.incremental = f"full copy: {result['fallback']} (the target fetched every block)"
        report.base = None
        note(report.incremental)


def _stream_delta(
    source: Endpoint, target: Endpoint, image: dict[str, Any], plan: inc.BasePlan, state: dict, step: Callable,
    say: Progress, report: CopyReport, note: Callable[[str], None],
) -> str | None:  # fmt: skip
    """Stage only the blocks the base lacks into a new raw target image and import it with
    ``imagehop-delta``; the new image's id, or None when the target could not build on the base
    (nothing is left behind then, and the caller streams the whole image). A block the target finds
    corrupted is sent once more."""
    glance = target.glance
    if "delta" in state:
        done = state["delta"]
        report.blocks_reused, report.blocks_sent = done["reused"], done["sent"]
        report.bytes_moved = done["bytes"]
        report.move = {"bytes": done["bytes"], "upload": "delta", "blocks_reused": done["reused"]}
        return str(state["created"]["image"])
    current = _reuse_created(glance, state)
    if current is not None and current.get("status") not in ("queued", "importing", "saving"):
        glance.delete_image(current["id"])  # a partial stage or a failed build: start that image again
        del state["created"]
        current = None
    if current is None:
        current = _create_target(target, image, "raw", step)
    new_id = state["delta_image"] = str(current["id"])
    sent = inc.Sent()
    for attempt in (1, 2):
        if current.get("status") == "queued":
            say("move", {"object": f"{source.label} image {image['id']} (changed blocks)", "size": plan.bytes_to_move})
            sent = inc.Sent()
            records = inc.delta_records(source.glance, image["id"], plan, sent)

            def counted(chunks: Any) -> Any:
                for chunk in chunks:
                    say("bytes", {"n": len(chunk)})
                    yield chunk

            try:
                glance.put_data(new_id, counted(inc.delta_stream.encode(records)), inc.delta_length(plan), stage=True)
            except (direct.StreamError, formats.DiskFormatError) as exc:
                glance.delete_image(new_id)
                state.pop("created", None)
                state.pop("delta_image", None)
                raise CopyError(f"reading the changed blocks stopped: {exc}") from None
            try:
                glance.start_import(new_id, inc.delta_import(plan, image))
            except GlanceError as exc:
                if exc.status != 404:
                    raise
                glance.delete_image(new_id)  # the base was deleted since the plan: nothing to build on
                state.pop("created", None)
                state.pop("delta_image", None)
                report.incremental = f"full copy: the base {plan.image_id} is gone from {target.label}"
                report.base = None
                note(report.incremental)
                return None
            say("import", {"id": new_id, "status": "started", "message": inc.DELTA_METHOD})
        try:
            task_id = _wait_active(glance, new_id, say)
            break
        except CopyError as exc:
            text = str(exc)
            if "corrupted on the way" in text and attempt == 1:
                note(f"{target.label} found a block corrupted on the way; sending the changed blocks again")
                current = glance.get_image(new_id) or {}
                continue
            glance.delete_image(new_id)
            state.pop("created", None)
            state.pop("delta_image", None)
            if "Cannot build on the base" in text:
                report.incremental = f"full copy: {text.split('failed: ', 1)[-1]}"
                report.base = None
                note(report.incremental)
                return None
            raise
    if task_id:
        report.tasks["import"] = task_id
    poll = glance.import_task(new_id)
    result = ((poll.task.get("result") or {}) if poll is not None else {}).get("x-imagehop-delta") or {}
    report.blocks_reused = int(result.get("blocks_reused", plan.blocks_reused))
    report.blocks_sent = int(result.get("blocks_sent", sent.blocks))
    report.bytes_moved = int(result.get("bytes_sent", sent.bytes))
    report.move = {"bytes": report.bytes_moved, "upload": "delta", "blocks_reused": report.blocks_reused}
    step("delta", reused=report.blocks_reused, sent=report.blocks_sent, bytes=report.bytes_moved)
    return new_id


def _wait_active(
    glance: GlanceClient, image_id: str, say: Progress, sleep: Callable[[float], None] = time.sleep
) -> str:
    """Poll the image until it is active and its import task has ended; fail with the task's message.
    Returns the id of the image's import task ("" when the cloud shows none).

    A Glance (and imagehop) unlocks the image a moment before its task records the outcome: the
    task's result (what an incremental pull reused) is read only once the task says it ended, or
    after :data:`TASK_SETTLE` seconds of an active image whose task says nothing more."""
    task_id = ""
    settle = 0.1  # the task finished but the image read before it was not active yet: read it again soon
    active_since: float | None = None
    recorded = 0.02  # the image is active, its task not yet ended: read again this soon
    while True:
        current = glance.get_image(image_id)
        if current is None:
            raise CopyError(f"the image {image_id} was deleted in {glance.region} during the import")
        if current.get("status") == "active":
            locked = current.get("os_glance_import_task") is not None
            poll = None if locked else glance.import_task(image_id)
            if poll is not None:
                task_id = str(poll.task.get("id") or task_id)
            if not locked and (poll is None or poll.task.get("status") in ("success", "failure")):
                return task_id
            active_since = time.monotonic() if active_since is None else active_since
            if time.monotonic() - active_since > TASK_SETTLE:
                return task_id
            sleep(min(recorded, 1.0))  # a matter of milliseconds in imagehop
            recorded *= 2
            continue
        poll = glance.import_task(image_id)
        if poll is not None:
            task_id = str(poll.task.get("id") or task_id)
            say("pull", poll.task)
            if poll.task.get("status") == "failure":
                raise CopyError(
                    f"the import of {image_id} in {glance.region} failed: {poll.task.get('message') or 'no message'}"
                )
        failed = current.get("os_glance_failed_import")
        if current.get("status") in ("killed", "deleted", "deactivated") or (
            failed and current.get("status") == "queued" and not current.get("os_glance_importing_to_stores")
        ):
            raise CopyError(f"the import of {image_id} in {glance.region} failed (image {current['status']})")
        delay = glance.next_delay(poll.retry_after if poll else None)
        if poll is not None and poll.task.get("status") == "success":
            # A finished task carries no Retry-After: without this the copy would sleep a whole poll
            # interval (30 s by default) for an image that became active a moment after it was read.
            delay, settle = min(delay, settle), settle * 2
        sleep(delay)


def _carry(
    target: Endpoint, new_image: dict[str, Any], source: dict[str, Any], props: dict[str, str], report: CopyReport,
    note: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Every user property (those the target refuses left out and reported), min_ram/min_disk, tags,
    visibility as the source has it, and the image shown in listings again."""
    glance = target.glance
    for key in source:
        if key.startswith("os_glance") and key not in report.left_out:
            report.left_out[key] = "owned by the target's Glance"
    wanted: dict[str, Any] = dict(props)
    for key in CARRIED_ATTRIBUTES:
        if source.get(key) is not None:
            wanted[key] = source[key]
    wanted["os_hidden"] = bool(source.get("os_hidden", False))
    try:
        new_image = glance.patch(new_image["id"], wanted, new_image)
    except GlanceError as exc:
        if exc.status not in (400, 403, 409, 413):
            raise CopyError(f"setting the properties of {new_image['id']} in {target.label} failed: {exc}") from None
        for key, value in wanted.items():  # one at a time, to find the ones the target refuses
            try:
                new_image = glance.patch(new_image["id"], {key: value}, new_image)
            except GlanceError as one:
                report.left_out[key] = f"refused by {target.label} ({one.status})"
        refused = [k for k, why in report.left_out.items() if why.startswith("refused")]
        if refused:
            note(f"{target.label} refused these properties, left out: {', '.join(refused)}")
    for tag in source.get("tags") or []:
        if tag not in (new_image.get("tags") or []):
            glance.add_tag(new_image["id"], tag)
    visibility = source.get("visibility")
    if visibility and new_image.get("visibility") != visibility:
        try:
            new_image = glance.patch(new_image["id"], {"visibility": visibility}, new_image)
        except GlanceError as exc:
            note(f"the copy is {new_image.get('visibility')}, not {visibility}: {target.label} refused ({exc.status})")
    return glance.get_image(new_image["id"]) or new_image


def _boot(
    target: Endpoint, image_id: str, options: CopyOptions, state: dict, step: Callable, report: CopyReport,
    say: Progress,
) -> None:  # fmt: skip
    """Boot ``options.boot`` from the copy once (a re-run reports the same server)."""
    booted = state.get("booted")
    if isinstance(booted, dict) and booted.get("name") == options.boot and booted.get("image") == image_id:
        report.server = booted["server"]
        return
    try:
        compute = ComputeClient(target.cloud, target.region)
    except LookupError as exc:
        raise final(f"the copy {image_id} in {target.label} is done, but --boot needs compute there: {exc}") from None
    say("boot", {"name": options.boot})
    try:
        server = compute.boot(str(options.boot), image_id, options.flavor or "", on_update=lambda s: say("boot", s))
    except BootError as exc:
        raise CopyError(
            f"the copy {image_id} in {target.label} is done, but booting {options.boot!r} failed: {exc}"
        ) from None
    report.server = server["id"]
    step("booted", name=options.boot, image=image_id, server=server["id"])


def _already_copied(
    glance: GlanceClient, key: str, value: str, image: dict[str, Any], convert: str | None
) -> dict[str, Any] | None:
    """An active target image with the coordinating property and the same content: the content
    digest where both sides measure it, else ``os_hash_value`` and size (the same bytes), else
    the virtual size; a converted copy is recognised by its format."""
    found = glance.find_images(**{key: value})
    if image.get("os_hidden"):  # a hidden source gives a hidden copy, which listings leave out by default
        found += glance.find_images(**{key: value, "os_hidden": "true"})
    for candidate in found:
        if candidate.get("status") != "active":
            continue
        if convert and candidate.get("disk_format") != convert:
            continue
        digest = image.get(CONTENT_DIGEST)
        if digest and candidate.get(CONTENT_DIGEST):
            if candidate[CONTENT_DIGEST] == digest:
                return candidate
            continue
        if not convert and image.get("os_hash_value") and candidate.get("os_hash_algo") == image.get("os_hash_algo"):
            if candidate.get("os_hash_value") == image["os_hash_value"] and candidate.get("size") == image.get("size"):
                return candidate
            continue
        if (convert or not digest) and candidate.get("virtual_size") in (None, image.get("virtual_size")):
            return candidate
    return None


def _already_by(image: dict[str, Any], existing: dict[str, Any]) -> str:
    if image.get(CONTENT_DIGEST) and existing.get(CONTENT_DIGEST):
        return "content digest"
    if image.get("os_hash_value") and existing.get("os_hash_value") == image["os_hash_value"]:
        return f"{image.get('os_hash_algo') or 'os_hash'} and size"
    return "the coordinating property and format"


def verify(
    source: dict[str, Any], target: dict[str, Any], state: dict | None = None, convert: str | None = None
) -> str:
    """Compare what both sides offer; say which checks were possible. Raises on a mismatch."""
    checks = []
    streamed = (state or {}).get("streamed")
    if isinstance(streamed, dict) and streamed.get("algo"):
        checks.append(f"MD5 and {streamed['algo']} computed in flight = the target's")
    a, b = source.get(CONTENT_DIGEST), target.get(CONTENT_DIGEST)
    if a and b:
        if a != b:
            raise CopyError(
                f"the copy differs from the source: content digest {b} != {a}. The target image {target['id']} "
                "is left for inspection; delete it and run the copy again.",
                resumable=False,
            )
        return "; ".join(["content digest", *checks])
    same_bytes = not convert and source.get("disk_format") == target.get("disk_format")
    algo = source.get("os_hash_algo")
    if same_bytes and source.get("os_hash_value") and target.get("os_hash_algo") == algo:
        if target.get("os_hash_value") != source["os_hash_value"] or target.get("size") != source.get("size"):
            raise CopyError(
                f"the copy differs from the source: {algo} or size differ. The target image {target['id']} is left "
                "for inspection; delete it and run the copy again.",
                resumable=False,
            )
        return "; ".join([f"{algo} and size = the source's", *checks])
    if checks:
        return "; ".join(checks)
    vs_a, vs_b = source.get("virtual_size"), target.get("virtual_size")
    if vs_a and vs_b:
        if vs_a != vs_b:
            raise CopyError(f"the copy's virtual size {vs_b} differs from the source's {vs_a}", resumable=False)
        return "virtual size (no content digest on both sides)"
    return "none possible (neither content digest nor virtual size on both sides)"


__all__ = ["CopyError", "CopyOptions", "CopyReport", "Endpoint", "GlanceError", "copy_image"]
