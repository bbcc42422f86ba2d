"""Swift v1 routes: ``/info`` and ``/v1/<account>[/<container>[/<object>]]`` at a region's base URL.

Each handler parses and checks the request, calls the store (or the SLO / DLO / bulk / TempURL
unit) in a worker thread, and renders Swift's response. Paths are decoded here from the raw bytes
so that invalid UTF-8 or NUL answers 412 as in Swift; names never become filesystem paths.
"""

from __future__ import annotations

import itertools
import json
import math
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
from imagehop.http_protocol import ZEROCOPY
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
    from_wire,
    http_date,
    info_document,
    metadata_updates,
    to_wire,
    x_timestamp,
)
from imagehop.objects.listing import CONTENT_TYPES, choose_format, listing_params, render_containers, render_objects
from imagehop.objects.store import (
    CHUNK,
    ZEROS,
    BrokenLargeObject,
    ContainerNotEmpty,
    EtagMismatch,
    NoSuchContainer,
    NoSuchObject,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    ObjectWriter,
)
from imagehop.region import Region
from imagehop.streams import BodyTimeout, BodyTooLarge, receive_body

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
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = f'Swift realm="{_realm(request)}"'
        if response.status_code in (204, 304) and "content-length" not in response.headers:
            response.headers["Content-Length"] = "0"  # as Swift's eventlet server
        if "keep-alive" in request.headers.get("connection", "").lower():
            response.headers["Connection"] = "keep-alive"  # echoed, as Swift does
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
        except Conditional as exc:
            response = Response(exc.body, exc.status, headers=exc.headers)
            return _finish(response)
        except SwiftError as exc:
            response = _error(exc.status, exc.message, exc.headers, html=exc.html)
            if exc.content_type:
                response.headers["Content-Type"] = exc.content_type
            return _finish(response)
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
        raise SwiftError(412, "Invalid UTF8 or contains NULL", html=True) from None
    if "\x00" in path:
        raise SwiftError(412, "Invalid UTF8 or contains NULL", html=True)
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
            await _check_owner(req, write=True)
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


OWNER_ONLY_ACCOUNT_META = (acl.ACCOUNT_ACL, *tempurl.KEYS)


def _account_headers(info: Any, owner: bool = True) -> dict[str, str]:
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
    meta = info.meta if owner else {k: v for k, v in info.meta.items() if k not in OWNER_ONLY_ACCOUNT_META}
    headers.update(_meta_headers(meta))
    return headers


async def _is_owner(req: SwiftRequest) -> bool:
    return acl.owns(req.caller, req.account, await _grants(req))


async def head_account(req: SwiftRequest) -> Response:
    await _check_owner(req, write=False)
    info = await _thread(req.store.account_info, req.account)
    headers = _account_headers(info, await _is_owner(req))
    return Response(status_code=204, headers=headers, media_type="text/plain; charset=utf-8")


async def get_account(req: SwiftRequest) -> Response:
    await _check_owner(req, write=False)
    params = listing_params(req.query)
    fmt = choose_format(req.query, req.headers.get("accept"))
    info = await _thread(req.store.account_info, req.account)
    entries = await _thread(req.store.list_containers, req.account, **params)
    headers = _account_headers(info, await _is_owner(req))
    if "format" not in req.query:
        headers["Vary"] = "Accept"
    if not entries and fmt == "plain":
        return Response(status_code=204, headers=headers, media_type=CONTENT_TYPES["plain"])
    body = render_containers(entries, fmt, req.account)
    return Response(body, 200, headers=headers, media_type=CONTENT_TYPES[fmt])


async def post_account(req: SwiftRequest) -> Response:
    await _check_owner(req, write=True)
    updates = metadata_updates(req.headers, "account")
    current = await _thread(req.store.account_meta, req.account)
    check_total_meta({**current, **updates}, "account")  # the stored whole, not one request, as Swift
    if acl.ACCOUNT_ACL in req.headers:
        grants = acl.parse_account_acl(req.headers[acl.ACCOUNT_ACL])
        updates[acl.ACCOUNT_ACL] = json.dumps(grants, separators=(",", ":"), sort_keys=True) if grants else ""
    await _thread(req.store.update_account_meta, req.account, updates)
    return Response(status_code=204)


