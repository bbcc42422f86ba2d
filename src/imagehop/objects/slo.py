"""Static Large Objects: manifest validation and storage, the manifest views, and delete.

A manifest PUT lists segments (``path``, optional ``etag``, ``size_bytes`` and ``range``); each is
checked against the stored segment and problems come back together, one ``[name, reason]`` each.
The SLO ETag is ``md5(concat(segment etag [":" range ";"]))``, given to clients quoted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from imagehop.bodies import MalformedJSON, parse_json
from imagehop.objects.bulk import BulkResult
from imagehop.objects.constraints import SLO_MAX_SEGMENTS, SwiftError, iso_time
from imagehop.objects.store import NoSuchContainer, NoSuchObject, ObjectInfo, ObjectStore

ALLOWED_KEYS = {"path", "etag", "size_bytes", "range"}


@dataclass
class ManifestProblems(Exception):
    """Per-segment errors of a manifest PUT (Swift answers 400 with them listed)."""

    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ValidManifest:
    stored: str  # JSON of the stored form (name/hash/bytes/content_type/last_modified[/range])
    size: int
    etag: str


def parse(body: bytes) -> list[dict[str, Any]]:
    try:
        entries = parse_json(body)
    except MalformedJSON:
        raise SwiftError(400, "Manifest must be valid JSON.\n") from None
    if not isinstance(entries, list):
        raise SwiftError(400, "Manifest must be a list.\n")
    if len(entries) > SLO_MAX_SEGMENTS:
        raise SwiftError(413, f"Number of object-backed segments must be <= {SLO_MAX_SEGMENTS}\n")
    if not entries:
        raise SwiftError(400, "Manifest must have at least one segment.\n")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise SwiftError(400, f"Index {index}: not a JSON object\n")
        extra = set(entry) - ALLOWED_KEYS
        if extra:
            raise SwiftError(400, f"Index {index}: extraneous keys {', '.join(sorted(extra))}\n")
        path = entry.get("path")
        if not isinstance(path, str) or "/" not in path.lstrip("/") or path.lstrip("/").startswith("/"):
            raise SwiftError(
                400, f"Index {index}: path does not refer to an object. Path must be of the form /container/object.\n"
            )
        size = entry.get("size_bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            try:
                entry["size_bytes"] = int(size)
            except (TypeError, ValueError):
                raise SwiftError(400, f"Index {index}: invalid size_bytes\n") from None
        etag = entry.get("etag")
        if etag is not None and not isinstance(etag, str):
            raise SwiftError(400, f"Index {index}: invalid etag\n")
    return entries


def _range(spec: str, size: int) -> tuple[int, int] | None:
    """(start, length) of ``"a-b"``, ``"a-"`` or ``"-n"`` within ``size`` bytes; None if unsatisfiable."""
    first, sep, last = spec.partition("-")
    if not sep:
        raise ValueError(spec)
    if first == "":
        n = int(last)
        start, end = max(size - n, 0), size - 1
    else:
        start = int(first)
        end = int(last) if last else size - 1
    end = min(end, size - 1)
    if start > end or start >= size:
        return None
    return start, end - start + 1


def validate(store: ObjectStore, account: str, container: str, name: str, entries: list[dict]) -> ValidManifest:
    """Check every segment against what is stored; raise :class:`ManifestProblems` with all errors."""
    problems: list[tuple[str, str]] = []
    stored: list[dict[str, Any]] = []
    md5 = hashlib.md5()
    total = 0
    for index, entry in enumerate(entries):
        path = "/" + entry["path"].lstrip("/")
        seg_container, _, seg_name = path[1:].partition("/")
        label = quote(path)
        if (seg_container, seg_name) == (container, name):
            problems.append((label, "Manifest cannot reference itself"))
            continue
        try:
            segment: ObjectInfo = store.head(account, seg_container, seg_name)
        except (NoSuchObject, NoSuchContainer):
            problems.append((label, "404 Not Found"))
            continue
        if entry.get("etag") is not None and entry["etag"].strip('"') != segment.etag:
            problems.append((label, "Etag Mismatch"))
        if entry.get("size_bytes") is not None and int(entry["size_bytes"]) != segment.size:
            problems.append((label, "Size Mismatch"))
        start, length = 0, segment.size
        piece = segment.etag
        if entry.get("range"):
            try:
                bounds = _range(str(entry["range"]), segment.size)
            except ValueError:
                problems.append((label, "Invalid Range"))
                continue
            if bounds is None:
                problems.append((label, "Unsatisfiable Range"))
                continue
            start, length = bounds
            piece = f"{segment.etag}:{start}-{start + length - 1};"
        if length < 1 and index != len(entries) - 1:
            problems.append((label, "Too small; each segment must be at least 1 byte."))
        item: dict[str, Any] = {
            "name": path,
            "hash": segment.etag,
            "bytes": segment.size,
            "content_type": segment.content_type,
            "last_modified": iso_time(segment.last_modified),
        }
        if entry.get("range"):
            item["range"] = f"{start}-{start + length - 1}"
        if segment.kind == "slo":
            item["sub_slo"] = True
        stored.append(item)
        md5.update(piece.encode())
        total += length
    if problems:
        raise ManifestProblems(problems)
    return ValidManifest(json.dumps(stored), total, md5.hexdigest())


def put(
    store: ObjectStore,
    account: str,
    container: str,
    name: str,
    body: bytes,
    *,
    expected_etag: str | None,
    content_type: str,
    meta: dict[str, str],
    delete_at: float | None,
) -> ObjectInfo:
    entries = parse(body)
    manifest = validate(store, account, container, name, entries)
    if expected_etag and expected_etag.strip('"') != manifest.etag:
        raise SwiftError(422, "Etag on the manifest does not match the SLO etag")
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
    """``?multipart-manifest=get``: the stored manifest, or with ``format=raw`` the PUT form."""
    entries = json.loads(info.manifest or "[]")
    if raw:
        entries = [
            {
                "path": e["name"],
                "etag": e["hash"],
                "size_bytes": e["bytes"],
                **({"range": e["range"]} if "range" in e else {}),
            }
            for e in entries
        ]
    return json.dumps(entries).encode()


def delete(store: ObjectStore, account: str, container: str, name: str) -> BulkResult:
    """``DELETE ?multipart-manifest=delete``: the segments, then the manifest."""
    result = BulkResult()
    info = store.head(account, container, name)
    if info.kind == "slo":
        for entry in json.loads(info.manifest or "[]"):
            seg_container, _, seg_name = entry["name"].lstrip("/").partition("/")
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
    return result
