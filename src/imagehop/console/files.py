"""Storage > Files: containers, Create Container, browse by pseudo-folder, upload, download, delete, public."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import Response

from imagehop.console.api import ApiError, object_path
from imagehop.console.images import attachment, download_name, file_chunks
from imagehop.console.web import Ctx, page

PAGE_SIZE = 500
PUBLIC_READ = ".r:*,.rlistings"


def check_container_name(name: str) -> None:
    if not name:
        raise ApiError(400, "Give the container a name.")
    if "/" in name or len(name.encode()) > 256:
        raise ApiError(400, "A container name has at most 256 bytes and no '/'.")


def check_object_name(name: str) -> None:
    if not name or len(name.encode()) > 1024:
        raise ApiError(400, "An object name has 1 to 1024 bytes.")


def is_public(headers: Any) -> bool:
    return ".r:*" in headers.get("x-container-read", "").replace(" ", "").split(",")


@page
async def list_containers(ctx: Ctx) -> Response:
    response = await ctx.api.swift("GET", "", params={"format": "json", "limit": 10000})
    return ctx.render("files.html", section="files", containers=response.json(), account=response.headers,
                      error="", new_name="")  # fmt: skip


@page
async def create_container(ctx: Ctx) -> Response:
    name = ctx.field("name")
    try:
        check_container_name(name)
    except ApiError as exc:
        response = await ctx.api.swift("GET", "", params={"format": "json", "limit": 10000})
        return ctx.render("files.html", status=400, section="files", containers=response.json(),
                          account=response.headers, error=exc.message, new_name=name)  # fmt: skip
    await ctx.api.swift("PUT", object_path(name), ok=(201, 202))
    return ctx.redirect(ctx.url(ctx.region, "files", name), "ok", f"Container {name} is created.")


@page
async def browse(ctx: Ctx) -> Response:
    container, prefix, marker = ctx.param("container"), ctx.query("prefix"), ctx.query("marker")
    params = {"format": "json", "delimiter": "/", "prefix": prefix, "limit": PAGE_SIZE}
    if marker:
        params["marker"] = marker
    response = await ctx.api.swift("GET", object_path(container), params=params)
    entries = response.json()
    folders = [e["subdir"] for e in entries if "subdir" in e]
    objects = [e for e in entries if "name" in e]
    crumbs, walked = [], ""
    for part in [p for p in prefix.split("/") if p]:
        walked += part + "/"
        crumbs.append((part, walked))
    public_url = f"{ctx.api.storage_url}{object_path(container)}/" if is_public(response.headers) else ""
    next_marker = entries[-1].get("name") or entries[-1].get("subdir") if len(entries) >= PAGE_SIZE else ""
    return ctx.render("container.html", section="files", container=container, prefix=prefix, folders=folders,
                      objects=objects, crumbs=crumbs, headers=response.headers, public_url=public_url,
                      next_marker=next_marker)  # fmt: skip


@page
async def upload_object(ctx: Ctx) -> Response:
    assert ctx.form is not None
    container, prefix = ctx.param("container"), ctx.field("prefix")
    upload = ctx.form.get("file")
    back = ctx.url(ctx.region, "files", container, prefix=prefix)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return ctx.redirect(back, "error", "Choose a file to upload.")
    name = prefix + (ctx.field("name") or upload.filename.rsplit("/", 1)[-1])
    check_object_name(name)
    headers = {"Content-Type": upload.content_type or "application/octet-stream"}
    await ctx.api.swift("PUT", object_path(container, name), ok=(201,), content=file_chunks(upload),
                        headers=headers, timeout=None)  # fmt: skip
    return ctx.redirect(back, "ok", f"Uploaded {name}.")


@page
async def download_object(ctx: Ctx) -> Response:
    container, name = ctx.param("container"), ctx.query("name")
    check_object_name(name)
    upstream = await ctx.api.stream("object-store", object_path(container, name))
    return attachment(upstream, download_name(name.rsplit("/", 1)[-1], "object"))


@page
async def delete_object(ctx: Ctx) -> Response:
    container = ctx.param("container")
    name = ctx.field("name") if ctx.request.method == "POST" else ctx.query("name")
    check_object_name(name)
    prefix = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    back = ctx.url(ctx.region, "files", container, prefix=prefix)
    if ctx.request.method == "GET":
        await ctx.api.swift("HEAD", object_path(container, name))
        return ctx.render("confirm.html", section="files", what="object", name=name, fields={"name": name},
                          action=ctx.url(ctx.region, "files", container, "delete-object"), back=back,
                          button="Delete object")  # fmt: skip
    await ctx.api.swift("DELETE", object_path(container, name), ok=(204, 404))
    return ctx.redirect(back, "ok", f"Deleted {name}.")


@page
async def set_access(ctx: Ctx) -> Response:
    container = ctx.param("container")
    back = ctx.url(ctx.region, "files", container)
    if ctx.field("public") == "1":
        await ctx.api.swift("POST", object_path(container), ok=(204,), headers={"X-Container-Read": PUBLIC_READ})
        return ctx.redirect(back, "ok", f"Container {container} is public: anyone with its URL can read it.")
    await ctx.api.swift("POST", object_path(container), ok=(204,), headers={"X-Remove-Container-Read": "x"})
    return ctx.redirect(back, "ok", f"Container {container} is private again.")


@page
async def delete_container(ctx: Ctx) -> Response:
    container = ctx.param("container")
    if ctx.request.method == "GET":
        await ctx.api.swift("HEAD", object_path(container), ok=(204, 200))
        return ctx.render("confirm.html", section="files", what="container", name=container, fields={},
                          action=ctx.url(ctx.region, "files", container, "delete"),
                          back=ctx.url(ctx.region, "files", container), button="Delete container")  # fmt: skip
    try:
        await ctx.api.swift("DELETE", object_path(container), ok=(204,))
    except ApiError as exc:
        if exc.status != 409:
            raise
        return ctx.redirect(ctx.url(ctx.region, "files", container), "error",
                            f"Container {container} is not empty: delete its objects first.")  # fmt: skip
    return ctx.redirect(ctx.url(ctx.region, "files"), "ok", f"Container {container} is deleted.")
