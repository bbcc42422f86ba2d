"""Swift v1 routes: ``/info`` and ``/v1/<account>[/<container>[/<object>]]`` at a region's base URL.

Each handler parses and checks the request, calls the store (or the SLO / DLO / bulk / TempURL
unit) in a worker thread, and renders Swift's response. Paths are decoded here from the raw bytes
so that invalid UTF-8 or NUL answers 412 as in Swift; names never become filesystem paths.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from imagehop import bodies
from imagehop.identity.caller import Caller, require_caller
from imagehop.identity.service import IdentityError
from imagehop.objects import acl, bulk, dlo, slo, tempurl
from imagehop.objects.constraints import (
    MAX_ACCOUNT_NAME_LENGTH,
    MAX_FILE_SIZE,
    RESPONSE_REASONS,
    SLO_MAX_MANIFEST_SIZE,
    STATUS_TEXT,
    TRUE_VALUES,
    SwiftError,
    check_container_name,
    check_object_name,
    check_total_meta,
    delete_at,
    http_date,
    info_document,
    metadata_updates,
    x_timestamp,
)
from imagehop.objects.listing import CONTENT_TYPES, choose_format, listing_params, render_containers, render_objects
from imagehop.objects.store import (
    CHUNK,
    BrokenLargeObject,
    ContainerNotEmpty,
    EtagMismatch,
    NoSuchContainer,
    NoSuchObject,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
)
from imagehop.region import Region
from imagehop.streams import BodyTooLarge, pump

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS"]
CONTAINER_SYSMETA = (acl.READ_ACL, acl.WRITE_ACL)
OBJECT_SYSMETA = ("content-disposition", "content-encoding")
STORE_ERRORS = {
    NoSuchContainer: 404,
    NoSuchObject: 404,
    ContainerNotEmpty: 409,
    EtagMismatch: 422,
    BrokenLargeObject: 409,
}


@dataclass
class SwiftRequest:
    request: Request
    store: ObjectStore
    version: str
    account: str
    container: str
    obj: str
    query: dict[str, str]
    caller: Caller | None
    tempurl: tempurl.Grant | None = None  # set when a TempURL signature let the request in

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def method(self) -> str:
        return self.request.method


Handler = Callable[[SwiftRequest], Awaitable[Response]]


def object_routes(region: Region) -> list[BaseRoute]:
    store: ObjectStore = region.objects

    async def info(request: Request) -> Response:
        return _finish(JSONResponse(info_document(), media_type="application/json; charset=UTF-8"))

    async def swift(request: Request) -> Response:
        response = await _answer(request)
        grant = getattr(request.state, "tempurl", None)
        if grant is not None and request.method in ("GET", "HEAD") and 200 <= response.status_code < 300:
            query = dict(parse_qsl(request.url.query, keep_blank_values=True))
            obj = request.url.path.split("/", 4)[-1]
            tempurl.outgoing_headers(response.headers, grant, unquote(obj), query)
        if request.method == "HEAD" and response.body.startswith(b"<html><h1>"):
            response.body = b""  # as Swift: a HEAD gets no default error page (a message keeps its length)
            response.headers["Content-Length"] = "0"
        return response

    async def _answer(request: Request) -> Response:
        try:
            req = await _parse(request, store)
            return _finish(await _dispatch(req))
        except SwiftError as exc:
            return _finish(_error(exc.status, exc.message, exc.headers, html=exc.html))
        except IdentityError as exc:
            return _finish(_error(exc.status, ""))
        except tuple(STORE_ERRORS) as exc:
            return _finish(_error(STORE_ERRORS[type(exc)], ""))

    return [
        Route("/info", info, methods=["GET", "HEAD"]),
        Route("/v1", swift, methods=METHODS),
        Route("/v1/{rest:path}", swift, methods=METHODS),
        Route("/v1.0/{rest:path}", swift, methods=METHODS),
    ]


# --- request parsing and dispatch ---------------------------------------------------------------


async def _parse(request: Request, store: ObjectStore) -> SwiftRequest:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    raw = raw.split(b"?", 1)[0]
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise SwiftError(412, "Invalid UTF8 or contains NULL") from None
    if "\x00" in path:
        raise SwiftError(412, "Invalid UTF8 or contains NULL")
    parts = path.lstrip("/").split("/", 3)
    version = parts[0]
    if len(parts) < 2 or not parts[1]:
        raise SwiftError(412, "Bad URL")
    account = parts[1]
    container = parts[2] if len(parts) > 2 else ""
    obj = parts[3] if len(parts) > 3 else ""
    if len(parts) > 3 and not container:
        raise SwiftError(412, "Bad URL")
    if len(account) > MAX_ACCOUNT_NAME_LENGTH:
        raise SwiftError(400, "Account name too long")
    query = dict(parse_qsl(request.url.query, keep_blank_values=True))
    caller = None
    grant = None
    if tempurl.is_tempurl(query) and request.method != "OPTIONS":
        account_keys, container_keys = await run_in_threadpool(_tempurl_keys, store, account, container)
        client = request.client.host if request.client else None
        grant = tempurl.authorize(request.method, account, container, obj, query, account_keys, container_keys, client)
        tempurl.check_headers(request.method, request.headers)
        caller = Caller("tempurl", "tempurl", account.removeprefix("AUTH_"), frozenset({"member"}), time.time())
        request.state.tempurl = grant
    elif request.headers.get("x-auth-token"):
        caller = await require_caller(request)
    return SwiftRequest(request, store, version, account, container, obj, query, caller, grant)


def _tempurl_keys(store: ObjectStore, account: str, container: str) -> tuple[list[str], list[str]]:
    account_keys = [v for k, v in store.account_info(account).meta.items() if k in tempurl.KEYS]
    container_keys: list[str] = []
    try:
        meta = store.get_container(account, container).meta
        container_keys = [v for k, v in meta.items() if k in tempurl.CONTAINER_KEYS]
    except NoSuchContainer:
        pass
    return account_keys, container_keys


async def _dispatch(req: SwiftRequest) -> Response:
    method = req.method
    if req.obj:
        handlers: dict[str, Handler] = {
            "GET": get_object,
            "HEAD": get_object,
            "PUT": put_object,
            "POST": post_object,
            "DELETE": delete_object,
            "COPY": copy_object,
        }
    elif req.container:
        handlers = {
            "GET": get_container,
            "HEAD": head_container,
            "PUT": put_container,
            "POST": post_container,
            "DELETE": delete_container,
        }
    else:
        handlers = {"GET": get_account, "HEAD": head_account, "POST": post_account}
        if method in ("PUT", "DELETE") and "bulk-delete" not in req.query:
            acl.check_owner(req.caller, req.account, write=True)
            raise SwiftError(403, "")
        if "bulk-delete" in req.query and method in ("POST", "DELETE"):
            return await bulk_delete(req)
    if method == "OPTIONS":  # Swift's list for the level: COPY only on objects
        allowed = "GET, POST, PUT, DELETE, OPTIONS, HEAD" + (", COPY" if req.obj else "")
        return Response(status_code=200, headers={"Allow": allowed})
    handler = handlers.get(method)
    if handler is None:
        raise SwiftError(405, "")
    return await handler(req)


def _thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
    return run_in_threadpool(fn, *args, **kwargs)


# --- account ------------------------------------------------------------------------------------


def _account_headers(info: Any) -> dict[str, str]:
    headers = {
        "X-Account-Container-Count": str(info.container_count),
        "X-Account-Object-Count": str(info.object_count),
        "X-Account-Bytes-Used": str(info.bytes_used),
        "X-Timestamp": x_timestamp(info.created_at),
        "X-Account-Storage-Policy-Policy-0-Container-Count": str(info.container_count),
        "X-Account-Storage-Policy-Policy-0-Object-Count": str(info.object_count),
        "X-Account-Storage-Policy-Policy-0-Bytes-Used": str(info.bytes_used),
        "Accept-Ranges": "bytes",
    }
    headers.update(_meta_headers(info.meta))
    return headers


async def head_account(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=False)
    info = await _thread(req.store.account_info, req.account)
    return Response(status_code=204, headers=_account_headers(info), media_type="text/plain; charset=utf-8")


async def get_account(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=False)
    params = listing_params(req.query)
    fmt = choose_format(req.query, req.headers.get("accept"))
    info = await _thread(req.store.account_info, req.account)
    entries = await _thread(req.store.list_containers, req.account, **params)
    headers = _account_headers(info)
    if "format" not in req.query:
        headers["Vary"] = "Accept"
    if not entries and fmt == "plain":
        return Response(status_code=204, headers=headers, media_type=CONTENT_TYPES["plain"])
    body = render_containers(entries, fmt, req.account)
    return Response(body, 200, headers=headers, media_type=CONTENT_TYPES[fmt])


async def post_account(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=True)
    updates = metadata_updates(req.headers, "account")
    await _thread(req.store.update_account_meta, req.account, updates)
    return Response(status_code=204)


async def bulk_delete(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=True)
    body = await _read_body(req, 1024 * 1024 * 10)
    fmt = choose_format(req.query, req.headers.get("accept"))
    result = await _thread(bulk.bulk_delete, req.store, req.account, bulk.parse_paths(body))
    media, data = bulk.render(result, fmt)
    return Response(data, 200, media_type=media)


# --- container ----------------------------------------------------------------------------------


def _container_headers(info: Any) -> dict[str, str]:
    headers = {
        "X-Container-Object-Count": str(info.object_count),
        "X-Container-Bytes-Used": str(info.bytes_used),
        "X-Timestamp": x_timestamp(info.created_at),
        "Last-Modified": http_date(info.modified_at),
        "X-PUT-Timestamp": x_timestamp(info.modified_at),
        "X-Storage-Policy": "Policy-0",
        "Accept-Ranges": "bytes",
    }
    headers.update(_meta_headers(info.meta))
    return headers


async def put_container(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=True)
    check_container_name(req.container)
    updates = metadata_updates(req.headers, "container", CONTAINER_SYSMETA)
    _, created = await _thread(req.store.ensure_container, req.account, req.container, updates)
    return Response(status_code=201 if created else 202, headers={"Content-Length": "0"})


async def head_container(req: SwiftRequest) -> Response:
    info = await _thread(req.store.get_container, req.account, req.container)
    acl.check_container_access(req.caller, req.account, info.meta, write=False, listing=True)
    return Response(status_code=204, headers=_container_headers(info), media_type="text/plain; charset=utf-8")


async def get_container(req: SwiftRequest) -> Response:
    params = listing_params(req.query, path_allowed=True)
    fmt = choose_format(req.query, req.headers.get("accept"))
    info = await _thread(req.store.get_container, req.account, req.container)
    acl.check_container_access(req.caller, req.account, info.meta, write=False, listing=True)
    entries = await _thread(req.store.list_objects, req.account, req.container, **params)
    headers = _container_headers(info)
    if "format" not in req.query:
        headers["Vary"] = "Accept"
    if not entries and fmt == "plain":
        return Response(status_code=204, headers=headers, media_type=CONTENT_TYPES["plain"])
    return Response(render_objects(entries, fmt, req.container), 200, headers=headers, media_type=CONTENT_TYPES[fmt])


async def post_container(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=True)
    updates = metadata_updates(req.headers, "container", CONTAINER_SYSMETA)
    info = await _thread(req.store.get_container, req.account, req.container)
    check_total_meta({**info.meta, **updates}, "container")
    await _thread(req.store.update_container_meta, req.account, req.container, updates)
    return Response(status_code=204)


async def delete_container(req: SwiftRequest) -> Response:
    acl.check_owner(req.caller, req.account, write=True)
    await _thread(req.store.delete_container, req.account, req.container)
    return Response(status_code=204)


# --- objects ------------------------------------------------------------------------------------


async def _container_for(req: SwiftRequest, *, write: bool, container: str | None = None) -> Any:
    tempurl_scope(req, container or req.container)
    info = await _thread(req.store.get_container, req.account, container or req.container)
    acl.check_container_access(req.caller, req.account, info.meta, write=write)
    return info


def _content_type(req: SwiftRequest, name: str) -> str:
    given = req.headers.get("content-type")
    if given and req.headers.get("x-detect-content-type", "").lower() not in TRUE_VALUES:
        return given
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _object_meta(req: SwiftRequest) -> dict[str, str]:
    meta = metadata_updates(req.headers, "object", OBJECT_SYSMETA)
    return {k: v for k, v in meta.items() if v != ""}


async def put_object(req: SwiftRequest) -> Response:
    check_container_name(req.container)
    check_object_name(req.obj)
    if "x-copy-from" in req.headers:
        if "multipart-manifest" in req.query and req.query["multipart-manifest"] == "put":
            raise SwiftError(405, "")
        source = unquote(req.headers["x-copy-from"]).lstrip("/")
        src_container, _, src_name = source.partition("/")
        if not src_container or not src_name:
            raise SwiftError(412, "X-Copy-From header must be of the form <container name>/<object name>")
        await _require_empty_body(req)
        return await _copy(req, src_container, src_name, req.container, req.obj)
    await _container_for(req, write=True)
    length = _body_length(req)
    meta = _object_meta(req)
    expires = delete_at(req.headers)
    content_type = _content_type(req, req.obj)
    inm = req.headers.get("if-none-match")
    if inm is not None:
        if inm.strip() != "*":
            raise SwiftError(400, "If-None-Match only supports *")
        try:
            await _thread(req.store.head, req.account, req.container, req.obj)
            raise SwiftError(412, "")
        except NoSuchObject:
            pass
    if req.query.get("multipart-manifest") == "put":
        if length is not None and length > SLO_MAX_MANIFEST_SIZE:
            raise SwiftError(413, f"Manifest File > {SLO_MAX_MANIFEST_SIZE} bytes")
        try:
            body = await bodies.read_body(req.request, SLO_MAX_MANIFEST_SIZE)
        except BodyTooLarge:
            raise SwiftError(413, f"Manifest File > {SLO_MAX_MANIFEST_SIZE} bytes") from None
        except bodies.MalformedJSON:  # the client went away mid-body
            raise SwiftError(499, "") from None
        return await _put_slo(req, body, content_type, meta, expires)
    manifest = None
    if "x-object-manifest" in req.headers:
        manifest = dlo.parse_manifest_header(req.headers["x-object-manifest"])
    writer = await _thread(
        req.store.writer,
        req.account,
        req.container,
        req.obj,
        content_type=content_type,
        meta=meta,
        expected_etag=req.headers.get("etag"),
        delete_at=expires,
    )
    if manifest is not None:  # a DLO: its own body is kept (``?multipart-manifest=get`` returns it)
        writer.kind, writer.manifest = "dlo", manifest
    try:
        received = await _stream_into(req, writer.write)
        if length is not None and received != length:
            raise SwiftError(499, "")
        info = await _thread(writer.commit)
    except BaseException:
        await _thread(writer.abort)
        raise
    return Response(status_code=201, headers=_created_headers(info))


ACCEPTABLE = {"plain": "text/plain", "json": "application/json", "xml": "application/xml"}


def _out_format(req: SwiftRequest) -> str:
    """The Accept-chosen format of a bulk-style answer (SLO PUT/DELETE); a bad Accept means plain."""
    try:
        return choose_format({}, req.headers.get("accept"))
    except SwiftError:
        return "plain"


def _segment_access(req: SwiftRequest, *, write: bool = False) -> Callable[[str], int | None]:
    """Whether the caller may read (or delete) objects of a container: None, or the status it would get."""

    def can(container: str) -> int | None:
        try:
            info = req.store.get_container(req.account, container)
        except NoSuchContainer:
            return None
        try:
            acl.check_container_access(req.caller, req.account, info.meta, write=write)
            tempurl_scope(req, container)
        except SwiftError as exc:
            return exc.status
        return None

    return can


def tempurl_scope(req: SwiftRequest, container: str) -> None:
    """A TempURL signed with a container's key reaches that container only (not segments elsewhere)."""
    if req.tempurl is not None and req.tempurl.container is not None and container != req.tempurl.container:
        raise SwiftError(401, "")


