"""Static Large Objects, as Swift 2.38's ``slo`` middleware: manifest PUT, the manifest views, part numbers, delete.

A manifest PUT lists segments: object-backed ones (``path``, optional ``etag``, ``size_bytes``,
``range``) and inline ones (``data``: base64 bytes served as they are). Each object-backed segment
is checked with the caller's own authorisation (``can_read``), exactly as Swift heads each one with
the caller's token; problems come back together, one ``[name, reason]`` each.

What is stored is the JSON Swift stores (``name``, ``bytes``, ``hash``, ``content_type``,
``last_modified``[, ``range``][, ``sub_slo``], or ``data``), so ``?multipart-manifest=get`` gives
the same body and ETag (the MD5 of that JSON) as Swift; the SLO ETag is
``md5(concat(segment etag [":" range ";"] or md5(inline data)))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from imagehop.bodies import MalformedJSON, parse_json
from imagehop.objects.bulk import BulkResult
from imagehop.objects.constraints import SLO_MAX_SEGMENTS, STATUS_TEXT, SwiftError, iso_time
from imagehop.objects.store import NoSuchContainer, NoSuchObject, ObjectInfo, ObjectStore

SLO_KEYS = {"path": {"etag", "size_bytes", "range"}, "data": set()}

# ``can_read(container)``: None if the caller may read objects there, else the status it would get.
CanRead = Callable[[str], int | None]


def in_process(container: str) -> int | None:
    """For the service's own callers (tasks): every container of the account is theirs."""
    return None


@dataclass
class ManifestProblems(Exception):
    """Per-segment errors of a manifest PUT (Swift answers 400 with them listed)."""

    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ValidManifest:
    stored: str  # the JSON Swift stores
    size: int
    etag: str  # the SLO etag


