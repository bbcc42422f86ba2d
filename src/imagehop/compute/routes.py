"""Compute routes under ``<region URL>/compute``: parse and validate, call the service, render.

Every resource path answers both with the tenant segment (``/v2.1/<tenant>/servers``, the catalog
URL) and without it (``/v2.1/servers``). Errors have Nova's shape: ``{"badRequest": {"code": 400,
"message": ...}}``, ``itemNotFound``, ``conflictingRequest``, ...
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from imagehop import bodies
from imagehop.compute import flavors, versions
from imagehop.compute.errors import (
    BadRequest,
    ComputeError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    OverLimit,
)
from imagehop.compute.images_port import ImageError
from imagehop.compute.service import (
    MAX_METADATA_ITEMS,
    ComputeService,
    ServerQuery,
    ServerRequest,
    iso,
    now,
    vm_state,
)
from imagehop.identity.caller import Caller, require_caller
from imagehop.identity.service import IdentityError
from imagehop.region import Region
from imagehop.streams import BodyTooLarge
from imagehop.tasks import worker as tasks_worker

log = logging.getLogger(__name__)

Record = dict[str, Any]
MAX_NAME = 255
NOVA_IMAGE_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
                     "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR",
                     "deactivated": "ERROR"}  # fmt: skip
NOVA_IMAGE_PROGRESS = {"queued": 25, "saving": 50, "active": 100}
IMAGE_ERROR_KINDS = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest",
                     413: "overLimit"}  # fmt: skip


@dataclass(frozen=True)
class Ctx:
    """One API request: who calls, with which microversion, and the URLs to render links with."""

    request: Request
    caller: Caller
    version: versions.Version
    region_url: str

    @property
    def base(self) -> str:
        return f"{self.region_url}/compute/v2.1/{self.caller.tenant_id}"

    @property
    def bookmark(self) -> str:
        return f"{self.region_url}/compute/{self.caller.tenant_id}"

    def at_least(self, minor: int) -> bool:
        return self.version >= (2, minor)

    def param(self, name: str) -> str:
        return self.request.path_params[name]


Handler = Callable[[Ctx], Awaitable[Response]]


def compute_routes(region: Region) -> list[BaseRoute]:
    service = ComputeService(region)
    url = region.public_url

    def api(**handlers: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                version = versions.requested(request.headers)
            except ComputeError as exc:
                return error_response(exc)
            handler = handlers.get(request.method) or (handlers.get("GET") if request.method == "HEAD" else None)
            try:
                if handler is None:
                    allowed = ", ".join(sorted(handlers))
                    raise MethodNotAllowed(f"The method {request.method} is not allowed here; allowed: {allowed}.")
                try:
                    bodies.check_request_text(request)
                except bodies.UnstorableText as exc:
                    raise BadRequest(str(exc)) from None
                caller = await require_caller(request)
                project = request.path_params.get("project_id")
                if project is not None and project != caller.tenant_id:
                    raise BadRequest(
                        f"Malformed request URL: URL's project_id '{project}' doesn't match Context's "
                        f"project_id '{caller.tenant_id}'"
                    )
                response = await handler(Ctx(request, caller, version, url))
            except ComputeError as exc:
                response = error_response(exc)
            except ImageError as exc:
                kind = IMAGE_ERROR_KINDS.get(exc.status, "computeFault")
                response = JSONResponse({kind: {"code": exc.status, "message": exc.message}}, exc.status)
            except IdentityError:
                raise  # the region app answers 401/403 in the identity service's shape
            except Exception:
                log.exception("compute request %s %s failed", request.method, request.url.path)
                message = "Unexpected API Error. The error is recorded in the imagehop log."
                response = JSONResponse({"computeFault": {"code": 500, "message": message}}, 500)
            response.headers.update(versions.response_headers(version))
            return response

        return endpoint

    # --- versions --------------------------------------------------------------------------------

    async def root_versions(_request: Request) -> Response:
        return JSONResponse({"versions": [versions.version_entry(url)]})

    async def v21_version(_request: Request) -> Response:
        return JSONResponse({"version": versions.version_entry(url)})

    # --- flavors ---------------------------------------------------------------------------------

    async def list_flavors(ctx: Ctx) -> Response:
        return JSONResponse({"flavors": [render_flavor(ctx, f, detail=False) for f in _flavor_page(ctx)]})

    async def list_flavors_detail(ctx: Ctx) -> Response:
        return JSONResponse({"flavors": [render_flavor(ctx, f, detail=True) for f in _flavor_page(ctx)]})

    async def show_flavor(ctx: Ctx) -> Response:
        return JSONResponse({"flavor": render_flavor(ctx, _flavor(ctx.param("flavor_id")), detail=True)})

    async def flavor_extra_specs(ctx: Ctx) -> Response:
        _flavor(ctx.param("flavor_id"))
        return JSONResponse({"extra_specs": {}})

    # --- servers ---------------------------------------------------------------------------------

    async def create_server(ctx: Ctx) -> Response:
        request = parse_server_create(await json_body(ctx.request), ctx)
        server, admin_pass = await run_in_threadpool(service.create_server, ctx.caller, request)
        tasks_worker.wake(region.name)
        body = {
            "id": server["id"],
            "links": server_links(ctx, server["id"]),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": admin_pass,
        }
        location = f"{ctx.base}/servers/{server['id']}"
        return JSONResponse({"server": body}, 202, headers={"Location": location})

    async def list_servers(ctx: Ctx) -> Response:
        return await _servers(ctx, detail=False)

    async def list_servers_detail(ctx: Ctx) -> Response:
        return await _servers(ctx, detail=True)

    async def _servers(ctx: Ctx, detail: bool) -> Response:
        query = parse_server_query(ctx.request)
        rows, full = await run_in_threadpool(service.list_servers, ctx.caller, query)
        body: Record = {"servers": [render_server(ctx, s) if detail else render_server_brief(ctx, s) for s in rows]}
        if full and rows:
            params = [(k, v) for k, v in ctx.request.query_params.multi_items() if k != "marker"]
            params.append(("marker", rows[-1]["id"]))
            path = "/servers/detail" if detail else "/servers"
            query_text = "&".join(f"{k}={v}" for k, v in params)
            body["servers_links"] = [{"rel": "next", "href": f"{ctx.base}{path}?{query_text}"}]
        return JSONResponse(body)

    async def show_server(ctx: Ctx) -> Response:
        server = await run_in_threadpool(service.get_server, ctx.caller, ctx.param("server_id"))
        return JSONResponse({"server": render_server(ctx, server)})

    async def update_server(ctx: Ctx) -> Response:
        changes = parse_server_update(await json_body(ctx.request), ctx)
        server = await run_in_threadpool(service.update_server, ctx.caller, ctx.param("server_id"), changes)
        return JSONResponse({"server": render_server(ctx, server)})

    async def delete_server(ctx: Ctx) -> Response:
        await run_in_threadpool(service.delete_server, ctx.caller, ctx.param("server_id"))
        tasks_worker.wake(region.name)
        return Response(status_code=204)

    async def server_action(ctx: Ctx) -> Response:
        body = await json_body(ctx.request)
        if not isinstance(body, dict) or len(body) != 1:
            raise BadRequest("Malformed request body: an action body is an object with exactly one action.")
        ((action, args),) = body.items()
        if action in NOVA_ACTIONS:
            raise BadRequest(
                f"The server action {action} is not implemented in imagehop: its servers run no guest, so only "
                "createImage is offered."
            )
        if action != "createImage":
            raise BadRequest(f"There is no such action: {action}")
        name, metadata = parse_create_image(args)
        image = await run_in_threadpool(service.create_image, ctx.caller, ctx.param("server_id"), name, metadata)
        tasks_worker.wake(region.name)
        headers = {"Location": f"{ctx.region_url}/image/v2/images/{image['id']}"}
        if ctx.at_least(45):
            return JSONResponse({"image_id": image["id"]}, 202, headers=headers)
        return Response(status_code=202, headers=headers)

    # --- server metadata -------------------------------------------------------------------------

    async def get_metadata(ctx: Ctx) -> Response:
        metadata = await run_in_threadpool(service.get_metadata, ctx.caller, ctx.param("server_id"))
        return JSONResponse({"metadata": metadata})

    async def replace_metadata(ctx: Ctx) -> Response:
        return await _set_metadata(ctx, replace=True)

    async def update_metadata(ctx: Ctx) -> Response:
        return await _set_metadata(ctx, replace=False)

    async def _set_metadata(ctx: Ctx, replace: bool) -> Response:
        body = await json_body(ctx.request)
        if not isinstance(body, dict) or set(body) != {"metadata"}:
            raise BadRequest('Malformed request body: expected {"metadata": {...}}.')
        metadata = parse_metadata(body["metadata"], "metadata")
        result = await run_in_threadpool(
            service.set_metadata, ctx.caller, ctx.param("server_id"), metadata, replace=replace
        )
        return JSONResponse({"metadata": result})

    async def get_metadata_item(ctx: Ctx) -> Response:
        key = ctx.param("key")
        value = await run_in_threadpool(service.get_metadata_item, ctx.caller, ctx.param("server_id"), key)
        return JSONResponse({"meta": {key: value}})

    async def set_metadata_item(ctx: Ctx) -> Response:
        key = ctx.param("key")
        body = await json_body(ctx.request)
        if not isinstance(body, dict) or set(body) != {"meta"}:
            raise BadRequest('Malformed request body: expected {"meta": {"<key>": "<value>"}}.')
        meta = parse_metadata(body["meta"], "meta")
        if list(meta) != [key]:
            raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URL.")
        await run_in_threadpool(service.set_metadata, ctx.caller, ctx.param("server_id"), meta, replace=False)
        return JSONResponse({"meta": meta})

    async def delete_metadata_item(ctx: Ctx) -> Response:
        await run_in_threadpool(service.delete_metadata_item, ctx.caller, ctx.param("server_id"), ctx.param("key"))
        return Response(status_code=204)

    # --- images proxy ----------------------------------------------------------------------------

    async def list_images(ctx: Ctx) -> Response:
        return await _images(ctx, detail=False)

    async def list_images_detail(ctx: Ctx) -> Response:
        return await _images(ctx, detail=True)

    async def _images(ctx: Ctx, detail: bool) -> Response:
        params = image_query(ctx.request)
        rows, _full = await run_in_threadpool(service.list_images, ctx.caller, params)
        return JSONResponse({"images": [render_image(ctx, i) if detail else render_image_brief(ctx, i) for i in rows]})

    async def show_image(ctx: Ctx) -> Response:
        image = await run_in_threadpool(service.get_image, ctx.caller, ctx.param("image_id"))
        return JSONResponse({"image": render_image(ctx, image)})

    # --- limits, availability zones, keypairs ---------------------------------------------------

    async def show_limits(ctx: Ctx) -> Response:
        used = await run_in_threadpool(service.usage, ctx.caller, ctx.request.query_params.get("tenant_id"))
        return JSONResponse({"limits": {"rate": [], "absolute": absolute_limits(ctx, used)}})

    async def list_zones(ctx: Ctx) -> Response:
        return JSONResponse({"availabilityZoneInfo": [{"zoneName": ZONE, "zoneState": {"available": True},
                                                       "hosts": None}]})  # fmt: skip

    async def list_zones_detail(ctx: Ctx) -> Response:
        if not ctx.caller.is_admin:  # Nova's default policy; `openstack availability zone list` then asks without
            raise Forbidden("Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
        service_state = {"available": True, "active": True, "updated_at": iso(now())}
        host = {f"imagehop-{region.name}": {"nova-compute": service_state}}
        zone = {"zoneName": ZONE, "zoneState": {"available": True}, "hosts": host}
        return JSONResponse({"availabilityZoneInfo": [zone]})

    async def keypairs(ctx: Ctx) -> Response:
        raise NotFound(
            "Keypairs are not implemented in imagehop: its servers run no guest, so there is nothing to log in "
            "to. Boot without --key-name."
        )

    async def not_found(ctx: Ctx) -> Response:
        path = ctx.request.url.path
        raise NotFound(
            f"{ctx.request.method} {path} is not implemented in imagehop. Its compute API offers servers (boot, "
            "list, show, rename, delete, metadata, createImage), flavors, images, limits and availability zones "
            "(see docs/api-coverage.md)."
        )

    table: list[tuple[str, dict[str, Handler]]] = [
        ("/flavors", {"GET": list_flavors}),
        ("/flavors/detail", {"GET": list_flavors_detail}),
        ("/flavors/{flavor_id}", {"GET": show_flavor}),
        ("/flavors/{flavor_id}/os-extra_specs", {"GET": flavor_extra_specs}),
        ("/servers", {"GET": list_servers, "POST": create_server}),
        ("/servers/detail", {"GET": list_servers_detail}),
        ("/servers/{server_id}", {"GET": show_server, "PUT": update_server, "DELETE": delete_server}),
        ("/servers/{server_id}/action", {"POST": server_action}),
        ("/servers/{server_id}/metadata", {"GET": get_metadata, "PUT": replace_metadata, "POST": update_metadata}),
        (
            "/servers/{server_id}/metadata/{key}",
            {"GET": get_metadata_item, "PUT": set_metadata_item, "DELETE": delete_metadata_item},
        ),
        ("/images", {"GET": list_images}),
        ("/images/detail", {"GET": list_images_detail}),
        ("/images/{image_id}", {"GET": show_image}),
        ("/limits", {"GET": show_limits}),
        ("/os-availability-zone", {"GET": list_zones}),
        ("/os-availability-zone/detail", {"GET": list_zones_detail}),
        ("/os-keypairs", {"GET": keypairs, "POST": keypairs}),
        ("/os-keypairs/{name}", {"GET": keypairs, "DELETE": keypairs}),
    ]
    routes: list[BaseRoute] = [
        Route("/", root_versions, methods=["GET", "HEAD"]),
        Route("/v2.1", v21_version, methods=["GET", "HEAD"]),
        Route("/v2.1/", v21_version, methods=["GET", "HEAD"]),
    ]
    all_methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    for prefix in ("/v2.1", "/v2.1/{project_id}"):
        for path, handlers in table:
            routes.append(Route(prefix + path, api(**handlers), methods=all_methods))
    routes.append(Route("/v2.1/{project_id}", v21_version, methods=["GET", "HEAD"]))
    catch_all = api(GET=not_found, POST=not_found, PUT=not_found, DELETE=not_found, PATCH=not_found)
    routes.append(Route("/v2.1/{path:path}", catch_all, methods=all_methods))
    return routes


# --- limits ---------------------------------------------------------------------------------------

# Server actions Nova offers and imagehop does not: Nova's 400 for an unknown action, saying so.
NOVA_ACTIONS = frozenset({
    "reboot", "resize", "confirmResize", "revertResize", "rebuild", "changePassword", "os-start", "os-stop",
    "pause", "unpause", "suspend", "resume", "lock", "unlock", "shelve", "shelveOffload", "unshelve", "rescue",
    "unrescue", "migrate", "os-migrateLive", "evacuate", "createBackup", "os-getConsoleOutput",
    "os-getVNCConsole", "os-getSPICEConsole", "os-getSerialConsole", "addSecurityGroup", "removeSecurityGroup",
    "addFloatingIp", "removeFloatingIp", "addFixedIp", "removeFixedIp", "os-resetState", "forceDelete", "restore",
    "trigger_crash_dump", "os-resetNetwork", "injectNetworkInfo",
})  # fmt: skip
ZONE = "nova"  # Nova's default availability zone; every server reports it
UNLIMITED = -1  # Nova's word for "no quota"


def absolute_limits(ctx: Ctx, used: dict[str, int]) -> dict[str, int]:
    """Nova's absolute limits for the microversion: imagehop sets no quotas on servers (-1), offers no
    keypairs, server groups or personality files (0), and counts what the tenant's servers use."""
    limits = {
        "maxTotalInstances": UNLIMITED, "maxTotalCores": UNLIMITED, "maxTotalRAMSize": UNLIMITED,
        "maxServerMeta": MAX_METADATA_ITEMS, "maxImageMeta": UNLIMITED,
        "maxPersonality": 0, "maxPersonalitySize": 0, "maxTotalKeypairs": 0,
        "maxServerGroups": 0, "maxServerGroupMembers": 0,
        "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"], "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": 0,
    }  # fmt: skip
    if not ctx.at_least(36):  # network quotas left the compute API in 2.36
        limits.update(maxSecurityGroups=UNLIMITED, maxSecurityGroupRules=UNLIMITED, maxTotalFloatingIps=0,
                      totalSecurityGroupsUsed=0, totalFloatingIpsUsed=0)  # fmt: skip
    if ctx.at_least(39):  # and image metadata in 2.39
        del limits["maxImageMeta"]
    return limits