def _segment_check(req: SwiftRequest) -> Callable[[str, str], None]:
    """For ``store.open(check=...)``: read a large object's segments with the caller's own rights."""
    can = _segment_access(req)

    def check(account: str, container: str) -> None:
        refused = can(container)
        if refused:
            raise SegmentRefused(refused)

    return check


class SegmentRefused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


async def _put_slo(req: SwiftRequest, body: bytes, content_type: str, meta: dict, expires: float | None) -> Response:
    entries = slo.parse(body, req.container, req.obj)
    fmt = _out_format(req)
    heartbeat = req.query.get("heartbeat", "").lower() in TRUE_VALUES

    def run() -> tuple[int, dict[str, str], list[tuple[str, str]]]:
        try:
            info = slo.put(
                req.store,
                req.account,
                req.container,
                req.obj,
                entries,
                _segment_access(req),
                expected_etag=req.headers.get("etag"),
                content_type=content_type,
                meta=meta,
                delete_at=expires,
            )
        except slo.ManifestProblems as problems:
            return 400, {}, problems.errors
        except SwiftError as exc:
            if exc.status != 422 or not heartbeat:
                raise
            return 422, {}, []
        return 201, _created_headers(info, quoted=True), []

    if not heartbeat:
        status, headers, problems = await _thread(run)
        if problems:
            return _problems_response(fmt, {}, problems)
        return Response(status_code=status, headers=headers)

    async def beating() -> Any:
        yield b" "
        status, headers, problems = await _thread(run)
        report: dict[str, str] = {"Response Status": f"{status} {STATUS_TEXT[status]}"}
        if status == 201:
            report.update({"Etag": headers["Etag"], "Last Modified": headers["Last-Modified"], "Response Body": ""})
        else:
            report["Response Body"] = "\n".join(RESPONSE_REASONS[status])
        yield b"\r\n\r\n" + bulk.heartbeat_body(fmt, report, problems)

    return StreamingResponse(beating(), 202, media_type=ACCEPTABLE[fmt])


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def _body_length(req: SwiftRequest) -> int | None:
    """The declared body length (None: chunked); Swift's 400 / 411 / 413 / 501 checks, before reading."""
    te = req.headers.get("transfer-encoding", "").lower()
    if te and te != "chunked":
        raise SwiftError(501, "Not Implemented")
    cl = req.headers.get("content-length")
    if cl is None:
        if te == "chunked":
            return None
        raise SwiftError(411, "Missing Content-Length header.")
    try:
        length = int(cl)
    except ValueError:
        raise SwiftError(400, "Invalid Content-Length header value") from None
    if length < 0:
        raise SwiftError(400, "Invalid Content-Length header value")
    if length > MAX_FILE_SIZE:
        raise SwiftError(413, "Your request is too large.")
    return length


