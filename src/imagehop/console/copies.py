"""Copy to region: one click asks the target region to pull the image itself (glance-download).

No byte goes through the browser or the console: the console creates the target image (with the
source's properties, the coordinating property and ``imagehop.source``) and starts its
``glance-download`` import with the user's token; the target region's worker fetches the bytes
from the source region. Everything the progress page shows is read back from the APIs (the target
image, its import task, the source image), so a copy is watched from any browser or process, and
several run at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from imagehop.console.api import Api, ApiError, parse_time
from imagehop.console.images import BASE_ATTRIBUTES, NOT_SHOWN, parse_property_filter, pointer
from imagehop.console.web import Ctx, page

SOURCE_PROPERTY = "imagehop.source"
# Computed by each region for its own copy of the bytes: never carried over.
REGION_OWN = ("os_glance", "imagehop.content_digest", "os_hash", "checksum")
CARRIED_ATTRIBUTES = ("name", "disk_format", "container_format", "min_disk", "min_ram", "tags")
COPIED_RE = re.compile(r"Copied (\d+)(?: of (\d+))? MiB")
MIB = 1 << 20


@dataclass
class CopyState:
    """What a copy's page shows, read from the APIs."""

    image: dict[str, Any]
    task: dict[str, Any] | None
    source_region: str
    source_id: str
    source: dict[str, Any] | None
    step: str  # waiting, pulling, active, failed
    done: int
    total: int
    eta: float | None
    message: str

    @property
    def percent(self) -> int:
        if self.step == "active":
            return 100
        return min(99, int(self.done * 100 / self.total)) if self.total else 0

    @property
    def final(self) -> bool:
        return self.step in ("active", "failed")


def copy_body(source: dict[str, Any], key: str, value: str, source_ref: str) -> dict[str, Any]:
    """The target image: the source's user properties (its server's too, so a copied snapshot is
    listed under Deleted Server), the coordinating property and where it came from."""
    body = {k: source[k] for k in CARRIED_ATTRIBUTES if source.get(k) not in (None, "")}
    for k, v in source.items():
        if k in BASE_ATTRIBUTES or k in NOT_SHOWN or k.startswith(REGION_OWN) or not isinstance(v, str):
            continue
        body[k] = v
    body[key] = value
    body[SOURCE_PROPERTY] = source_ref
    return body


@page
async def start_copy(ctx: Ctx) -> Response:
    image_id, target = ctx.param("image_id"), ctx.field("target")
    back = ctx.url(ctx.region, "images", image_id)
    if not target or target == ctx.region:
        return ctx.redirect(back, "error", "Choose another region to copy the image to.")
    target_api = ctx.api_for(target)
    source = await ctx.api.image(image_id)
    if source.get("status") != "active":
        return ctx.redirect(back, "error", f"Only an active image can be copied; this one is {source.get('status')}.")
    source_ref = f"{ctx.region}/{image_id}"
    tag = parse_property_filter(ctx.field("tag")) or (SOURCE_PROPERTY, source_ref)

    existing = await _existing_copy(target_api, source_ref)
    if existing is not None:
        status = existing.get("status")
        message = "It is already in" if status == "active" else "It is already being copied to"
        return ctx.redirect(ctx.url(target, "copies", existing["id"]), "info", f"{message} {target}.")

    # The coordinating property goes on the source too, as the walkthrough does: both are found by it.
    key, value = tag
    if key != SOURCE_PROPERTY and source.get(key) != value:
        op = "replace" if key in source else "add"
        source = await ctx.api.patch_image(image_id, [{"op": op, "path": pointer(key), "value": value}])
    created = await target_api.create_image(copy_body(source, key, value, source_ref))
    method = {
        "name": "glance-download",
        "glance_image_id": image_id,
        "glance_region": ctx.region,
        "glance_service_interface": "public",
    }
    try:
        await target_api.call("image", "POST", f"/images/{created['id']}/import", ok=(202,), json={"method": method})
    except ApiError:
        await target_api.call("image", "DELETE", f"/images/{created['id']}", ok=(204, 404))
        raise
    label = source.get("name") or image_id
    return ctx.redirect(ctx.url(target, "copies", created["id"]), "ok",
                        f"Copying {label} from {ctx.region} to {target}: {target} pulls it itself.")  # fmt: skip


async def _existing_copy(target: Api, source_ref: str) -> dict[str, Any] | None:
    """A copy of the same image already there or on its way; a failed leftover is cleared."""
    for image in await target.all_images(**{SOURCE_PROPERTY: source_ref}):
        if image.get("status") in ("active", "importing", "saving"):
            return image
        if image.get("status") == "queued":
            tasks = await target.image_tasks(image["id"])
            if any(t.get("status") in ("pending", "processing") for t in tasks):
                return image
            await target.call("image", "DELETE", f"/images/{image['id']}", ok=(204, 404, 403))
    return None


def import_task(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    imports = [t for t in tasks if t.get("type") == "api_image_import"]
    return max(imports, key=lambda t: t.get("created_at") or "") if imports else None


async def copy_state(ctx: Ctx, api: Api, image_id: str) -> CopyState | None:
    image = await api.find_image(image_id)
    if image is None:
        return None
    task = import_task(await api.image_tasks(image_id))
    method = ((task or {}).get("input") or {}).get("import_req", {}).get("method", {})
    source_region, source_id = str(method.get("glance_region") or ""), str(method.get("glance_image_id") or "")
    if not source_id and "/" in str(image.get(SOURCE_PROPERTY, "")):
        source_region, source_id = str(image[SOURCE_PROPERTY]).split("/", 1)
    source = None
    if source_id and ctx.catalog is not None and source_region in ctx.catalog.regions:
        try:
            source = await api.in_region(source_region).find_image(source_id)
        except ApiError:
            source = None
    total = int((source or {}).get("size") or image.get("size") or 0)
    message = str((task or {}).get("message") or "")
    status = (task or {}).get("status")
    if image.get("status") == "active":
        step, done = "active", total
    elif status == "failure":
        step, done = "failed", 0
    elif status == "processing" or image.get("status") in ("importing", "saving"):
        step = "pulling" if status == "processing" else "waiting"
        match = COPIED_RE.search(message)
        done = min(int(match.group(1)) * MIB, total) if match else 0
    else:
        step, done = "waiting", 0
    eta = None
    if step == "pulling" and task and done and total > done:
        elapsed = max(1.0, parse_time(task.get("updated_at")) - parse_time(task.get("created_at")))
        eta = (total - done) / (done / elapsed)
    return CopyState(image, task, source_region, source_id, source, step, done, total, eta, message)


@page
async def show_copy(ctx: Ctx) -> Response:
    state = await copy_state(ctx, ctx.api, ctx.param("image_id"))
    if state is None:
        raise ApiError(404, "There is no such copy in this region (the image is gone).")
    template = "copy_progress.html" if ctx.is_htmx else "copy.html"
    return ctx.render(template, section="copies", copy=state, now=time.time())


@page
async def list_copies(ctx: Ctx) -> Response:
    """The copies into this region (its images' glance-download imports), live while any runs."""
    body = await ctx.api.json("image", "GET", "/tasks", params={"type": "api_image_import", "limit": 10})
    ids = list(dict.fromkeys(t["image_id"] for t in body.get("tasks", []) if t.get("image_id")))
    states = await asyncio.gather(*(copy_state(ctx, ctx.api, i) for i in ids))
    copies = [s for s in states if s is not None and s.source_id]
    running = any(not s.final for s in copies)
    template = "copies_table.html" if ctx.is_htmx else "copies.html"
    return ctx.render(template, section="copies", copies=copies, running=running)
