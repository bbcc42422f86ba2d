"""The server's logs: its messages (``imagehop.log``) and one line per request (``access.log``).

Both files live in the data dir and are reopened when moved (``WatchedFileHandler``), so
``logrotate`` can rotate them without a restart. The access log is Apache's *combined* format
followed by the request id (the ``X-Openstack-Request-Id`` every response carries) and the time
taken in seconds.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import Any

LOG_FILE = "imagehop.log"
ACCESS_LOG_FILE = "access.log"
LEVELS = ("debug", "info", "warning", "error")
REQUEST_ID_HEADERS = (b"x-openstack-request-id", b"x-trans-id")

access_log = logging.getLogger("imagehop.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def configure(data_dir: Path, level: str = "info", access: str | None = None, terminal: str = "warning") -> None:
    """Messages at ``level`` to ``<data_dir>/imagehop.log`` (and at ``terminal`` to standard error);
    one line per request to the access log.

    ``access``: a file, ``-`` for standard output, ``off`` for none; default ``<data_dir>/access.log``.
    """
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    outputs = ((logging.StreamHandler(sys.stderr), terminal), (WatchedFileHandler(data_dir / LOG_FILE), level))
    for handler, handler_level in outputs:
        handler.setFormatter(formatter)
        handler.setLevel(handler_level.upper())
        root.addHandler(handler)
    lowest = min(logging.getLevelName(level.upper()), logging.getLevelName(terminal.upper()))
    root.setLevel(lowest)
    # Start-up chatter (each migration step, uvicorn's "Started server process" per listener) only in debug.
    chatty = logging.DEBUG if lowest <= logging.DEBUG else logging.WARNING
    for name in ("alembic", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(chatty)

    for handler in list(access_log.handlers):
        access_log.removeHandler(handler)
    access_log.propagate = False
    if access == "off":
        access_log.disabled = True
        return
    access_log.disabled = False
    target = (
        logging.StreamHandler(sys.stdout) if access == "-" else WatchedFileHandler(access or data_dir / ACCESS_LOG_FILE)
    )
    target.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(target)
    access_log.setLevel(logging.INFO)


class AccessLog:
    """ASGI middleware: give every response a request id and log it in combined format.

    A pure ASGI wrapper (no buffering), so streamed uploads and downloads pass through untouched.
    A service that names its own request id (Swift's ``X-Trans-Id``, Glance's) keeps it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable) -> None:
        if scope["type"] != "http" or access_log.disabled:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        scope.setdefault("state", {})  # where the routes note the caller's user name
        status, size, request_id = 0, 0, "-"

        async def send_and_count(message: Message) -> None:
            nonlocal status, size, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or [])
                found = next((v for k, v in headers if k.lower() in REQUEST_ID_HEADERS), None)
                if found is None:
                    found = f"req-{uuid.uuid4()}".encode()
                    headers.append((b"x-openstack-request-id", found))
                    message = {**message, "headers": headers}
                request_id = found.decode("latin-1")
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            elif message["type"] == "http.response.zerocopy":  # sendfile (see http_protocol)
                size += message.get("count") or 0
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            access_log.info(_combined(scope, status or 500, size, request_id, time.monotonic() - started))


def _combined(scope: Scope, status: int, size: int, request_id: str, seconds: float) -> str:
    client = scope.get("client")
    headers = {k.lower(): v for k, v in scope.get("headers") or []}
    user = (scope.get("state") or {}).get("user_name") or "-"
    target = scope.get("raw_path") or scope.get("path", "").encode()
    if isinstance(target, bytes):
        target = target.decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    request_line = f"{scope.get('method', '-')} {target} HTTP/{scope.get('http_version', '1.1')}"
    return (
        f'{client[0] if client else "-"} - {user} [{when}] "{_quote(request_line)}" {status} {size or "-"} '
        f'"{_quote(_header(headers, b"referer"))}" "{_quote(_header(headers, b"user-agent"))}" '
        f"{request_id} {seconds:.3f}"
    )


def _header(headers: dict[bytes, bytes], name: bytes) -> str:
    value = headers.get(name)
    return value.decode("latin-1") if value else "-"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