async def _stream_into(req: SwiftRequest, write: Callable[[bytes], None]) -> int:
    """Feed the body to ``write`` in ~1 MiB pieces (in a worker thread); the byte count."""
    try:
        return await pump(req.request.stream(), write, limit=MAX_FILE_SIZE)
    except BodyTooLarge:
        raise SwiftError(413, "Your request is too large.") from None
    except ClientDisconnect:
        raise SwiftError(499, "") from None


async def _read_body(req: SwiftRequest, limit: int) -> bytes:
    data = bytearray()
    try:
        async for chunk in req.request.stream():
            data += chunk
            if len(data) > limit:
                raise SwiftError(413, f"Request body larger than {limit} bytes")
    except ClientDisconnect:
        raise SwiftError(499, "") from None
    return bytes(data)


async def _require_empty_body(req: SwiftRequest) -> None:
    if await _read_body(req, 1 << 20):
        raise SwiftError(400, "Copy requests require a zero byte body")


def _created_headers(info: ObjectInfo, quoted: bool = False) -> dict[str, str]:
    return {
        "Etag": f'"{info.etag}"' if quoted else info.etag,
        "Last-Modified": http_date(info.last_modified),
        "X-Timestamp": x_timestamp(info.last_modified),
        "Content-Length": "0",
    }


