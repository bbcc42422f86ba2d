"""Account and container listings: query parameters in, text / JSON / XML out (Swift's formats)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

from imagehop.objects.constraints import LISTING_LIMIT, TRUE_VALUES, SwiftError, iso_time
from imagehop.objects.store import ContainerInfo, ObjectInfo, Subdir

CONTENT_TYPES = {
    "plain": "text/plain; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
}


def listing_params(query: Mapping[str, str]) -> dict:
    """``prefix``, ``delimiter``, ``marker``, ``end_marker``, ``limit`` (≤ 10000), ``reverse``, ``path``."""
    try:
        limit = int(query.get("limit", LISTING_LIMIT))
    except ValueError:
        raise SwiftError(412, "Value of limit must be a positive integer") from None
    if limit < 0:
        raise SwiftError(412, "Value of limit must be a positive integer")
    if limit > LISTING_LIMIT:
        raise SwiftError(412, f"Maximum limit is {LISTING_LIMIT}")
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    if "path" in query:  # legacy: the direct children of path/
        path = query["path"]
        prefix, delimiter = (path.rstrip("/") + "/" if path else ""), "/"
    return {
        "prefix": prefix,
        "delimiter": delimiter,
        "marker": query.get("marker", ""),
        "end_marker": query.get("end_marker", ""),
        "limit": limit,
        "reverse": query.get("reverse", "").lower() in TRUE_VALUES,
    }


def choose_format(query: Mapping[str, str], accept: str | None) -> str:
    """``?format=`` wins over ``Accept``; unknown formats are plain text, as in Swift."""
    fmt = query.get("format", "").lower()
    if fmt:
        return fmt if fmt in ("json", "xml") else "plain"
    accept = (accept or "").lower()
    best, best_q = "plain", -1.0
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    raise SwiftError(400, "Invalid Accept header") from None
        kind = {
            "application/json": "json",
            "application/xml": "xml",
            "text/xml": "xml",
            "text/plain": "plain",
            "*/*": "plain",
            "text/*": "plain",
            "application/*": "json",
        }.get(media.strip())
        if kind and q > best_q:
            best, best_q = kind, q
    if accept and best_q == 0:
        raise SwiftError(406, "")
    return best


def render_containers(entries: list, fmt: str, account: str) -> bytes:
    if fmt == "json":
        return json.dumps(
            [
                {"subdir": e.name}
                if isinstance(e, Subdir)
                else {
                    "name": e.name,
                    "count": e.object_count,
                    "bytes": e.bytes_used,
                    "last_modified": iso_time(e.created_at),
                }
                for e in entries
            ]
        ).encode()
    if fmt == "xml":
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<account name={quoteattr(account)}>"]
        for e in entries:
            if isinstance(e, Subdir):
                parts.append(f"<subdir name={quoteattr(e.name)}><name>{escape(e.name)}</name></subdir>")
            else:
                assert isinstance(e, ContainerInfo)
                parts.append(
                    f"<container><name>{escape(e.name)}</name><count>{e.object_count}</count>"
                    f"<bytes>{e.bytes_used}</bytes><last_modified>{iso_time(e.created_at)}</last_modified></container>"
                )
        parts.append("</account>")
        return "".join(parts).encode()
    return "".join(e.name + "\n" for e in entries).encode()


def object_entry(e: ObjectInfo) -> dict:
    entry = {
        "hash": e.etag,
        "last_modified": iso_time(e.last_modified),
        "bytes": e.size,
        "name": e.name,
        "content_type": e.content_type,
    }
    if e.kind == "slo":
        entry["slo_etag"] = f'"{e.etag}"'
    return entry


def render_objects(entries: list, fmt: str, container: str) -> bytes:
    if fmt == "json":
        return json.dumps([{"subdir": e.name} if isinstance(e, Subdir) else object_entry(e) for e in entries]).encode()
    if fmt == "xml":
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<container name={quoteattr(container)}>"]
        for e in entries:
            if isinstance(e, Subdir):
                parts.append(f"<subdir name={quoteattr(e.name)}><name>{escape(e.name)}</name></subdir>")
            else:
                fields = object_entry(e)
                parts.append(
                    "<object>"
                    + "".join(
                        f"<{k}>{escape(str(fields[k]))}</{k}>"
                        for k in ("name", "hash", "bytes", "content_type", "last_modified")
                    )
                    + "</object>"
                )
        parts.append("</container>")
        return "".join(parts).encode()
    return "".join(e.name + "\n" for e in entries).encode()
