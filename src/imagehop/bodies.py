"""JSON request bodies, bounded: the one way every JSON endpoint reads and parses what it is sent.

A body is read chunk by chunk and reading stops as soon as it passes the endpoint's limit (a
declared ``Content-Length`` over the limit is refused before a byte is read), so memory per request
is bounded whatever the client sends or claims. Parsing refuses what Python's ``json`` would accept
but nothing else can store or render: nesting deeper than :data:`MAX_DEPTH`, ``NaN`` and
``Infinity``, invalid UTF-8. Each service turns the two errors into its own 413 and 400 bodies.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from imagehop.streams import BodyTooLarge

MAX_JSON_BODY = 114688  # Keystone's, Glance's and Nova's max_request_body_size (112 KiB)
MAX_DEPTH = 32  # no request of any API we speak nests deeper than a handful of levels
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes included
_BRACKETS = re.compile(r"[\[\]{}]")


class MalformedJSON(ValueError):
    """The body is not a JSON document we accept; the message says why (safe to show)."""


class UnstorableText(ValueError):
    """A path segment or query parameter holds what no database column can store (NUL)."""


def check_request_text(request: Request) -> None:
    """Path parameters and query strings are stored and compared as text as well: refuse NUL there
    (PostgreSQL cannot take it) as :func:`parse_json` does in bodies."""
    params = request.query_params
    for value in (*request.path_params.values(), *params.keys(), *params.values()):
        if isinstance(value, str) and "\x00" in value:
            raise UnstorableText("The request's path or query holds a NUL character (%00).")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as more than ``limit`` bytes are declared or arrive."""
    declared = (request.headers.get("content-length") or "").strip()
    if declared.isascii() and declared.isdigit() and (len(declared) > 20 or int(declared) > limit):
        raise BodyTooLarge(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(limit)
    except ClientDisconnect:
        raise MalformedJSON("The client disconnected before the body was complete.") from None
    return bytes(body)


def parse_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON document of at most ``max_depth`` nested arrays/objects, without NaN or Infinity."""
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJSON("The body is not valid UTF-8.") from None
    if _max_nesting(raw) > max_depth:
        raise MalformedJSON(f"The JSON document nests deeper than {max_depth} levels.")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except MalformedJSON:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedJSON(f"The body is not valid JSON: {_short(exc)}") from None
    _check_strings(document)
    return document


async def read_json(request: Request, limit: int = MAX_JSON_BODY, *, empty: Any = ...) -> Any:
    """:func:`read_body` then :func:`parse_json`; an empty body gives ``empty`` when one is given."""
    raw = await read_body(request, limit)
    if not raw.strip() and empty is not ...:
        return empty
    return parse_json(raw)


def _max_nesting(text: str) -> int:
    """How deep ``[``/``{`` nest outside strings; a quick scan done before the (recursive) parser runs."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # cannot nest deeper than that
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_strings(document: Any) -> None:
    """Every string (keys too) must be storable: a lone surrogate (``"\\ud800"``) or a NUL is valid
    JSON, but PostgreSQL text, headers and logs cannot take it."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise MalformedJSON("The JSON document holds a NUL character (\\u0000).")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedJSON("The JSON document holds a lone UTF-16 surrogate (\\uD800-\\uDFFF).") from None


def _refuse_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not a JSON number.")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."