def _problems_response(fmt: str, report: dict[str, str], errors: list[tuple[str, str]]) -> Response:
    return Response(bulk.heartbeat_body(fmt, report, errors), 400, media_type=ACCEPTABLE[fmt])


def _object_headers(info: ObjectInfo, size: int, etag: str) -> dict[str, str]:
    headers = {
        "Content-Type": info.content_type,
        "Etag": etag,
        "Last-Modified": http_date(info.last_modified),
        "X-Timestamp": x_timestamp(info.last_modified),
        "Accept-Ranges": "bytes",
        "Content-Length": str(size),
    }
    if info.kind == "slo":
        headers["X-Static-Large-Object"] = "True"
    if info.kind == "dlo":
        headers["X-Object-Manifest"] = quote(info.manifest or "")
    if info.delete_at is not None:
        headers["X-Delete-At"] = str(int(info.delete_at))
    headers.update(_meta_headers(info.meta))
    return headers


async def get_object(req: SwiftRequest) -> Response:
    await _container_for(req, write=False)
    info: ObjectInfo = await _thread(req.store.head, req.account, req.container, req.obj)
    manifest_get = req.query.get("multipart-manifest") == "get"
    if manifest_get and info.kind == "slo":
        raw = req.query.get("format") == "raw"
        body = slo.manifest_view(info, raw=raw)
        headers = _object_headers(info, len(body), _md5(body))
        if not raw:
            headers["Content-Type"] = "application/json; charset=utf-8"
        _check_conditions(req, headers["Etag"], info.last_modified)
        return Response(body if req.method == "GET" else b"", 200, headers=headers)
    if manifest_get and info.kind == "dlo":
        return await _plain_object(req, info, resolve=False)
    part = _part_number(req) if info.kind == "slo" else None
    if part is not None:
        return await _slo_part(req, info, part)
    return await _plain_object(req, info, resolve=True)