def _b64(value: Any) -> bytes:
    """Swift's strict_b64decode: standard or URL-safe alphabet, padding optional, nothing else."""
    if not isinstance(value, str | bytes):
        raise ValueError(value)
    text = value.decode("ascii") if isinstance(value, bytes) else value
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1 or any(c not in _B64_CHARS for c in stripped):
        raise ValueError(value)
    text = stripped + "=" * (-len(stripped) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(value) from None


_B64_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


def _range(spec: str) -> tuple[int | None, int | None]:
    """One ``bytes=`` range of a segment: (first, last) with None for an open end; ValueError if invalid."""
    first, sep, last = spec.strip().partition("-")
    if not sep or "," in spec:
        raise ValueError(spec)
    start = int(first) if first.strip() else None
    end = int(last) if last.strip() else None
    if (start is None and end is None) or (start is not None and start < 0) or (end is not None and end < 0):
        raise ValueError(spec)
    if start is not None and end is not None and end < start:
        raise ValueError(spec)
    return start, end


def _ranges_for_length(bounds: tuple[int | None, int | None], length: int) -> tuple[int, int] | None:
    """(start, stop) within ``length`` bytes, or None if unsatisfiable (swob's ranges_for_length)."""
    start, end = bounds
    if start is None:  # suffix
        if not end:
            return None
        return max(length - end, 0), length
    if start >= length:
        return None
    return start, length if end is None else min(end + 1, length)


def parse(body: bytes, container: str, name: str) -> list[dict[str, Any]]:
    """Swift's ``parse_and_validate_input``: the manifest's entries, or 400 listing every problem."""
    try:
        entries = parse_json(body)
    except MalformedJSON:
        raise SwiftError(400, "Manifest must be valid JSON.\n", html=True) from None
    if not isinstance(entries, list):
        raise SwiftError(400, "Manifest must be a list.\n", html=True)
    errors: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append(f"Index {index}: not a JSON object")
            continue
        kind = next((key for key in SLO_KEYS if key in entry), None)
        if kind is None:
            errors.append(f"Index {index}: expected keys to include one of 'path' or 'data'")
            continue
        extra = [k for k in entry if k not in SLO_KEYS[kind] | {kind}]
        if extra:
            errors.append(f"Index {index}: extraneous keys {', '.join(json.dumps(k) for k in sorted(extra))}")
            continue
        if kind == "data":
            try:
                data = _b64(entry["data"])
            except ValueError:
                errors.append(f"Index {index}: data must be valid base64")
                continue
            if not data:
                errors.append(f"Index {index}: too small; each segment must be at least 1 byte.")
                continue
            entry["data"] = base64.b64encode(data).decode("ascii")
            continue
        path = entry["path"]
        if not isinstance(path, str):
            errors.append(f'Index {index}: "path" must be a string')
            continue
        if not (entry.get("etag") is None or isinstance(entry["etag"], str)):
            errors.append(f'Index {index}: "etag" must be a string or null (if provided)')
            continue
        if "/" not in path.strip("/"):
            errors.append(
                f"Index {index}: path does not refer to an object. Path must be of the form /container/object."
            )
            continue
        size = entry.get("size_bytes")
        if size is not None:
            try:
                if isinstance(size, bool | float):
                    raise TypeError(size)
                size = int(size)
                entry["size_bytes"] = size
            except (TypeError, ValueError):
                errors.append(f"Index {index}: invalid size_bytes")
                continue
            if size < 1 and index != len(entries) - 1:
                errors.append(f"Index {index}: too small; each segment must be at least 1 byte.")
                continue
        if path.lstrip("/") == f"{container}/{name}":
            errors.append(f"Index {index}: manifest must not include itself as a segment")
            continue
        if entry.get("range"):
            try:
                entry["range"] = _range(str(entry["range"]))
            except ValueError:
                errors.append(f"Index {index}: invalid range")
                continue
            if size is not None and _ranges_for_length(entry["range"], size) is None:
                errors.append(f"Index {index}: unsatisfiable range")
                continue
    if entries and all(isinstance(e, dict) and "data" in e for e in entries):
        errors.append("Inline data segments require at least one object-backed segment.")
    if errors:
        raise SwiftError(400, "".join(e + "\n" for e in errors))
    return entries


def validate(
    store: ObjectStore, account: str, entries: list[dict[str, Any]], can_read: CanRead
) -> tuple[ValidManifest | None, list[tuple[str, str]]]:
    """Head every object-backed segment as the caller; the storable manifest, or the problems."""
    problems: list[tuple[str, str]] = []
    stored: list[dict[str, Any]] = []
    total = 0
    heads: dict[str, ObjectInfo | int] = {}
    for index, entry in enumerate(entries):
        if "data" in entry:
            stored.append({"data": entry["data"]})
            total += len(base64.b64decode(entry["data"]))
            continue
        path = entry["path"]
        if path not in heads:
            heads[path] = _head(store, account, path, can_read)
        segment = heads[path]
        label = quote(path)
        if isinstance(segment, int):
            problems.append((label, f"{segment} {STATUS_TEXT[segment]}"))
            continue
        length = _logical_size(store, segment)
        item: dict[str, Any] = {
            "name": "/" + path.lstrip("/"),
            "bytes": length,
            "hash": segment.etag,
            "content_type": segment.content_type,
            # Swift takes the segment's Last-Modified header: whole seconds, rounded up
            "last_modified": iso_time(math.ceil(segment.last_modified)),
        }
        if entry.get("range"):
            bounds = _ranges_for_length(entry["range"], length)
            if bounds is None:
                problems.append((label, "Unsatisfiable Range"))
            elif bounds != (0, length):
                item["range"] = f"{bounds[0]}-{bounds[1] - 1}"
                length = bounds[1] - bounds[0]
        if length < 1 and index != len(entries) - 1:
            problems.append((label, "Too small; each segment must be at least 1 byte."))
        if entry.get("size_bytes") is not None and entry["size_bytes"] != item["bytes"]:
            problems.append((label, "Size Mismatch"))
        if entry.get("etag") is not None and entry["etag"] != segment.etag:
            problems.append((label, "Etag Mismatch"))
        if segment.kind == "slo":
            item["sub_slo"] = True
        stored.append(item)
        total += length
    if problems:
        return None, problems
    return ValidManifest(json.dumps(stored), total, slo_etag(stored)), []


def _head(store: ObjectStore, account: str, path: str, can_read: CanRead) -> ObjectInfo | int:
    seg_container, _, seg_name = path.lstrip("/").partition("/")
    refused = can_read(seg_container)
    if refused:
        return refused
    try:
        return store.head(account, seg_container, seg_name)
    except (NoSuchObject, NoSuchContainer):
        return 404


def _logical_size(store: ObjectStore, info: ObjectInfo) -> int:
    if info.kind == "dlo":
        return sum(length for _, _, length in store.segments(info))
    return info.size


def slo_etag(stored: list[dict[str, Any]]) -> str:
    md5 = hashlib.md5()
    for item in stored:
        if "data" in item:
            piece = hashlib.md5(base64.b64decode(item["data"])).hexdigest()
        elif item.get("range"):
            piece = f"{item['hash']}:{item['range']};"
        else:
            piece = item["hash"]
        md5.update(piece.encode("ascii"))
    return md5.hexdigest()


def manifest_etag(info: ObjectInfo) -> str:
    """The ETag of the stored manifest (what listings show as ``hash``): the MD5 of its JSON."""
    return hashlib.md5((info.manifest or "[]").encode()).hexdigest()


def put(
    store: ObjectStore,
    account: str,
    container: str,
    name: str,
    entries: list[dict[str, Any]],
    can_read: CanRead,
    *,
    expected_etag: str | None,
    content_type: str,
    meta: dict[str, str],
    delete_at: float | None,
) -> ObjectInfo:
    """Validate (as the caller) and store; :class:`ManifestProblems` or 422 on an ETag mismatch."""
    if sum(1 for e in entries if "path" in e) > SLO_MAX_SEGMENTS:
        raise SwiftError(413, f"Number of object-backed segments must be <= {SLO_MAX_SEGMENTS}", html=True)
    manifest, problems = validate(store, account, entries, can_read)
    if manifest is None:
        raise ManifestProblems(problems)
    if expected_etag and expected_etag.strip('"') != manifest.etag:
        raise SwiftError(422, "")
    store.get_container(account, container)
    return store.put_manifest(
        account,
        container,
        name,
        kind="slo",
        manifest=manifest.stored,
        size=manifest.size,
        etag=manifest.etag,
        content_type=content_type,
        meta=meta,
        delete_at=delete_at,
    )


def manifest_view(info: ObjectInfo, raw: bool) -> bytes:
    """``?multipart-manifest=get``: the stored manifest, or with ``format=raw`` the form a PUT takes."""
    if not raw:
        return (info.manifest or "[]").encode()
    out = []
    for e in json.loads(info.manifest or "[]"):
        if "data" in e:
            out.append({"data": e["data"]})
            continue
        item = {"path": e["name"], "etag": e["hash"], "size_bytes": e["bytes"]}
        if "range" in e:
            item["range"] = e["range"]
        out.append(dict(sorted(item.items())))
    return json.dumps(out).encode()


def part_ranges(store: ObjectStore, info: ObjectInfo) -> list[tuple[int, int]]:
    """(start, length) of each part of an SLO, for ``?part-number=N``."""
    out = []
    pos = 0
    for entry in json.loads(info.manifest or "[]"):
        if "data" in entry:
            length = len(base64.b64decode(entry["data"]))
        elif "range" in entry:
            first, last = (int(x) for x in entry["range"].split("-"))
            length = last - first + 1
        else:
            length = int(entry["bytes"])
        out.append((pos, length))
        pos += length
    return out


def segment_containers(info: ObjectInfo) -> set[str]:
    """The containers an SLO's object-backed segments live in (checked as the caller at GET and DELETE)."""
    return {e["name"].lstrip("/").partition("/")[0] for e in json.loads(info.manifest or "[]") if "name" in e}


def delete(store: ObjectStore, account: str, container: str, name: str, can_delete: CanRead) -> BulkResult:
    """``DELETE ?multipart-manifest=delete``: each segment with the caller's rights, then the manifest."""
    result = BulkResult()
    info = store.head(account, container, name)
    if info.kind == "slo":
        for entry in json.loads(info.manifest or "[]"):
            if "name" not in entry:
                continue
            seg_container, _, seg_name = entry["name"].lstrip("/").partition("/")
            refused = can_delete(seg_container)
            if refused:
                result.fail(quote(entry["name"]), refused)
                continue
            try:
                store.delete_object(account, seg_container, seg_name)
                result.deleted += 1
            except (NoSuchObject, NoSuchContainer):
                result.not_found += 1
    try:
        store.delete_object(account, container, name)
        result.deleted += 1
    except NoSuchObject:
        result.not_found += 1
    if result.errors:
        result.status = 400
    return result