# --- errors and bodies ---------------------------------------------------------------------------


def error_response(exc: ComputeError) -> Response:
    headers = None
    if isinstance(exc, MethodNotAllowed):
        headers = {"Allow": exc.message.rsplit("allowed: ", 1)[-1].rstrip(".")}
    return JSONResponse({exc.kind: {"code": exc.status, "message": exc.message}}, exc.status, headers=headers)


async def json_body(request: Request) -> Any:
    try:
        return await bodies.read_json(request)
    except BodyTooLarge:
        raise OverLimit("Request is too large.") from None
    except bodies.MalformedJSON as exc:
        raise BadRequest(f"Malformed request body: {exc}") from None


def _string(value: Any, field: str, *, min_length: int = 0, max_length: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. "
            f"Expected a string of {min_length} to {max_length} characters."
        )
    return value


def parse_metadata(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}. It must be an object.")
    for key, item in value.items():
        _string(key, f"{field} key", min_length=1)
        _string(item, f"{field}.{key}")
    return dict(value)


def _ref(value: Any, field: str) -> str:
    """An id, or a URL whose last segment is the id (Nova accepts both)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    ref = _string(value, field, min_length=1).rstrip("/").rsplit("/", 1)[-1]
    if not ref:
        raise BadRequest(f"Invalid {field} provided.")
    return ref


def parse_server_create(body: Any, ctx: Ctx) -> ServerRequest:
    if not isinstance(body, dict) or not isinstance(body.get("server"), dict):
        raise BadRequest('Invalid input for field/attribute server: the body must be {"server": {...}}.')
    server = body["server"]
    name = _string(server.get("name"), "name", min_length=1)
    if not name.strip():
        raise BadRequest("Invalid input for field/attribute name: it must not be blank.")
    if "imageRef" not in server or server["imageRef"] in ("", None):
        raise BadRequest("Invalid input for field/attribute imageRef: imagehop servers boot from an image.")
    if "flavorRef" not in server:
        raise BadRequest("Invalid input for field/attribute flavorRef: 'flavorRef' is a required property.")
    image_ref = _ref(server["imageRef"], "imageRef")
    flavor_ref = _ref(server["flavorRef"], "flavorRef")
    metadata = parse_metadata(server.get("metadata", {}), "metadata")
    networks = server.get("networks")
    valid_list = isinstance(networks, list) and all(isinstance(n, dict) for n in networks)
    if networks is not None and networks not in ("auto", "none") and not valid_list:
        raise BadRequest(
            f"Invalid input for field/attribute networks. Value: {networks!r}. "
            "Expected 'auto', 'none' or a list of objects."
        )
    for count in ("min_count", "max_count"):
        if count in server:
            try:
                number = int(server[count])
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid input for field/attribute {count}: expected an integer.") from None
            if number != 1:
                raise BadRequest(f"Invalid input for field/attribute {count}: imagehop creates one server per request.")
    description = server.get("description")
    if description is not None:
        if not ctx.at_least(19):
            raise BadRequest("Invalid input: 'description' needs microversion 2.19 or later.")
        description = _string(description, "description")
    admin_pass = server.get("adminPass")
    if admin_pass is not None:
        admin_pass = _string(admin_pass, "adminPass")
    return ServerRequest(name, image_ref, flavor_ref, metadata, description, admin_pass)


def parse_server_update(body: Any, ctx: Ctx) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("server"), dict):
        raise BadRequest('Invalid input for field/attribute server: the body must be {"server": {...}}.')
    changes: dict[str, Any] = {}
    for key, value in body["server"].items():
        if key == "name":
            changes["name"] = _string(value, "name", min_length=1)
        elif key == "description" and ctx.at_least(19):
            changes["description"] = None if value is None else _string(value, "description")
        elif key not in ("accessIPv4", "accessIPv6", "OS-DCF:diskConfig"):
            raise BadRequest(f"Additional properties are not allowed ('{key}' was unexpected)")
    return changes


def parse_create_image(args: Any) -> tuple[str, dict[str, str]]:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute createImage: it must be an object.")
    unknown = set(args) - {"name", "metadata"}
    if unknown:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(sorted(unknown))} was unexpected)")
    if "name" not in args:
        raise BadRequest("Invalid input for field/attribute createImage: 'name' is a required property.")
    name = _string(args["name"], "name", min_length=1)
    return name, parse_metadata(args.get("metadata", {}), "metadata")


def parse_server_query(request: Request) -> ServerQuery:
    params = request.query_params
    limit = None
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise BadRequest(f"limit param must be an integer, got {params['limit']!r}") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
    all_tenants = params.get("all_tenants", "false").lower() not in ("false", "0", "no", "off")
    return ServerQuery(
        name=params.get("name"),
        status=params.get("status"),
        image=params.get("image"),
        flavor=params.get("flavor"),
        limit=limit,
        marker=params.get("marker"),
        all_tenants=all_tenants,
    )


def image_query(request: Request) -> list[tuple[str, str]]:
    """Nova's image-proxy filters, as Glance list parameters."""
    out: list[tuple[str, str]] = []
    for key, value in request.query_params.multi_items():
        if key in ("name", "limit", "marker"):
            out.append((key, value))
        elif key == "status":
            out.append(("status", value.lower()))
        elif key == "server":
            out.append(("instance_uuid", value.rsplit("/", 1)[-1]))
        elif key == "type":
            out.append(("image_type", value))
    return out