def _part_number(req: SwiftRequest) -> int | None:
    """``?part-number=N`` of an SLO GET/HEAD, as Swift's get_valid_part_num."""
    value = req.query.get("part-number")
    if value is None:
        return None
    try:
        number = int(value)
        if number <= 0:
            raise ValueError(value)
    except ValueError:
        raise SwiftError(400, "Part number must be an integer greater than 0", html=True) from None
    if req.headers.get("range"):
        raise SwiftError(400, "Range requests are not supported with part number queries", html=True)
    return number


async def _slo_part(req: SwiftRequest, info: ObjectInfo, part: int) -> Response:
    parts = await _thread(slo.part_ranges, req.store, info)
    headers = _object_headers(info, info.size, f'"{info.etag}"')
    headers["X-Parts-Count"] = str(len(parts))
    headers["X-Manifest-Etag"] = slo.manifest_etag(info)
    _check_conditions(req, info.etag, info.last_modified)
    if part > len(parts):
        body = b"" if req.method == "HEAD" else b"The requested part number is not satisfiable"
        headers["Content-Length"] = str(len(body))
        headers["Content-Range"] = f"bytes */{info.size}"
        return Response(body, 416, headers=headers, media_type=info.content_type)
    start, length = parts[part - 1]
    headers["Content-Length"] = str(length)
    headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{info.size}"
    if req.method == "HEAD":
        return Response(b"", 206, headers=headers)
    reader = await _open(req, info, resolve=True)
    return StreamingResponse(_stream(reader, [(start, length)]), 206, headers=headers)


