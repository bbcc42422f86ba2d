"""Glance v2 routes under ``<region URL>/image``: parse and validate, call one service function, render.

Every path answers unknown methods with 405 and an ``Allow`` header, and every error with the body
Glance clients parse: JSON (``{"message", "code", "title"}``) when the request accepts JSON, else
the plain HTML page webob would send (glanceclient sends no ``Accept`` and strips the tags).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from imagehop import bodies
from imagehop.identity.caller import Caller, require_caller
from imagehop.identity.service import IdentityError
from imagehop.images import members, patch, schemas
from imagehop.images.data import ImageData
from imagehop.images.errors import (
    BadRequest,
    Forbidden,
    ImageError,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
    UnsupportedMediaType,
)
from imagehop.images.imports import METHODS as IMPORT_METHODS
from imagehop.images.imports import STORE_ID, Importer, public_input
from imagehop.images.service import HIDDEN_PROPERTIES, MAX_IMAGE_SIZE, ImageService
from imagehop.region import Region
from imagehop.streams import BodyTooLarge
from imagehop.tasks import worker as tasks_worker
from imagehop.tasks.service import POLL_HEADER, poll_after

# Through 2.12, which adds GET /v2/images/{id}/tasks; the highest is CURRENT, the rest SUPPORTED.
API_VERSIONS = [f"v2.{minor}" for minor in range(12, -1, -1)]
MAX_JSON_BODY = bodies.MAX_JSON_BODY  # Glance's max_request_body_size

Handler = Callable[..., Awaitable[Response]]


def image_routes(region: Region) -> list[BaseRoute]:
    service = ImageService(region.engine, ImageData(region), region.images)
    importer = Importer(service, region.identity, region.images.web_download_allow_private)

    async def versions(request: Request) -> Response:
        # `GET /image/` answers 300 (tempest asserts it); `GET /image/versions` answers 200.
        status = 200 if request.url.path.rstrip("/").endswith("/versions") else 300
        return JSONResponse(versions_document(region.public_url), status_code=status)

    # --- schemas and discovery

    async def get_schema(request: Request, caller: Caller) -> Response:
        name = request.path_params["name"]
        if name not in schemas.SCHEMAS:
            raise NotFound(f"No schema named {name}.")
        return JSONResponse(schemas.SCHEMAS[name]())

    async def get_metadef_schema(request: Request, caller: Caller) -> Response:
        name = request.path_params["name"]
        if name not in schemas.METADEF_SCHEMAS:
            raise NotFound(f"No schema named metadefs/{name}.")
        return JSONResponse(schemas.metadef_schema(name))

    async def info_import(request: Request, caller: Caller) -> Response:
        body = {
            "import-methods": {"description": "Import methods available.", "type": "array", "value": IMPORT_METHODS}
        }
        return JSONResponse(body)

    async def info_stores(request: Request, caller: Caller) -> Response:
        return JSONResponse({"stores": [{"id": STORE_ID, "default": "true"}]})  # no description configured

    async def info_stores_detail(request: Request, caller: Caller) -> Response:
        if not caller.is_admin:
            raise Forbidden("You are not authorized to complete stores_info_detail action.")
        properties = {"chunk_size": 65536, "thin_provisioning": True}
        store = {"id": STORE_ID, "default": "true", "type": "file", "weight": 0, "properties": properties}
        return JSONResponse({"stores": [store]})

    async def info_usage(request: Request, caller: Caller) -> Response:
        return JSONResponse({"usage": await run_in_threadpool(service.usage_view, caller)})

    # --- images

    @takes_body
    async def create_image(request: Request, caller: Caller) -> Response:
        body = await read_json(request)
        image = await run_in_threadpool(service.create, caller, body)
        headers = {
            "Location": f"/v2/images/{image['id']}",
            "OpenStack-image-import-methods": ",".join(IMPORT_METHODS),
            "OpenStack-image-store-ids": STORE_ID,  # as a multi-store Glance: the stores an import may name
        }
        return JSONResponse(image_view(image, caller.is_admin), status_code=201, headers=headers)

    @takes_body
    async def list_images(request: Request, caller: Caller) -> Response:
        params = list(request.query_params.multi_items())
        page, full = await run_in_threadpool(service.list, caller, params)
        return JSONResponse(list_view(params, page, full, caller.is_admin))

    async def show_image(request: Request, caller: Caller) -> Response:
        image = await run_in_threadpool(service.get, caller, request.path_params["image_id"])
        return JSONResponse(image_view(image, caller.is_admin))

    @takes_body
    async def update_image(request: Request, caller: Caller) -> Response:
        draft = patch.media_draft(request.headers.get("content-type"))
        changes = patch.parse(await read_json(request), draft)
        image = await run_in_threadpool(service.update, caller, request.path_params["image_id"], changes)
        return JSONResponse(image_view(image, caller.is_admin))

    async def delete_image(request: Request, caller: Caller) -> Response:
        await run_in_threadpool(service.delete, caller, request.path_params["image_id"])
        return Response(status_code=204)

    async def deactivate(request: Request, caller: Caller) -> Response:
        await run_in_threadpool(service.deactivate, caller, request.path_params["image_id"])
        return Response(status_code=204)

    async def reactivate(request: Request, caller: Caller) -> Response:
        await run_in_threadpool(service.reactivate, caller, request.path_params["image_id"])
        return Response(status_code=204)

    async def add_tag(request: Request, caller: Caller) -> Response:
        p = request.path_params
        await run_in_threadpool(service.add_tag, caller, p["image_id"], p["tag"])
        return Response(status_code=204)

    async def delete_tag(request: Request, caller: Caller) -> Response:
        p = request.path_params
        await run_in_threadpool(service.delete_tag, caller, p["image_id"], p["tag"])
        return Response(status_code=204)

    # --- data

    @takes_body
    async def upload(request: Request, caller: Caller) -> Response:
        check_store_header(request)
        check_octet_stream(request)
        size = declared_size(request)
        resume_at = resumable_offset(request)
        image_id = request.path_params["image_id"]
        await service.upload(caller, image_id, request.stream(), size, content_length(request), resume_at)
        return Response(status_code=204)

    async def download(request: Request, caller: Caller) -> Response:
        image = await run_in_threadpool(service.open_data, caller, request.path_params["image_id"])
        if not image["data_key"]:
            return Response(status_code=204)
        size = image["size"] or 0
        headers = {"Content-Type": "application/octet-stream"}
        status, start, end = 200, 0, size
        wanted = requested_range(request.headers, size)
        if wanted is not None:
            status, (start, end) = 206, wanted
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        if image["checksum"]:
            headers["Content-MD5"] = image["checksum"]  # the image's, on a range too (as Glance)
        chunks = iterate_in_threadpool(service.data.read(image["data_key"], start, end - start))
        return StreamingResponse(chunks, status_code=status, headers=headers)

    async def extents(request: Request, caller: Caller) -> Response:
        return JSONResponse(await run_in_threadpool(service.data_extents, caller, request.path_params["image_id"]))

    async def block_map(request: Request, caller: Caller) -> Response:
        image_id = request.path_params["image_id"]
        after, limit = block_page_params(request.query_params)
        head, entries = await run_in_threadpool(service.block_map, caller, image_id, after, limit)
        return JSONResponse(block_map_view(image_id, head, entries, limit))

    @takes_body
    async def stage(request: Request, caller: Caller) -> Response:
        check_store_header(request)
        check_octet_stream(request)
        size = declared_size(request)
        await importer.stage(caller, request.path_params["image_id"], request.stream(), size, content_length(request))
        return Response(status_code=204)

    @takes_body
    async def start_import(request: Request, caller: Caller) -> Response:
        body = await read_json(request)
        token = request.headers["x-auth-token"]
        image_id = request.path_params["image_id"]
        header = request.headers.get("x-image-meta-store")
        await run_in_threadpool(importer.start, caller, image_id, body, token, request.state.request_id, header)
        tasks_worker.wake(region.name)
        return Response(status_code=202)

    # --- members

    @takes_body
    async def create_member(request: Request, caller: Caller) -> Response:
        body = await read_json(request)
        member = await run_in_threadpool(members.create, service, caller, request.path_params["image_id"], body)
        return JSONResponse(member_view(member))

    async def list_members(request: Request, caller: Caller) -> Response:
        rows = await run_in_threadpool(members.list_members, service, caller, request.path_params["image_id"])
        return JSONResponse({"members": [member_view(m) for m in rows], "schema": "/v2/schemas/members"})

    async def show_member(request: Request, caller: Caller) -> Response:
        p = request.path_params
        member = await run_in_threadpool(members.get, service, caller, p["image_id"], p["member_id"])
        return JSONResponse(member_view(member))

    @takes_body
    async def update_member(request: Request, caller: Caller) -> Response:
        p = request.path_params
        body = await read_json(request)
        member = await run_in_threadpool(members.update, service, caller, p["image_id"], p["member_id"], body)
        return JSONResponse(member_view(member))

    async def delete_member(request: Request, caller: Caller) -> Response:
        p = request.path_params
        await run_in_threadpool(members.delete, service, caller, p["image_id"], p["member_id"])
        return Response(status_code=204)

    async def image_tasks(request: Request, caller: Caller) -> Response:
        tasks = await run_in_threadpool(service.tasks, caller, request.path_params["image_id"])
        busy = [t for t in tasks if t["status"] in ("pending", "processing")]
        # As on GET /v2/tasks/{id}: while an import runs, say when to look again.
        headers = None
        if busy:
            wait = region.tasks.retry_after
            headers = {"Retry-After": str(wait), POLL_HEADER: poll_after(busy, wait)}
        return JSONResponse({"tasks": [task_view(t) for t in tasks]}, headers=headers)

    async def null_id(request: Request, caller: Caller) -> Response:
        raise NotFound("No image ID given.")

    return [
        Route("/", versions, methods=["GET", "HEAD"]),
        Route("/versions", versions, methods=["GET", "HEAD"]),
        resource("/v2/schemas/metadefs/{name}", GET=get_metadef_schema),
        resource("/v2/schemas/{name}", GET=get_schema),
        resource("/v2/info/import", GET=info_import),
        resource("/v2/info/stores", GET=info_stores),
        resource("/v2/info/stores/detail", GET=info_stores_detail),
        resource("/v2/info/usage", GET=info_usage),
        resource("/v2/images", GET=list_images, POST=create_image),
        resource("/v2/images/", GET=null_id, DELETE=null_id),
        resource("/v2/images/{image_id}", GET=show_image, PATCH=update_image, DELETE=delete_image),
        resource("/v2/images/{image_id}/file", GET=download, PUT=upload),
        resource("/v2/images/{image_id}/x-imagehop-extents", GET=extents),
        resource("/v2/images/{image_id}/x-imagehop-blocks", GET=block_map),
        resource("/v2/images/{image_id}/stage", PUT=stage),
        resource("/v2/images/{image_id}/import", POST=start_import),
        resource("/v2/images/{image_id}/actions/deactivate", POST=deactivate),
        resource("/v2/images/{image_id}/actions/reactivate", POST=reactivate),
        resource("/v2/images/{image_id}/tags/{tag}", PUT=add_tag, DELETE=delete_tag),
        resource("/v2/images/{image_id}/members", GET=list_members, POST=create_member),
        resource("/v2/images/{image_id}/members/{member_id}", GET=show_member, PUT=update_member, DELETE=delete_member),
        resource("/v2/images/{image_id}/tasks", GET=image_tasks),
    ]


# --- plumbing ------------------------------------------------------------------------------------


def resource(path: str, **handlers: Handler) -> Route:
    """One path, its methods, and a 405 with ``Allow`` for every other method."""
    allow = ", ".join(handlers)

    async def endpoint(request: Request) -> Response:
        request_id = request.headers.get("x-openstack-request-id") or f"req-{uuid.uuid4()}"
        request.state.request_id = request_id
        handler = handlers.get(request.method) or (handlers.get("GET") if request.method == "HEAD" else None)
        try:
            if handler is None:
                response = error_response(request, 405, "Method Not Allowed",
                                          f"The method {request.method} is not allowed for this resource.")  # fmt: skip
                response.headers["Allow"] = allow
            else:
                bodies.check_request_text(request)
                caller = await require_caller(request)
                if not getattr(handler, "takes_body", False) and has_body(request):
                    raise BadRequest("A body is not expected with this request.")
                response = await handler(request, caller)
        except bodies.UnstorableText as exc:
            response = error_response(request, 400, "Bad Request", str(exc))
        except ImageError as exc:
            response = error_response(request, exc.status, exc.title, exc.message)
            response.headers.update(exc.headers)
        except IdentityError as exc:
            response = error_response(request, exc.status, exc.title, exc.message)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = www_authenticate(request)
        response.headers["x-openstack-request-id"] = request_id
        if response.status_code >= 400 and has_body(request) and not _body_read(request):
            # The rest of the body is still on the connection: close it, or it would be read as the
            # next request of a kept-alive connection.
            response.headers["Connection"] = "close"
        return response

    return Route(path, endpoint, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "COPY"])


def takes_body(handler: Handler) -> Handler:
    """Mark a handler that reads (or, as Glance's list, ignores) a request body; any other answers
    a request with a body with Glance's 400 "A body is not expected with this request."."""
    handler.takes_body = True  # type: ignore[attr-defined]
    return handler


def has_body(request: Request) -> bool:
    """As Glance's ``has_body``: a chunked body, or a declared length above zero."""
    if "transfer-encoding" in request.headers:
        return True
    length = (request.headers.get("content-length") or "").strip()
    return length.isdigit() and int(length) > 0


def content_length(request: Request) -> int | None:
    """The declared Content-Length (what Glance's quotas count before the bytes arrive), if any."""
    text = (request.headers.get("content-length") or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def _body_read(request: Request) -> bool:
    return hasattr(request, "_body") or bool(getattr(request, "_stream_consumed", False))


def www_authenticate(request: Request) -> str:
    """What keystonemiddleware answers a request without a valid token with: where to get one."""
    region: Region | None = getattr(request.app.state, "region", None)
    if region is None:
        return "X-Auth-Token"
    return f'Keystone uri="{region.identity.catalog.identity_url}/v3"'


def not_found_route() -> Route:
    """Every other path under ``/image``: Glance's 404, after authentication (as its pipeline does)."""

    async def missing(request: Request, caller: Caller) -> Response:
        raise NotFound("The resource could not be found.")

    missing = takes_body(missing)
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "COPY")
    return resource("/{path:path}", **{method: missing for method in methods})


def error_response(request: Request, status: int, title: str, message: str) -> Response:
    code = f"{status} {title}"
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"message": message, "code": code, "title": title}, status_code=status)
    body = (
        f"<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n"
        f"  {html.escape(message)}<br /><br />\n\n\n\n </body>\n</html>"
    )
    return Response(body, status_code=status, headers={"Content-Type": "text/html; charset=UTF-8"})