async def bulk_delete(req: SwiftRequest) -> Response:
    await _check_owner(req, write=True)
    body = await _read_body(req, 1024 * 1024 * 10)
    fmt = choose_format(req.query, req.headers.get("accept"))
    result = await _thread(bulk.bulk_delete, req.store, req.account, bulk.parse_paths(body))
    media, data = bulk.render(result, fmt)
    return Response(data, 200, media_type=media)


# --- container ----------------------------------------------------------------------------------


OWNER_ONLY_CONTAINER_META = (acl.READ_ACL, acl.WRITE_ACL, *tempurl.CONTAINER_KEYS)


def _container_headers(info: Any, owner: bool = True) -> dict[str, str]:
    """``owner``: the caller owns the account; others do not see the ACLs and TempURL keys (as Swift)."""
    headers = {
        "X-Container-Object-Count": str(info.object_count),
        "X-Container-Bytes-Used": str(info.bytes_used),
        "X-Timestamp": x_timestamp(info.created_at),
        "Last-Modified": http_date(info.modified_at),
        "X-PUT-Timestamp": x_timestamp(info.modified_at),
        "X-Storage-Policy": "Policy-0",
        "Accept-Ranges": "bytes",
    }
    meta = info.meta if owner else {k: v for k, v in info.meta.items() if k not in OWNER_ONLY_CONTAINER_META}
    headers.update(_meta_headers(meta))
    return headers


async def put_container(req: SwiftRequest) -> Response:
    await _check_owner(req, write=True, containers=True)
    check_container_name(req.container)
    updates = metadata_updates(req.headers, "container", CONTAINER_SYSMETA)
    _, created = await _thread(req.store.ensure_container, req.account, req.container, updates)
    return Response(status_code=201 if created else 202, headers={"Content-Length": "0"})


async def head_container(req: SwiftRequest) -> Response:
    info = await _container_of(req, req.account, req.container, write=False, listing=True)
    headers = _container_headers(info, await _is_owner(req))
    return Response(status_code=204, headers=headers, media_type="text/plain; charset=utf-8")


async def get_container(req: SwiftRequest) -> Response:
    params = listing_params(req.query, path_allowed=True)
    fmt = choose_format(req.query, req.headers.get("accept"))
    info = await _container_of(req, req.account, req.container, write=False, listing=True)
    entries = await _thread(req.store.list_objects, req.account, req.container, **params)
    headers = _container_headers(info, await _is_owner(req))
    if "format" not in req.query:
        headers["Vary"] = "Accept"
    if not entries and fmt == "plain":
        return Response(status_code=204, headers=headers, media_type=CONTENT_TYPES["plain"])
    return Response(render_objects(entries, fmt, req.container), 200, headers=headers, media_type=CONTENT_TYPES[fmt])


async def post_container(req: SwiftRequest) -> Response:
    await _check_owner(req, write=True, containers=True)
    updates = metadata_updates(req.headers, "container", CONTAINER_SYSMETA)
    info = await _thread(req.store.get_container, req.account, req.container)
    check_total_meta({**info.meta, **updates}, "container")
    await _thread(req.store.update_container_meta, req.account, req.container, updates)
    return Response(status_code=204)


async def delete_container(req: SwiftRequest) -> Response:
    await _check_owner(req, write=True, containers=True)
    await _thread(req.store.delete_container, req.account, req.container)
    return Response(status_code=204)


# --- objects ------------------------------------------------------------------------------------


async def _container_for(req: SwiftRequest, *, write: bool, container: str | None = None) -> Any:
    return await _container_of(req, req.account, container or req.container, write=write)


def _content_type(req: SwiftRequest, name: str) -> str:
    given = from_wire(req.headers.get("content-type", ""))
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
        src_container, src_name = _copy_path(req.headers["x-copy-from"], "X-Copy-From")
        src_account = unquote(from_wire(req.headers.get("x-copy-from-account", req.account)))
        await _require_empty_body(req)
        return await _copy(req, src_account, src_container, src_name, req.account, req.container, req.obj)
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
        manifest = dlo.parse_manifest_header(from_wire(req.headers["x-object-manifest"]))
    writer = req.store.writer(  # the container was read just above; the commit checks it again
        req.account,
        req.container,
        req.obj,
        content_type=content_type,
        meta=meta,
        expected_etag=req.headers.get("etag"),
        delete_at=expires,
        check=False,
        keep_cache=False,  # dropped from the page cache as written, as Swift's object server does
    )
    if manifest is not None:  # a DLO: its own body is kept (``?multipart-manifest=get`` returns it)
        writer.kind, writer.manifest = "dlo", manifest
    try:
        if length is not None and length <= SMALL_BODY:  # read here, then written and committed in one hop
            body = await _read_body(req, length)
            if len(body) != length:
                raise SwiftError(499, "")
            info = await _thread(_write_and_commit, writer, body)
        else:
            received = await _stream_into(req, writer.write_buffer, length)
            if length is not None and received != length:
                raise SwiftError(499, "")
            info = await _thread(writer.commit)
    except BaseException:
        await _thread(writer.abort)
        raise
    return Response(status_code=201, headers=_created_headers(info))