async def _open(req: SwiftRequest, info: ObjectInfo, *, resolve: bool) -> ObjectReader:
    """The object's reader; a large object's segments are read with the caller's own rights (Swift's rule)."""
    try:
        return await _thread(
            req.store.open, req.account, req.container, req.obj, resolve=resolve, check=_segment_check(req)
        )
    except SegmentRefused as refused:
        raise SwiftError(409 if info.kind == "slo" else refused.status, "") from None


async def _plain_object(req: SwiftRequest, info: ObjectInfo, *, resolve: bool) -> Response:
    if info.kind == "slo" and req.method == "HEAD":  # Swift answers an SLO HEAD from the manifest alone
        headers = _object_headers(info, info.size, f'"{info.etag}"')
        headers["X-Manifest-Etag"] = slo.manifest_etag(info)
        _check_conditions(req, info.etag, info.last_modified)
        return Response(b"", 200, headers=headers)
    reader = await _open(req, info, resolve=resolve)
    try:
        size, etag = reader.size, info.etag
        if info.kind == "dlo" and resolve:
            _, etag = await _thread(dlo.totals, req.store, info)
        large = bool(info.kind) and resolve
        quoted = f'"{etag}"' if large else etag
        headers = _object_headers(info, size, quoted)
        if info.kind == "slo":
            headers["X-Manifest-Etag"] = slo.manifest_etag(info)
        _check_conditions(req, etag, info.last_modified)
        ranges = _parse_ranges(req.headers.get("range"), size)
    except BaseException:
        reader.close()
        raise
    if req.method == "HEAD":
        reader.close()
        return Response(b"", 200, headers=headers)
    if ranges is None:
        return StreamingResponse(_stream(reader, [(0, size)]), 200, headers=headers)
    if len(ranges) == 1:
        start, length = ranges[0]
        headers["Content-Length"] = str(length)
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        return StreamingResponse(_stream(reader, ranges), 206, headers=headers)
    boundary = secrets.token_hex(16)
    preambles = [
        (
            f"--{boundary}\r\nContent-Type: {info.content_type}\r\n"
            f"Content-Range: bytes {start}-{start + length - 1}/{size}\r\n\r\n"
        ).encode()
        for start, length in ranges
    ]
    closing = f"--{boundary}--".encode()
    total = sum(len(p) + length + 2 for p, (_, length) in zip(preambles, ranges, strict=True)) + len(closing)
    headers["Content-Length"] = str(total)
    headers["Content-Type"] = f"multipart/byteranges;boundary={boundary}"
    return StreamingResponse(_stream(reader, ranges, preambles, closing), 206, headers=headers)


