"""Dynamic Large Objects: a manifest names ``<container>/<prefix>``; GET concatenates the listing."""

from __future__ import annotations

import hashlib

from imagehop.objects.constraints import SwiftError
from imagehop.objects.store import ObjectInfo, ObjectStore

FORMAT_ERROR = "X-Object-Manifest must be in the format container/prefix"


def parse_manifest_header(value: str) -> str:
    """The stored ``container/prefix`` of an ``X-Object-Manifest`` header, or 400."""
    container, sep, prefix = value.partition("/")
    if not sep or not container or not prefix or prefix.startswith("/") or "?" in value or "&" in value:
        raise SwiftError(400, FORMAT_ERROR, html=True)
    return value  # stored as given, as Swift; resolved through unquote() when read


def totals(store: ObjectStore, manifest: ObjectInfo) -> tuple[int, str]:
    """(total size, quoted-less ETag = md5 of the segments' ETags) of a DLO."""
    md5 = hashlib.md5()
    size = 0
    for segment, _, length in store.segments(manifest):
        assert isinstance(segment, ObjectInfo)
        # The listing's hash, as Swift's dlo takes it (an SLO segment lists the MD5 of its manifest).
        etag = hashlib.md5((segment.manifest or "[]").encode()).hexdigest() if segment.kind == "slo" else segment.etag
        md5.update(etag.encode())
        size += length
    return size, md5.hexdigest()