def _flavor(flavor_id: str) -> flavors.Flavor:
    flavor = flavors.get(flavor_id)
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def _flavor_page(ctx: Ctx) -> list[flavors.Flavor]:
    params = ctx.request.query_params
    out = list(flavors.FLAVORS)
    try:
        if "minDisk" in params:
            out = [f for f in out if f.disk >= int(params["minDisk"])]
        if "minRam" in params:
            out = [f for f in out if f.ram >= int(params["minRam"])]
    except ValueError:
        raise BadRequest("Invalid minDisk or minRam filter: expected an integer.") from None
    if "marker" in params:
        ids = [f.id for f in out]
        if params["marker"] not in ids:
            raise BadRequest(f"marker [{params['marker']}] not found")
        out = out[ids.index(params["marker"]) + 1 :]
    if "limit" in params:
        try:
            out = out[: max(0, int(params["limit"]))]
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
    return out


# --- rendering -----------------------------------------------------------------------------------


def _links(ctx: Ctx, kind: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{ctx.base}/{kind}/{item_id}"},
        {"rel": "bookmark", "href": f"{ctx.bookmark}/{kind}/{item_id}"},
    ]


def server_links(ctx: Ctx, server_id: str) -> list[dict[str, str]]:
    return _links(ctx, "servers", server_id)