def _stream(
    reader: ObjectReader,
    ranges: list[tuple[int, int]],
    preambles: list[bytes] | None = None,
    closing: bytes | None = None,
) -> Iterator[bytes]:
    """The body of a GET, read in a worker thread piece by piece; the reader is closed at the end."""
    try:
        for index, (start, length) in enumerate(ranges):
            if preambles:
                yield preambles[index]
            yield from reader.iter_range(start, length, CHUNK)
            if preambles:
                yield b"\r\n"
        if closing:
            yield closing
    finally:
        reader.close()


def _parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """``Range`` as (start, length) pairs; None to send the whole body; 416 if none is satisfiable."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    ranges: list[tuple[int, int]] = []
    items = [s.strip() for s in spec.split(",")]
    for item in items:
        first, sep, last = item.partition("-")
        if not sep:
            return None
        try:
            if first == "":
                if not last:
                    return None
                n = int(last)
                if n == 0:
                    continue
                start, end = max(size - n, 0), size - 1
            else:
                start = int(first)
                end = int(last) if last else size - 1
                if end < start:
                    return None
                end = min(end, size - 1)
        except ValueError:
            return None
        if start < size and start <= end:
            ranges.append((start, end - start + 1))
    if len(items) > 50:
        raise SwiftError(416, "", {"Content-Range": f"bytes */{size}"})
    if not ranges:
        raise SwiftError(416, "Requested Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
    return ranges


def _etag_matches(header: str, etag: str) -> bool:
    values = [v.strip().strip('"') for v in header.split(",")]
    return "*" in values or etag.strip('"') in values


def _check_conditions(req: SwiftRequest, etag: str, last_modified: float) -> None:
    from email.utils import parsedate_to_datetime

    headers = req.headers
    if "if-match" in headers and not _etag_matches(headers["if-match"], etag):
        raise SwiftError(412, "", {"Etag": etag})
    if "if-none-match" in headers and _etag_matches(headers["if-none-match"], etag):
        raise SwiftError(304, "", {"Etag": etag})
    modified = int(-(-last_modified // 1))
    for name, status in (("if-modified-since", 304), ("if-unmodified-since", 412)):
        if name in headers and not ("if-none-match" in headers and name == "if-modified-since"):
            try:
                when = parsedate_to_datetime(headers[name]).timestamp()
            except (TypeError, ValueError):
                continue
            if (status == 304 and modified <= when) or (status == 412 and modified > when):
                raise SwiftError(status, "", {"Etag": etag})


async def post_object(req: SwiftRequest) -> Response:
    await _container_for(req, write=True)
    meta = _object_meta(req)
    check_total_meta(meta, "object")
    expires: float | bool | None = (
        delete_at(req.headers) if ("x-delete-at" in req.headers or "x-delete-after" in req.headers) else False
    )
    if "x-remove-delete-at" in req.headers:
        expires = None
    current: ObjectInfo = await _thread(req.store.head, req.account, req.container, req.obj)
    kind, manifest = current.kind, current.manifest
    if req.headers.get("x-object-manifest") and current.kind != "slo":  # a POST may make an object a DLO
        kind, manifest = "dlo", unquote(req.headers["x-object-manifest"])  # Swift checks the form on PUT only
    elif current.kind == "dlo":  # a DLO stays one only if the POST names its manifest again
        kind, manifest = "", None
    await _thread(
        req.store.update_object_meta,
        req.account,
        req.container,
        req.obj,
        meta=meta,
        content_type=req.headers.get("content-type"),
        delete_at=expires,
        kind=kind,
        manifest=manifest,
    )
    body = b"<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>"
    return Response(body, 202, media_type="text/html; charset=UTF-8")


async def delete_object(req: SwiftRequest) -> Response:
    await _container_for(req, write=True)
    if req.query.get("multipart-manifest") == "delete":
        can_delete = _segment_access(req, write=True)
        result = await _thread(slo.delete, req.store, req.account, req.container, req.obj, can_delete)
        if result.deleted == 0:
            raise SwiftError(404, "")
        media, data = bulk.render(result, choose_format({}, req.headers.get("accept")))
        return Response(data, 200, media_type=media)
    await _thread(req.store.delete_object, req.account, req.container, req.obj)
    return Response(status_code=204)


async def copy_object(req: SwiftRequest) -> Response:
    destination = req.headers.get("destination")
    if not destination:
        raise SwiftError(412, "Destination header required")
    destination = unquote(destination).lstrip("/")
    dst_container, _, dst_name = destination.partition("/")
    if not dst_container or not dst_name:
        raise SwiftError(412, "Destination header must be of the form <container name>/<object name>")
    if req.headers.get("destination-account", req.account) != req.account:
        raise SwiftError(403, "Copies across accounts are not supported")
    await _require_empty_body(req)
    return await _copy(req, req.container, req.obj, dst_container, dst_name)


async def _copy(req: SwiftRequest, src_container: str, src_name: str, dst_container: str, dst_name: str) -> Response:
    await _container_for(req, write=False, container=src_container)
    await _container_for(req, write=True, container=dst_container)
    check_object_name(dst_name)
    source: ObjectInfo = await _thread(req.store.head, req.account, src_container, src_name)
    manifest_only = req.query.get("multipart-manifest") == "get"
    if source.kind == "slo" and not manifest_only and source.size > MAX_FILE_SIZE:
        raise SwiftError(413, "Your request is too large.")
    meta = _object_meta(req)
    fresh = req.method == "COPY" and req.headers.get("x-fresh-metadata", "").lower() in TRUE_VALUES
    given_type = req.headers.get("content-type") if req.method == "COPY" else None
    info = await _thread(
        req.store.copy,
        req.account,
        src_container,
        src_name,
        dst_container,
        dst_name,
        meta=meta,
        content_type=given_type,
        fresh_meta=fresh,
        manifest_only=manifest_only,
    )
    headers = _created_headers(info, quoted=bool(info.kind))
    headers["X-Copied-From"] = quote(f"{src_container}/{src_name}")
    headers["X-Copied-From-Account"] = quote(req.account)
    headers["X-Copied-From-Last-Modified"] = http_date(source.last_modified)
    return Response(status_code=201, headers=headers)


# --- rendering ----------------------------------------------------------------------------------


def _meta_headers(meta: dict[str, str]) -> dict[str, str]:
    return {_title(k): v for k, v in meta.items()}


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _error(status: int, message: str, headers: dict[str, str] | None = None, *, html: bool = False) -> Response:
    if status in (204, 304):
        return Response(status_code=status, headers=headers)
    title, explanation = RESPONSE_REASONS.get(status, ("Error", ""))
    if message:
        body = message.encode()
        media = "text/html; charset=UTF-8" if html else "text/plain; charset=utf-8"
    else:
        body = f"<html><h1>{title}</h1><p>{explanation}</p></html>".encode()
        media = "text/html; charset=UTF-8"
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Swift realm="unknown"')
    return Response(body, status, headers=extra, media_type=media)


def _finish(response: Response) -> Response:
    trans = f"tx{secrets.token_hex(11)[:21]}-{int(time.time()):010x}"
    response.headers["X-Trans-Id"] = trans
    response.headers["X-Openstack-Request-Id"] = trans
    return response


__all__ = ["json", "object_routes"]