SMALL_BODY = 64 << 10  # bodies up to this size are read whole before a worker thread writes them


def _write_and_commit(writer: ObjectWriter, body: bytes) -> ObjectInfo:
    writer.write_buffer(body)
    return writer.commit()


ACCEPTABLE = {"plain": "text/plain", "json": "application/json", "xml": "application/xml"}


def _out_format(req: SwiftRequest) -> str:
    """The Accept-chosen format of a bulk-style answer (SLO PUT/DELETE); a bad Accept means plain."""
    try:
        return choose_format({}, req.headers.get("accept"))
    except SwiftError:
        return "plain"


def _segment_access(req: SwiftRequest, *, write: bool = False) -> Callable[[str], int | None]:
    """Whether the caller may read (or delete) objects of a container: None, or the status it would get."""

    cached: list[dict | None] = []

    def grants() -> dict | None:  # read lazily, in the worker thread that checks the segments
        if not cached:
            needed = req.caller is not None and req.tempurl is None and not acl.is_operator(req.caller, req.account)
            cached.append(acl.grants_of(req.store.account_meta(req.account)) if needed else None)
        return cached[0]

    def can(container: str) -> int | None:
        try:
            info = req.store.get_container(req.account, container)
        except NoSuchContainer:
            return None
        try:
            tempurl_scope(req, container)
            if req.tempurl is None:
                acl.check_container_access(req.caller, req.account, info.meta, write=write, grants=grants())
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
    plain = "text/plain"  # as Swift's constraints answer these: without a charset
    te = req.headers.get("transfer-encoding", "")
    if "," in te:
        message = "Unsupported Transfer-Coding header value specified in Transfer-Encoding header"
        raise SwiftError(501, message, content_type=plain)
    if te and te.strip().lower() != "chunked":
        raise SwiftError(400, "Invalid Transfer-Encoding header value", content_type=plain)
    cl = req.headers.get("content-length")
    if cl is None:
        if te:
            return None
        raise SwiftError(411, "Missing Content-Length header.", content_type=plain)
    try:
        length = int(cl)
    except ValueError:
        raise SwiftError(400, "Invalid Content-Length header value", content_type=plain) from None
    if length < 0:
        raise SwiftError(400, "Invalid Content-Length header value", content_type=plain)
    if length > MAX_FILE_SIZE:
        raise SwiftError(413, "Your request is too large.", content_type=plain)
    return length


async def _stream_into(req: SwiftRequest, write: Callable[[bytes | bytearray], None], length: int | None) -> int:
    """Feed the body to ``write`` in ~1 MiB pieces (in a worker thread; see ``streams.receive_body``
    for the buffers it may reuse); the byte count."""
    try:
        return await receive_body(req.request, write, length=length, limit=MAX_FILE_SIZE)
    except BodyTooLarge:
        raise SwiftError(413, "Your request is too large.") from None
    except BodyTimeout:
        raise SwiftError(408) from None  # swob's own page; the connection closes after it
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
        "Content-Type": "text/html; charset=UTF-8",  # as Swift's proxy answers a PUT
        "Etag": f'"{info.etag}"' if quoted else info.etag,
        "Last-Modified": http_date(info.last_modified),
        "X-Timestamp": x_timestamp(info.last_modified),
        "Content-Length": "0",
    }


def _problems_response(fmt: str, report: dict[str, str], errors: list[tuple[str, str]]) -> Response:
    return Response(bulk.heartbeat_body(fmt, report, errors), 400, media_type=ACCEPTABLE[fmt])