def render_flavor(ctx: Ctx, flavor: flavors.Flavor, *, detail: bool) -> Record:
    out: Record = {"id": flavor.id, "name": flavor.name, "links": _links(ctx, "flavors", flavor.id)}
    if detail:
        out.update(
            {
                "ram": flavor.ram,
                "disk": flavor.disk,
                "vcpus": flavor.vcpus,
                "swap": flavor.swap or "",
                "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": True,
                "rxtx_factor": 1.0,
            }
        )
    return out


def render_server_brief(ctx: Ctx, server: Record) -> Record:
    return {"id": server["id"], "name": server["name"], "links": server_links(ctx, server["id"])}


def render_server(ctx: Ctx, server: Record) -> Record:
    status = server["status"]
    flavor = flavors.get(server["flavor_id"])
    if ctx.at_least(47) and flavor is not None:
        flavor_body: Record = {
            "vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.disk, "ephemeral": flavor.ephemeral,
            "swap": flavor.swap, "original_name": flavor.name, "extra_specs": {},
        }  # fmt: skip
    else:
        flavor_body = {"id": server["flavor_id"], "links": [_links(ctx, "flavors", server["flavor_id"])[1]]}
    host_id = ""
    if status == "ACTIVE":
        host_id = hashlib.sha224(f"{server['tenant_id']}imagehop-{ctx.region_url}".encode()).hexdigest()
    out: Record = {
        "id": server["id"],
        "name": server["name"],
        "status": status,
        "tenant_id": server["tenant_id"],
        "user_id": server["user_id"],
        "metadata": server["metadata"],
        "hostId": host_id,
        "image": {"id": server["image_id"], "links": [_links(ctx, "images", server["image_id"])[1]]},
        "flavor": flavor_body,
        "created": iso(server["created_at"]),
        "updated": iso(server["updated_at"]),
        "addresses": addresses(server),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": server_links(ctx, server["id"]),
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 100 if status == "ACTIVE" else 0,
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": None,
        "OS-SRV-USG:launched_at": _usg(server["launched_at"]),
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": server["task_state"],
        "OS-EXT-STS:vm_state": vm_state(status),
        "OS-EXT-STS:power_state": 1 if status == "ACTIVE" else 0,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }
    if ctx.at_least(9):
        out["locked"] = False
    if ctx.at_least(19):
        out["description"] = server["description"]
    if ctx.at_least(26):
        out["tags"] = []
    if status == "ERROR" and server["fault"]:
        out["fault"] = server["fault"]
    return out


