"""Account and container listings: query parameters in, text / JSON / XML out (Swift's formats)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from xml.etree.ElementTree import Element, SubElement, tostring

from imagehop.objects.constraints import LISTING_LIMIT, TRUE_VALUES, SwiftError, iso_time
from imagehop.objects.store import ContainerInfo, ObjectInfo, Subdir

POLICY = "Policy-0"

CONTENT_TYPES = {
    "plain": "text/plain; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
}


def listing_params(query: Mapping[str, str], *, path_allowed: bool = False) -> dict:
    """``prefix``, ``delimiter``, ``marker``, ``end_marker``, ``limit``, ``reverse`` (and, for containers, ``path``).

    As Swift: a ``limit`` that is not all digits is ignored (the default applies); above 10000 is 412.
    """
    given = query.get("limit", "")
    limit = LISTING_LIMIT
    if given.isdigit() and given.isascii():
        limit = int(given)
        if limit > LISTING_LIMIT:
            raise SwiftError(412, f"Maximum limit is {LISTING_LIMIT}", html=True)
    for name in ("prefix", "delimiter", "marker", "end_marker", "path"):
        if "\x00" in query.get(name, ""):  # as Swift's get_param (check_utf8); PostgreSQL cannot take NUL
            raise SwiftError(400, f'"{name}" parameter not valid UTF-8')
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    params = {
        "prefix": prefix,
        "delimiter": delimiter,
        "marker": query.get("marker", ""),
        "end_marker": query.get("end_marker", ""),
        "limit": limit,
        "reverse": query.get("reverse", "").lower() in TRUE_VALUES,
    }
    if path_allowed and "path" in query:  # legacy: the objects directly under path/, no subdirs
        path = query["path"]
        params.update(prefix=(path.rstrip("/") + "/" if path else ""), delimiter="/", path=True)
    return params


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


def _xml(document: Element) -> bytes:
    """As Swift's listing_formats: ElementTree's serialisation after an XML declaration."""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(document, encoding="unicode").encode()


def container_entry(e: ContainerInfo) -> dict:
    return {
        "name": e.name,
        "count": e.object_count,
        "bytes": e.bytes_used,
        "last_modified": iso_time(e.modified_at),
        "storage_policy": POLICY,
    }


def render_containers(entries: list, fmt: str, account: str) -> bytes:
    records = [{"subdir": e.name} if isinstance(e, Subdir) else container_entry(e) for e in entries]
    if fmt == "json":
        return json.dumps(records).encode()
    if fmt == "xml":
        doc = Element("account", name=account)
        doc.text = "\n"
        for record in records:
            if "subdir" in record:
                sub = SubElement(doc, "subdir", name=record["subdir"])
            else:
                sub = SubElement(doc, "container")
                for key in ("name", "count", "bytes", "last_modified", "storage_policy"):
                    SubElement(sub, key).text = str(record[key])
            sub.tail = "\n"
        return _xml(doc)
    return "".join(e.name + "\n" for e in entries).encode()


def object_entry(e: ObjectInfo) -> dict:
    entry = {
        "bytes": e.size,
        "hash": hashlib.md5((e.manifest or "[]").encode()).hexdigest() if e.kind == "slo" else e.etag,
        "name": e.name,
        "content_type": e.content_type,
        "last_modified": iso_time(e.last_modified),
    }
    if e.kind == "slo":
        entry["slo_etag"] = f'"{e.etag}"'
    return entry


def render_objects(entries: list, fmt: str, container: str) -> bytes:
    records = [{"subdir": e.name} if isinstance(e, Subdir) else object_entry(e) for e in entries]
    if fmt == "json":
        return json.dumps(records).encode()
    if fmt == "xml":
        doc = Element("container", name=container)
        for record in records:
            if "subdir" in record:
                sub = SubElement(doc, "subdir", name=record["subdir"])
                SubElement(sub, "name").text = record["subdir"]
            else:
                sub = SubElement(doc, "object")
                for key in ("name", "hash", "bytes", "content_type", "last_modified"):
                    SubElement(sub, key).text = str(record[key])
        return _xml(doc)
    return "".join(e.name + "\n" for e in entries).encode()
