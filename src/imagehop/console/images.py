"""Images: list with filters, detail with every property, edit properties, share, download, upload, delete."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from imagehop.console.api import ApiError
from imagehop.console.web import Ctx, page

PAGE_SIZE = 25
STATUSES = ("queued", "saving", "uploading", "importing", "active", "deactivated", "killed")
VISIBILITIES = ("public", "private", "shared", "community")
DISK_FORMATS = ("raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi", "iso", "ami", "ari", "aki", "ploop")
# Glance's own attributes: shown in their own table, never in the property editor.
BASE_ATTRIBUTES = (
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner", "size", "virtual_size", "disk_format",
    "container_format", "checksum", "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "created_at",
    "updated_at", "tags", "stores",
)  # fmt: skip
NOT_SHOWN = ("self", "file", "schema", "locations", "direct_url")
# Values the region computes itself: shown, not editable.
COMPUTED = ("imagehop.content_digest",)
KEY_RE = re.compile(r"^[^\s=/~][^=]{0,254}$")
LIST_PARAMS = ("limit", "marker", "sort_key", "sort_dir", "sort", "member_status", "owner", "tag", "size_min",
               "size_max", "os_hidden", "created_at", "updated_at", "id", "protected")  # fmt: skip


def pointer(key: str) -> str:
    """A JSON-pointer path for a property name (RFC 6901)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def properties(image: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(image.items()) if k not in BASE_ATTRIBUTES and k not in NOT_SHOWN}


def editable(key: str) -> bool:
    return key not in COMPUTED and not key.startswith("os_glance")


def parse_property_filter(text: str) -> tuple[str, str] | None:
    if not text:
        return None
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ApiError(
            400, f"Write the property filter as key=value, e.g. com.mycompany.image-of=db-slave-3 (got {text!r})."
        )
    if key in LIST_PARAMS or key in ("name", "status", "visibility"):
        raise ApiError(400, f"{key} is not a property: use its own filter.")
    return key, value


@page
async def list_images(ctx: Ctx) -> Response:
    filters = {k: ctx.query(k) for k in ("name", "status", "visibility", "property")}
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    for key in ("name", "status", "visibility"):
        if filters[key]:
            params[key] = filters[key]
    if filters["visibility"] == "" and ctx.query("all"):
        params["visibility"] = "all"
    error = ""
    try:
        prop = parse_property_filter(filters["property"])
        if prop:
            params[prop[0]] = prop[1]
        if ctx.query("marker"):
            params["marker"] = ctx.query("marker")
        body = await ctx.api.images(**params)
    except ApiError as exc:
        if exc.status >= 500 or exc.status == 401:
            raise
        body, error = {"images": []}, exc.message
    next_marker = ""
    if body.get("next"):
        next_marker = parse_qs(urlsplit(body["next"]).query).get("marker", [""])[0]
    return ctx.render("images.html", section="images", images=body.get("images", []), filters=filters,
                      statuses=STATUSES, visibilities=VISIBILITIES, next_marker=next_marker, error=error,
                      status=400 if error else 200)  # fmt: skip


@page
async def show_image(ctx: Ctx) -> Response:
    image = await ctx.api.image(ctx.param("image_id"))
    busy = image.get("status") in ("queued", "saving", "importing", "uploading")
    if ctx.is_htmx:
        return ctx.render("image_live.html", section="images", image=image, busy=busy)
    owner = image.get("owner") == ctx.session.tenant
    members: list[dict[str, Any]] = []
    if image.get("visibility") == "shared" or not owner:
        try:
            members = await ctx.api.members(image["id"])
        except ApiError:
            members = []
    assert ctx.catalog is not None
    return ctx.render(
        "image.html",
        section="images",
        image=image,
        props=properties(image),
        owner=owner,
        members=members,
        editable=editable,
        targets=[r for r in ctx.catalog.regions if r != ctx.region],
        tasks=await ctx.api.image_tasks(image["id"]),
        default_tag=f"imagehop.source={ctx.region}/{image['id']}",
        busy=busy,
    )


@page
async def edit_properties(ctx: Ctx) -> Response:
    """Add, replace and remove properties with one JSON patch (what the Control Panel never allowed)."""
    image_id = ctx.param("image_id")
    image = await ctx.api.image(image_id)
    assert ctx.form is not None
    ops: list[dict[str, Any]] = []
    for index in range(200):
        key = ctx.field(f"key.{index}")
        if not key:
            continue
        if key not in image or not editable(key) or key in BASE_ATTRIBUTES:
            raise ApiError(400, f"{key} is not a property of this image that can be edited here.")
        if ctx.field(f"remove.{index}"):
            ops.append({"op": "remove", "path": pointer(key)})
            continue
        value = ctx.form.get(f"value.{index}")
        if isinstance(value, str) and value != image[key]:
            ops.append({"op": "replace", "path": pointer(key), "value": value})
    for index in range(10):
        key, value = ctx.field(f"new_key.{index}"), ctx.form.get(f"new_value.{index}")
        if not key:
            continue
        if not KEY_RE.match(key) or key in BASE_ATTRIBUTES or not editable(key):
            raise ApiError(400, f"{key!r} cannot be a property name here.")
        value = value if isinstance(value, str) else ""
        ops.append({"op": "replace" if key in image else "add", "path": pointer(key), "value": value})
    back = ctx.url(ctx.region, "images", image_id)
    if not ops:
        return ctx.redirect(back, "info", "Nothing to change.")
    await ctx.api.patch_image(image_id, ops)
    return ctx.redirect(back, "ok", f"Properties saved ({len(ops)} change{'s' if len(ops) > 1 else ''}).")