def addresses(server: Record) -> Record:
    """Made-up addresses once the server is up, as Rackspace's servers have (``public``, ``private``).

    No packet ever reaches them; clients (openstacksdk's ``create_server``) expect a server to have an
    address, and a public one spares them a search for floating IPs.
    """
    if server["status"] != "ACTIVE":
        return {}
    d = hashlib.sha256(server["id"].encode()).digest()
    mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in d[3:6])

    def entry(addr: str) -> Record:
        return {"version": 4, "addr": addr, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}

    return {
        "public": [entry(f"198.51.{d[6] % 100 + 1}.{d[7] % 254 + 1}")],
        "private": [entry(f"10.{d[0]}.{d[1]}.{d[2] % 254 + 1}")],
    }


def _usg(moment: Any) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") if moment is not None else None


def render_image_brief(ctx: Ctx, image: Record) -> Record:
    return {"id": image["id"], "name": image["name"], "links": _image_links(ctx, image["id"])}


def _image_links(ctx: Ctx, image_id: str) -> list[dict[str, str]]:
    return [
        *_links(ctx, "images", image_id),
        {
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": f"{ctx.region_url}/image/v2/images/{image_id}",
        },
    ]


def render_image(ctx: Ctx, image: Record) -> Record:
    out: Record = {
        "id": image["id"],
        "name": image["name"],
        "status": NOVA_IMAGE_STATUS.get(image["status"], "UNKNOWN"),
        "progress": NOVA_IMAGE_PROGRESS.get(image["status"], 0),
        "minDisk": image["min_disk"],
        "minRam": image["min_ram"],
        "metadata": dict(image["properties"]),
        "created": iso(image["created_at"]),
        "updated": iso(image["updated_at"]),
        "OS-EXT-IMG-SIZE:size": image["size"],
        "links": _image_links(ctx, image["id"]),
    }
    instance = image["properties"].get("instance_uuid")
    if instance:
        out["server"] = {"id": instance, "links": server_links(ctx, instance)}
    return out