async def read_json(request: Request) -> Any:
    """The JSON body (None when empty), bounded by Glance's ``max_request_body_size``."""
    try:
        return await bodies.read_json(request, MAX_JSON_BODY, empty=None)
    except BodyTooLarge:
        raise TooLarge(f"Request body is larger than {MAX_JSON_BODY} bytes.") from None
    except bodies.MalformedJSON as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from None


def check_store_header(request: Request) -> None:
    """``X-Image-Meta-Store`` on an upload or stage names this region's one store, or 400 (Glance)."""
    store_id = request.headers.get("x-image-meta-store")
    if store_id is not None and store_id.strip() != STORE_ID:
        raise BadRequest(f"Unknown scheme '{store_id[:100]}' found in URI")


def check_octet_stream(request: Request) -> None:
    media = (request.headers.get("content-type") or "").split(";")[0].strip()  # compared as is, as webob does
    if media != "application/octet-stream":
        raise UnsupportedMediaType(f"Content-Type must be application/octet-stream, not {media or '(none)'}.")


_RESUME_AT = re.compile(r"bytes ([0-9]{1,20})-(?:[0-9]{1,20}|[*])/(?:[0-9]{1,20}|[*])")


def resumable_offset(request: Request) -> int | None:
    """imagehop's resumable upload: ``X-Imagehop-Resumable: true`` with an optional
    ``Content-Range: bytes N-M/T`` (or ``bytes N-*/*``) saying the body starts at byte N. ``None``
    without the header: Glance's plain PUT, where Content-Range means nothing."""
    if (request.headers.get("x-imagehop-resumable") or "").strip().lower() not in ("1", "true", "yes"):
        return None
    value = request.headers.get("content-range")
    if value is None:
        return 0
    match = _RESUME_AT.fullmatch(value.strip())
    if match is None:
        raise BadRequest(
            f"Content-Range of a resumable upload must be 'bytes N-M/T' or 'bytes N-*/*', not {value[:60]!r}."
        )
    return int(match.group(1))