def _object_headers(info: ObjectInfo, size: int, etag: str) -> dict[str, str]:
    headers = {
        "Content-Type": to_wire(info.content_type),
        "Etag": etag,
        "Last-Modified": http_date(info.last_modified),
        "X-Timestamp": x_timestamp(info.last_modified),
        "Accept-Ranges": "bytes",
        "Content-Length": str(size),
    }
    if info.kind == "slo":
        headers["X-Static-Large-Object"] = "True"
    if info.kind == "dlo":
        headers["X-Object-Manifest"] = to_wire(info.manifest or "")  # as stored, as Swift returns it
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
        _check_conditions(req, headers["Etag"], info.last_modified, headers)
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
    _check_conditions(req, info.etag, info.last_modified, headers)
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
            req.store.open, req.account, req.container, req.obj, resolve=resolve, check=_segment_check(req),
            keep_cache=False,  # a large object leaves the page cache as it is sent, as Swift's object server
        )  # fmt: skip
    except SegmentRefused as refused:
        raise SwiftError(409 if info.kind == "slo" else refused.status, "") from None


async def _plain_object(req: SwiftRequest, info: ObjectInfo, *, resolve: bool) -> Response:
    if info.kind == "slo" and req.method == "HEAD":  # Swift answers an SLO HEAD from the manifest alone
        headers = _object_headers(info, info.size, f'"{info.etag}"')
        headers["X-Manifest-Etag"] = slo.manifest_etag(info)
        _check_conditions(req, info.etag, info.last_modified, headers)
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
        _check_conditions(req, etag, info.last_modified, headers)
        ranges = _parse_ranges(req.headers.get("range"), size) if req.method == "GET" else None
        if info.kind == "dlo" and resolve and ranges is not None:  # Swift's dlo: one range asked, else the whole
            if "," in req.headers.get("range", ""):
                ranges = None
            elif not ranges:
                raise SwiftError(416, "", {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
        if ranges == []:
            raise _not_satisfiable(headers, size)
    except BaseException:
        reader.close()
        raise
    if req.method == "HEAD":
        reader.close()
        return Response(b"", 200, headers=headers)
    if ranges is None:
        return _FileResponse(reader, (0, size), 200, headers)
    if len(ranges) == 1:
        start, length = ranges[0]
        headers["Content-Length"] = str(length)
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        return _FileResponse(reader, ranges[0], 206, headers)
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


class _FileResponse(StreamingResponse):
    """One range of an object: where the server takes zero-copy sends (``http_protocol``) and the bytes
    are in open files (the ``file`` blob store), the kernel sends them from the page cache; else the
    bytes are read and sent piece by piece (:func:`_stream`)."""

    def __init__(self, reader: ObjectReader, span: tuple[int, int], status: int, headers: dict[str, str]) -> None:
        super().__init__(_stream(reader, [span]), status, headers=headers)
        self.reader, self.span = reader, span

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        runs = self.reader.file_runs(*self.span) if ZEROCOPY in scope.get("extensions", {}) else None
        if runs is None:
            await super().__call__(scope, receive, send)
            return
        self.body_iterator = iter(())  # the streaming body is not used: nothing to close
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            for blob, offset, n in runs:
                if blob is None:  # a hole
                    for at in range(0, n, CHUNK):
                        await send(
                            {"type": "http.response.body", "body": ZEROS[: min(CHUNK, n - at)], "more_body": True}
                        )
                    continue
                # in pieces, each released once the next is sent: the sockets hold a sent page until
                # the client has read it, and a page still held is not dropped
                released = offset
                for at in range(offset, offset + n, SEND_PIECE):
                    piece = min(SEND_PIECE, offset + n - at)
                    await send(
                        {"type": ZEROCOPY, "file": blob.fileno(), "offset": at, "count": piece, "more_body": True}
                    )
                    blob.release(released, at - released)
                    released = at
                blob.release(released, offset + n - released)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await run_in_threadpool(self.reader.close)


SEND_PIECE = 32 << 20  # bytes of one zero-copy send: a reader that drops what it sent does so piece by piece
MAX_RANGES, MAX_RANGE_OVERLAPS, MAX_NONASCENDING_RANGES = 50, 2, 8


def _parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """``Range`` as (start, length) pairs, as swob's Range: None to send the whole body, [] for 416."""
    if not header:
        return None
    header = header.replace(" ", "")
    if not header.lower().startswith("bytes="):
        return None
    specs: list[tuple[int | None, int | None]] = []
    try:
        for item in header[6:].split(","):
            if "-" not in item:
                return None
            first, last = item.split("-", 1)
            start = int(first) if first else None
            end: int | None = None
            if last:
                if not last.isdigit():
                    return None
                end = int(last)
                if start is not None and end < start:
                    return None
            elif start is None:
                return None
            specs.append((start, end))
    except ValueError:  # not a number, or more digits than Python reads: the header is ignored
        return None
    if not specs or size == 0:
        return None
    spans: list[tuple[int, int]] = []  # half-open
    for start, end in specs:
        if start is None:
            if end:
                spans.append((max(size - end, 0), size))
        elif start < size:
            spans.append((start, size if end is None else min(end + 1, size)))
    if len(spans) > MAX_RANGES or _overlaps(spans) > MAX_RANGE_OVERLAPS:
        spans = []
    ascending = all(a <= b for a, b in itertools.pairwise(spans))
    if not ascending and len(spans) >= MAX_NONASCENDING_RANGES:
        spans = []
    return [(start, stop - start) for start, stop in spans]


def _overlaps(spans: list[tuple[int, int]]) -> int:
    count = 0
    for i, (s1, e1) in enumerate(spans):
        for s2, e2 in spans[i + 1 :]:
            if s1 < s2 < e1 or s1 < e2 < e1 or s2 < s1 < e2 or s2 < e1 < e2:
                count += 1
    return count


def _not_satisfiable(headers: dict[str, str], size: int) -> SwiftError:
    title, explanation = RESPONSE_REASONS[416]
    body = f"<html><h1>{title}</h1><p>{explanation}</p></html>"
    return Conditional(416, {**headers, "Content-Range": f"bytes */{size}"}, body.encode())


class Conditional(SwiftError):
    """An answer with the object's own headers: 304 / 412 (empty) or 416 (swob's page), as swob answers."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        super().__init__(status, "", {**headers, "Content-Length": str(len(body))})
        self.body = body


def _etag_matches(header: str, etag: str) -> bool:
    values = [v.strip().strip('"') for v in header.split(",")]
    return "*" in values or etag.strip('"') in values


def _http_time(value: str) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _check_conditions(req: SwiftRequest, etag: str, last_modified: float, headers: dict[str, str]) -> None:
    """swob's conditional response: 304 or 412 with the object's headers and no body."""
    h = req.headers
    status = None
    modified = math.ceil(last_modified)
    if "if-none-match" in h and _etag_matches(h["if-none-match"], etag):
        status = 304
    elif "if-match" in h and not _etag_matches(h["if-match"], etag):
        status = 412
    elif "if-modified-since" in h and (since := _http_time(h["if-modified-since"])) is not None and modified <= since:
        status = 304
    elif (
        "if-unmodified-since" in h
        and (until := _http_time(h["if-unmodified-since"])) is not None
        and (modified > until)
    ):
        status = 412
    if status == 304:
        raise Conditional(304, headers)
    if status == 412:  # as Swift's proxy: no Accept-Ranges, an (empty) HTML page's type
        kept = {k: v for k, v in headers.items() if k.lower() != "accept-ranges"}
        raise Conditional(412, {**kept, "Content-Type": "text/html; charset=UTF-8"})


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
        # Swift checks the form of the value on PUT only
        kind, manifest = "dlo", from_wire(req.headers["x-object-manifest"])
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
    dst_container, dst_name = _copy_path(destination, "Destination")
    dst_account = unquote(from_wire(req.headers.get("destination-account", req.account)))
    await _require_empty_body(req)
    return await _copy(req, req.account, req.container, req.obj, dst_account, dst_container, dst_name)


def _copy_path(value: str, header: str) -> tuple[str, str]:
    """``<container>/<object>`` of X-Copy-From / Destination, checked as the object name of a PUT would be."""
    try:
        path = unquote_to_bytes(value.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise SwiftError(412, "Invalid UTF8 or contains NULL", html=True) from None
    if "\x00" in path:
        raise SwiftError(412, "Invalid UTF8 or contains NULL", html=True)
    container, _, name = path.lstrip("/").partition("/")
    if not container or not name:
        raise SwiftError(412, f"{header} header must be of the form <container name>/<object name>", html=True)
    check_container_name(container)
    check_object_name(name)
    return container, name


async def _grants(req: SwiftRequest, account: str | None = None) -> dict | None:
    """The account's ACL, read only when it could matter (not for the account's own operators)."""
    account = account or req.account
    if req.caller is None or req.tempurl is not None or acl.is_operator(req.caller, account):
        return None
    return acl.grants_of(await _thread(req.store.account_meta, account))


async def _check_owner(req: SwiftRequest, *, write: bool, containers: bool = False) -> None:
    """Account operations; ``containers``: creating, changing or deleting a container, which an account's
    ``read-write`` grant also allows (as tempauth)."""
    if req.tempurl is not None:
        raise SwiftError(401, "")
    grants = await _grants(req)
    if containers and acl.writes_containers(req.caller, grants):
        return
    acl.check_owner(req.caller, req.account, write, grants)


async def _container_of(req: SwiftRequest, account: str, container: str, *, write: bool, listing: bool = False) -> Any:
    """The container, if the caller may use it; a caller who does not own the account learns nothing of
    containers it cannot use, existing or not (401/403 either way, as Swift)."""
    tempurl_scope(req, container)
    grants = await _grants(req, account)
    try:
        info = await _thread(req.store.get_container, account, container)
    except NoSuchContainer:
        if req.tempurl is None:
            acl.check_container_access(req.caller, account, {}, write=write, listing=listing, grants=grants)
        raise
    if req.tempurl is None:
        acl.check_container_access(req.caller, account, info.meta, write=write, listing=listing, grants=grants)
    return info


async def _copy(
    req: SwiftRequest,
    src_account: str,
    src_container: str,
    src_name: str,
    dst_account: str,
    dst_container: str,
    dst_name: str,
) -> Response:
    """A server-side copy, with the caller's rights checked on both sides (accounts may differ)."""
    await _container_of(req, src_account, src_container, write=False)
    await _container_of(req, dst_account, dst_container, write=True)
    source: ObjectInfo = await _thread(req.store.head, src_account, src_container, src_name)
    manifest_only = req.query.get("multipart-manifest") == "get"
    if source.kind == "slo" and not manifest_only and source.size > MAX_FILE_SIZE:
        raise SwiftError(413, "Your request is too large.")
    byte_range = None
    if req.headers.get("range") and not manifest_only:
        size = source.size if source.kind != "dlo" else (await _thread(dlo.totals, req.store, source))[0]
        ranges = _parse_ranges(req.headers["range"], size)
        if ranges == []:
            raise SwiftError(416, "", {"Content-Range": f"bytes */{size}"})
        if ranges:
            byte_range = ranges[0]
    meta = _object_meta(req)
    fresh = req.method == "COPY" and req.headers.get("x-fresh-metadata", "").lower() in TRUE_VALUES
    given_type = req.headers.get("content-type") if req.method == "COPY" else None
    try:
        info = await _thread(
            req.store.copy,
            src_account,
            src_container,
            src_name,
            dst_container,
            dst_name,
            meta=meta,
            content_type=given_type,
            fresh_meta=fresh,
            manifest_only=manifest_only,
            dst_account=dst_account,
            byte_range=byte_range,
            check=_segment_check(req),
        )
    except SegmentRefused as refused:
        raise SwiftError(refused.status, "") from None
    headers = _created_headers(info, quoted=info.kind == "slo")
    headers["X-Copied-From"] = quote(f"{src_container}/{src_name}")
    headers["X-Copied-From-Account"] = quote(src_account)
    headers["X-Copied-From-Last-Modified"] = http_date(source.last_modified)
    headers.update(_meta_headers(info.meta))
    headers["Content-Type"] = "text/html; charset=UTF-8"
    return Response(status_code=201, headers=headers)


# --- rendering ----------------------------------------------------------------------------------


def _meta_headers(meta: dict[str, str]) -> dict[str, str]:
    return {_title(k): to_wire(v) for k, v in meta.items()}


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _realm(request: Request) -> str:
    """The account named by the path, as Swift's tempauth puts it in ``WWW-Authenticate``."""
    raw = (request.scope.get("raw_path") or b"").split(b"?", 1)[0]
    parts = raw.split(b"/")
    account = parts[2] if len(parts) > 2 and parts[2] else b""
    text = account.decode("latin-1")
    return text if text and all(c.isprintable() and c != '"' for c in text) else "unknown"


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