@page
async def add_member(ctx: Ctx) -> Response:
    image_id, tenant = ctx.param("image_id"), ctx.field("tenant")
    back = ctx.url(ctx.region, "images", image_id)
    if not tenant:
        return ctx.redirect(back, "error", "Give the tenant id to share the image with.")
    image = await ctx.api.image(image_id)
    if image.get("visibility") == "private":
        await ctx.api.patch_image(image_id, [{"op": "replace", "path": "/visibility", "value": "shared"}])
    await ctx.api.json("image", "POST", f"/images/{image_id}/members", json={"member": tenant})
    return ctx.redirect(back, "ok", f"Shared with tenant {tenant}; it appears in their list once they accept it.")


@page
async def remove_member(ctx: Ctx) -> Response:
    image_id, tenant = ctx.param("image_id"), ctx.param("member")
    await ctx.api.call("image", "DELETE", f"/images/{image_id}/members/{tenant}", ok=(204,))
    return ctx.redirect(ctx.url(ctx.region, "images", image_id), "ok", f"Tenant {tenant} no longer shares it.")


@page
async def set_membership(ctx: Ctx) -> Response:
    """The member's answer to a share: accepted, rejected or pending."""
    image_id, status = ctx.param("image_id"), ctx.field("status")
    if status not in ("accepted", "rejected", "pending"):
        raise ApiError(400, "Answer accepted, rejected or pending.")
    await ctx.api.json("image", "PUT", f"/images/{image_id}/members/{ctx.session.tenant}", json={"status": status})
    return ctx.redirect(ctx.url(ctx.region, "images", image_id), "ok", f"You {status} this image.")


def download_name(name: str, fallback: str, extension: str = "") -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or fallback
    return safe if not extension or safe.endswith("." + extension) else f"{safe}.{extension}"


async def relay(response: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw(1 << 20):
            yield chunk
    finally:
        await response.aclose()


def attachment(upstream: Any, filename: str) -> StreamingResponse:
    """User bytes, never rendered by the browser on the console's origin: an attachment, sandboxed."""
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "X-Content-Type-Options": "nosniff",
    }
    if upstream.headers.get("content-length"):
        headers["Content-Length"] = upstream.headers["content-length"]
    return StreamingResponse(relay(upstream), media_type="application/octet-stream", headers=headers)


@page
async def download_image(ctx: Ctx) -> Response:
    image = await ctx.api.image(ctx.param("image_id"))
    if image.get("status") != "active":
        raise ApiError(409, f"Image {image.get('name') or image['id']} is {image.get('status')}: nothing to download.")
    upstream = await ctx.api.stream("image", f"/images/{image['id']}/file")
    extension = image.get("disk_format") or ""
    return attachment(upstream, download_name(str(image.get("name") or ""), image["id"], extension))


@page
async def upload_form(ctx: Ctx) -> Response:
    return ctx.render("image_upload.html", section="images", formats=DISK_FORMATS, values={}, error="")


async def file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@page
async def upload_image(ctx: Ctx) -> Response:
    assert ctx.form is not None
    name, disk_format = ctx.field("name"), ctx.field("disk_format", "raw")
    upload = ctx.form.get("file")
    values = {"name": name, "disk_format": disk_format}
    if not isinstance(upload, UploadFile) or not upload.filename:
        return ctx.render("image_upload.html", status=400, section="images", formats=DISK_FORMATS, values=values,
                          error="Choose a file to upload.")  # fmt: skip
    if disk_format not in DISK_FORMATS:
        disk_format = "raw"
    image = await ctx.api.create_image(
        {"name": name or upload.filename, "disk_format": disk_format, "container_format": "bare"}
    )
    try:
        await ctx.api.upload_image(image["id"], file_chunks(upload))
    except ApiError as exc:
        await ctx.api.call("image", "DELETE", f"/images/{image['id']}", ok=(204, 404))
        return ctx.render("image_upload.html", status=exc.status, section="images", formats=DISK_FORMATS,
                          values=values, error=f"The upload failed: {exc.message}")  # fmt: skip
    return ctx.redirect(ctx.url(ctx.region, "images", image["id"]), "ok", f"Image {image['name']} is uploaded.")


@page
async def delete_image(ctx: Ctx) -> Response:
    image = await ctx.api.image(ctx.param("image_id"))
    label = image.get("name") or image["id"]
    if ctx.request.method == "GET":
        return ctx.render("confirm.html", section="images", what="image", name=label,
                          action=ctx.url(ctx.region, "images", image["id"], "delete"),
                          back=ctx.url(ctx.region, "images", image["id"]), button="Delete image")  # fmt: skip
    await ctx.api.delete_image(image["id"])
    return ctx.redirect(ctx.url(ctx.region, "images"), "ok", f"Image {label} is deleted.")
