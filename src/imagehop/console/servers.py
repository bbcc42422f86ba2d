"""Servers: list, Create Server (with the Image tabs of the Control Panel), detail, Create Image, delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from imagehop.console.api import ApiError
from imagehop.console.web import Ctx, page

DELETED_SERVER = "Deleted Server"
BUILDING = ("BUILD", "REBUILD", "RESIZE", "MIGRATING", "REBOOT", "HARD_REBOOT")


@dataclass
class ImageGroup:
    title: str
    images: list[dict[str, Any]] = field(default_factory=list)


def is_saved(image: dict[str, Any]) -> bool:
    """An image made from a server (what the Control Panel lists under Saved)."""
    return image.get("image_type") == "snapshot" or bool(image.get("instance_uuid"))


def image_tabs(images: list[dict[str, Any]], servers: list[dict[str, Any]], tenant: str) -> dict[str, list]:
    """The Image section's tabs: base images, and saved ones grouped by the server they came from.

    A saved image whose ``instance_uuid`` names no server in this region (deleted, or a server of
    another region, as a copied image's is) goes under **Deleted Server**, as in the Control Panel.
    """
    names = {s["id"]: s.get("name") or s["id"] for s in servers}
    public = ImageGroup("Public images")
    own = ImageGroup("Your images")
    by_server: dict[str, ImageGroup] = {}
    deleted = ImageGroup(DELETED_SERVER)
    for image in sorted(images, key=lambda i: (str(i.get("name") or ""), i["id"])):
        if image.get("status") != "active":
            continue
        if is_saved(image):
            server = image.get("instance_uuid") or ""
            if server in names:
                by_server.setdefault(server, ImageGroup(names[server])).images.append(image)
            else:
                deleted.images.append(image)
        elif image.get("visibility") in ("public", "community") and image.get("owner") != tenant:
            public.images.append(image)
        else:
            own.images.append(image)
    saved = [*sorted(by_server.values(), key=lambda g: g.title.lower()), deleted]
    return {
        "base": [g for g in (public, own) if g.images],
        "saved": [g for g in saved if g.images],
    }


def flavor_name(server: dict[str, Any], flavors: dict[str, str]) -> str:
    flavor = server.get("flavor") or {}
    return str(flavor.get("original_name") or flavors.get(str(flavor.get("id")), flavor.get("id") or "—"))


@page
async def list_servers(ctx: Ctx) -> Response:
    body = await ctx.api.compute("GET", "/servers/detail", params={"limit": 1000})
    images = {i["id"]: i.get("name") or i["id"] for i in await ctx.api.all_images()}
    servers = body.get("servers", [])
    building = any(s.get("status") in BUILDING for s in servers)
    template = "servers_live.html" if ctx.is_htmx else "servers.html"
    return ctx.render(template, section="servers", servers=servers, images=images, building=building)


async def _create_form(ctx: Ctx, status: int = 200, error: str = "") -> Response:
    flavors = (await ctx.api.compute("GET", "/flavors/detail")).get("flavors", [])
    servers = (await ctx.api.compute("GET", "/servers/detail", params={"limit": 1000})).get("servers", [])
    images = await ctx.api.all_images(status="active")
    tabs = image_tabs(images, servers, ctx.session.tenant)
    source = ctx.form if ctx.form is not None else ctx.request.query_params
    values = {k: str(source.get(k) or "") for k in ("name", "flavor", "image")}
    tab = str(source.get("tab_switch") or source.get("tab") or "")
    if tab not in ("base", "saved"):
        chosen = values["image"]
        tab = "saved" if chosen and any(chosen == i["id"] for g in tabs["saved"] for i in g.images) else "base"
    if not values["flavor"] and flavors:
        values["flavor"] = str(sorted(flavors, key=lambda f: f.get("ram", 0))[0]["id"])
    return ctx.render("server_new.html", status=status, section="servers", flavors=flavors, tabs=tabs, tab=tab,
                      values=values, error=error)  # fmt: skip


@page
async def new_server(ctx: Ctx) -> Response:
    return await _create_form(ctx)


@page
async def create_server(ctx: Ctx) -> Response:
    name, flavor, image = ctx.field("name"), ctx.field("flavor"), ctx.field("image")
    if ctx.field("tab_switch"):  # the no-JavaScript tab buttons submit the form to show another tab
        return await _create_form(ctx)
    missing = [label for label, value in (("a name", name), ("a flavor", flavor), ("an image", image)) if not value]
    if missing:
        return await _create_form(ctx, 400, "Give " + ", ".join(missing) + ".")
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"}}
    try:
        created = await ctx.api.compute("POST", "/servers", json=body, ok=(202,))
    except ApiError as exc:
        if exc.status >= 500:
            raise
        return await _create_form(ctx, exc.status, exc.message)
    server_id = created["server"]["id"]
    return ctx.redirect(ctx.url(ctx.region, "servers", server_id), "ok", f"Server {name} is being built.")


@page
async def show_server(ctx: Ctx) -> Response:
    server = (await ctx.api.compute("GET", f"/servers/{ctx.param('server_id')}"))["server"]
    image_ref = (server.get("image") or {}).get("id") if isinstance(server.get("image"), dict) else None
    image = await ctx.api.find_image(image_ref) if image_ref else None
    building = server.get("status") in BUILDING
    values = {"server": server, "image": image, "image_ref": image_ref, "flavor": flavor_name(server, {})}
    if ctx.is_htmx:
        return ctx.render("server_live.html", section="servers", building=building, **values)
    snapshots = await ctx.api.all_images(instance_uuid=server["id"])
    return ctx.render("server.html", section="servers", snapshots=snapshots, building=building, **values)


@page
async def create_image(ctx: Ctx) -> Response:
    server_id, name = ctx.param("server_id"), ctx.field("name")
    if not name:
        return ctx.redirect(ctx.url(ctx.region, "servers", server_id), "error", "Give the image a name.")
    created = await ctx.api.compute(
        "POST", f"/servers/{server_id}/action", json={"createImage": {"name": name}}, ok=(202,)
    )
    image_id = created["image_id"]
    return ctx.redirect(ctx.url(ctx.region, "images", image_id), "ok", f"Image {name} is being created.")


@page
async def delete_server(ctx: Ctx) -> Response:
    server = (await ctx.api.compute("GET", f"/servers/{ctx.param('server_id')}"))["server"]
    if ctx.request.method == "GET":
        return ctx.render("confirm.html", section="servers", what="server", name=server.get("name"),
                          action=ctx.url(ctx.region, "servers", server["id"], "delete"),
                          back=ctx.url(ctx.region, "servers", server["id"]), button="Delete server")  # fmt: skip
    await ctx.api.call("compute", "DELETE", f"/servers/{server['id']}", ok=(204,))
    return ctx.redirect(ctx.url(ctx.region, "servers"), "ok", f"Server {server.get('name')} is deleted.")