def declared_size(request: Request) -> int | None:
    value = request.headers.get("x-openstack-image-size")
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise BadRequest(f"x-openstack-image-size must be a whole number of bytes, got {value[:40]!r}.")
    if len(text) > 20 or int(text) > MAX_IMAGE_SIZE:
        raise TooLarge(f"x-openstack-image-size is larger than the limit of {MAX_IMAGE_SIZE} bytes.")
    return int(text)


# webob's parsers, as Glance reads the headers; but the whole header must match and numbers have at
# most 20 digits (webob takes a valid prefix and fails with a 500 on a number too long to convert).
_RANGE = re.compile(r"bytes *= *([0-9]{0,20}) *- *([0-9]{0,20}) *", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"bytes (?:([0-9]{1,20})-([0-9]{1,20})|[*])/(?:([0-9]{1,20})|[*]) *")


def requested_range(headers: Any, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a ranged download, None for the whole image (200); as Glance does:
    ``Range`` first (one range only: 400 for several), else ``Content-Range`` (which Glance still
    takes in requests); anything it cannot serve is a 416."""
    header = headers.get("range")
    if header is not None:
        if "," in header:
            raise BadRequest(
                "Requests with multiple ranges are not supported in Glance. "
                "You may make multiple single-range requests instead."
            )
        match = _RANGE.fullmatch(header)
        if not match or not (match.group(1) or match.group(2)):
            raise RangeNotSatisfiable("Invalid Range header.")
        first, last = match.groups()
        if not first:  # a suffix: the last N bytes (all of them when N >= size)
            n = int(last)
            return (size - n if 0 < n < size else 0), size
        start = int(first)
        end = int(last) + 1 if last else None
        if end is not None and start >= end:
            raise RangeNotSatisfiable("Invalid Range header.")
        if start >= size:
            raise RangeNotSatisfiable(
                "Invalid start position in Range header. "
                f"Start position MUST be in the inclusive range [0, {size - 1}]."
            )
        return start, (end if end is not None and end < size else size)
    header = headers.get("content-range")
    if header is None:
        return None
    match = _CONTENT_RANGE.fullmatch(header)
    valid = match is not None and match.group(1) is not None
    if valid:
        start, end = int(match.group(1)), int(match.group(2)) + 1
        length = int(match.group(3)) if match.group(3) else None
        valid = start < end and (length is None or (end <= length and start < length))
    if not valid:
        raise RangeNotSatisfiable("Invalid Content-Range header.")
    if length is None and end > size:
        raise RangeNotSatisfiable(
            "Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range "
            f"[0, {size - 1}]."
        )
    if start >= size:
        raise RangeNotSatisfiable(
            "Invalid start position in Content-Range header. "
            f"Start position MUST be in the inclusive range [0, {size - 1}]."
        )
    return start, min(end, size)


# --- rendering -----------------------------------------------------------------------------------


def timestamp(moment: datetime | None) -> str | None:
    """``%Y-%m-%dT%H:%M:%SZ``; by ``isoformat`` when that is the same text (a list page formats 50 of
    these, and ``strftime`` was the costliest part of rendering it)."""
    if not moment:
        return None
    if moment.tzinfo is None and moment.year >= 1000:
        return moment.isoformat(timespec="seconds") + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def image_view(image: dict[str, Any], admin: bool = False) -> dict[str, Any]:
    image_id = image["id"]
    view: dict[str, Any] = {key: value for key, value in image["properties"].items() if key not in HIDDEN_PROPERTIES}
    view.update(
        id=image_id, name=image["name"], status=image["status"], visibility=image["visibility"],
        protected=image["protected"], os_hidden=image["os_hidden"], checksum=image["checksum"],
        os_hash_algo=image["os_hash_algo"], os_hash_value=image["os_hash_value"], owner=image["owner"],
        size=image["size"], virtual_size=image["virtual_size"], container_format=image["container_format"],
        disk_format=image["disk_format"], created_at=timestamp(image["created_at"]),
        updated_at=timestamp(image["updated_at"]), tags=list(image["tags"]), min_ram=image["min_ram"],
        min_disk=image["min_disk"], self=f"/v2/images/{image_id}", file=f"/v2/images/{image_id}/file",
        schema="/v2/schemas/image",
    )  # fmt: skip
    if image["data_key"] and (admin or image["status"] != "deactivated"):
        # multi-store Glance: the stores that hold the data (from its locations, hidden from all
        # but admins while the image is deactivated)
        view["stores"] = STORE_ID
    return view


def list_view(
    params: list[tuple[str, str]], page: list[dict[str, Any]], full: bool, admin: bool = False
) -> dict[str, Any]:
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"images": [image_view(i, admin) for i in page]}
    body["first"] = "/v2/images" + (f"?{urlencode(kept)}" if kept else "")
    body["schema"] = "/v2/schemas/images"
    if full and page:
        body["next"] = "/v2/images?" + urlencode([*kept, ("marker", page[-1]["id"])])
    return body


BLOCKS_PAGE = 4096  # block map entries per page by default (8 GiB of data, ~300 KB of JSON)
BLOCKS_PAGE_MAX = 65536


def block_page_params(query: Any) -> tuple[int, int]:
    """``marker`` (the last block index already read; -1: from the start) and ``limit`` of a block map page."""
    values = {}
    for name, default, low, high in (("marker", -1, -1, 1 << 62), ("limit", BLOCKS_PAGE, 1, BLOCKS_PAGE_MAX)):
        raw = query.get(name)
        if raw is None:
            values[name] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"Invalid {name} {raw[:40]!r}: expected an integer.") from None
        if not low <= value <= high:
            raise BadRequest(f"Invalid {name} {value}: it must be between {low} and {high}.")
        values[name] = value
    return values["marker"], values["limit"]


def block_map_view(image_id: str, head: dict[str, Any], entries: list[tuple[int, bytes]], limit: int) -> dict[str, Any]:
    """One page of a block map; ``next`` (as Glance's lists) while more entries may follow."""
    body: dict[str, Any] = {
        "block_size": head["block_size"], "virtual_size": head["virtual_size"],
        "content_digest": head["content_digest"], "block_count": head["block_count"],
        "blocks": [[index, sha.hex()] for index, sha in entries],
    }  # fmt: skip
    if len(entries) == limit:
        body["next"] = f"/v2/images/{image_id}/x-imagehop-blocks?" + urlencode(
            {"marker": entries[-1][0], "limit": limit}
        )
    return body


def member_view(member: dict[str, Any]) -> dict[str, Any]:
    return {
        "created_at": timestamp(member["created_at"]),
        "image_id": member["image_id"],
        "member_id": member["member_id"],
        "schema": "/v2/schemas/member",
        "status": member["status"],
        "updated_at": timestamp(member["updated_at"]),
    }


def task_view(task: dict[str, Any]) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": task["id"], "type": task["type"], "status": task["status"], "owner": task["owner"],
        "expires_at": iso(task["expires_at"]), "created_at": iso(task["created_at"]),
        "updated_at": iso(task["updated_at"]), "deleted_at": None, "deleted": False, "image_id": task["image_id"],
        "request_id": task["request_id"], "user_id": task["user_id"], "input": public_input(task["input"]),
        "result": task["result"], "message": task["message"],
    }  # fmt: skip


def versions_document(region_url: str) -> dict:
    href = f"{region_url}/image/v2/"
    return {
        "versions": [
            {
                "id": version,
                "status": "CURRENT" if index == 0 else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for index, version in enumerate(API_VERSIONS)
        ]
    }
