"""Incremental copies, the region's side: a new image built from a local *base* image plus only the
blocks the base does not hold.

Two ways in (``imports.py``):

- ``glance-download`` with ``x-imagehop-base`` ``{"image_id", "content_digest"}`` (between regions
  of one deployment): the region reads the remote image's block map, takes every block whose hash
  the base holds from the base, and fetches only the others from the remote region with ``Range``
  requests. A base that is gone, changed (another content digest), or unreadable by then makes the
  import fetch every block: a full copy, said in the task's result.
- ``imagehop-delta`` (from any client, e.g. between clouds): the client stages a *delta stream* and
  names the base and what the finished image must be (content digest, size, checksum,
  os_hash_value). Without a usable base it fails, and the client sends the image in full.

The delta stream (the body of ``PUT /v2/images/{id}/stage``) is defined in ``formats/delta.py``.

Verification: every block that arrives is hashed and must match its record (and, for a pull, the
remote block map); a reused block is the base block with that hash in the base's stored block map
(blobs are immutable and the map was made from the same bytes). The content digest of the result,
made from these hashes, must equal the requested one before the image becomes active. Equal content
digest and size of raw disks mean identical bytes, so the new image's ``checksum`` and
``os_hash_value`` are the source's.

Storage: reused blocks are taken *by reference*, on every blob store (``file``, ``s3``, ``swift``):
the new image's blob holds only the blocks that arrived, and its extent map names the runs of the
base's blob(s) for the others (``ObjectWriter.copy_from``; the blob that actually holds a run, so an
image built on an image built on a base refers to the original bytes, never to a chain). No reused
byte is read, written or stored again, so the region's storage grows by the changed blocks only.
Before the first block, the build pins the base's blobs (``ObjectWriter.pin``: a reference count
per blob, held by the unfinished write's intent row, then by the committed blob): deleting the base
during the build or at any time later leaves the bytes this image reads in place, and they go with
the last blob that refers to them; deleting this image frees only its own blob (and drops its
references). A crash mid-build leaves an intent that housekeeping discards with its pins, and no
image row. A base deleted before the pin is not used: its blocks are read while they still can be,
else fetched from the source (pull), or the import fails (delta stream) and the client sends the
image in full. Zero blocks stay holes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from imagehop import formats
from imagehop.images import blocks
from imagehop.images.data import ACCOUNT, CONTAINER, ImageData, StoredData
from imagehop.images.errors import ImageError
from imagehop.objects.store import StoreError

BLOCK = formats.BLOCK_SIZE
BASE_KEY = "x-imagehop-base"  # the glance-download method's extension


class BlockMismatch(ImageError):
    """A block that arrived does not have the hash its record (or the remote map) says."""


@dataclass
class Base:
    """A usable base image of this region: its data key and block map."""

    image_id: str
    key: str
    blocks: formats.BlockMap
    by_hash: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_hash = self.blocks.by_hash()


@dataclass
class Built:
    stored: StoredData
    reused: int = 0  # blocks taken from the base
    sent: int = 0  # blocks that arrived (fetched or staged)
    bytes_sent: int = 0
    fallback: str = ""  # why the base could not be used (then everything was fetched)

    def result(self, base_id: str | None) -> dict[str, Any]:
        return {
            "base": base_id if not self.fallback else None, "blocks_reused": self.reused, "blocks_sent": self.sent,
            "bytes_sent": self.bytes_sent, "fallback": self.fallback or None,
        }  # fmt: skip


def base_problem(conn: Any, base_id: str, digest: str) -> tuple[Base | None, str]:
    """The base if it is still usable (active, raw, with a block map giving ``digest``); else why not."""
    from imagehop.images import store

    image = store.get(conn, base_id)
    if image is None:
        return None, f"the base image {base_id} was deleted"
    if image["status"] != "active" or not image.get("data_key"):
        return None, f"the base image {base_id} is {image['status']}"
    if image.get("disk_format") != "raw":
        return None, f"the base image {base_id} is {image.get('disk_format')}, not raw"
    head = blocks.header(conn, base_id)
    if head is None:
        return None, f"the base image {base_id} has no block map"
    if head["content_digest"] != digest:
        return None, f"the base image {base_id} changed (content digest {head['content_digest']}, expected {digest})"
    loaded = blocks.load(conn, base_id)
    assert loaded is not None
    return Base(base_id, str(image["data_key"]), loaded), ""


def build(
    data: ImageData,
    key: str,
    size: int,
    records: Iterator[tuple[int, bytes, bytes | None]],
    base: Base | None,
    known: tuple[str, str],
    fallback: Callable[[int, int], bytes] | None = None,
    progress: Callable[[int], object] | None = None,
) -> Built:
    """Write the raw image ``key`` of ``size`` bytes from ``records``: (index, sha256, bytes or None
    for "the base block with this hash"), in increasing index order. ``fallback(index, length)``
    gives a block the base cannot (gone mid-copy); without one that is an error. ``known``: the
    (MD5, SHA-512) the result must have, taken once the caller checked the content digest."""
    data._container()
    writer = data.objects.writer(ACCOUNT, CONTAINER, key, known_etag=known[0])
    base_reader = None
    built = Built(StoredData(key, 0, "", "", None, None))
    items: list[tuple[int, bytes]] = []
    count = -(-size // BLOCK) if size else 0
    position = 0
    try:
        if base is not None:
            try:
                base_reader = data.objects.open(ACCOUNT, CONTAINER, base.key)
            except StoreError:
                built.fallback, base = f"the base image {base.image_id} was deleted", None
        by_ref = base is not None and base_reader is not None and writer.can_copy_from(base_reader)
        if by_ref:
            try:  # the base's bytes stay for this image whatever happens to the base from now on
                writer.pin(base_reader)  # type: ignore[arg-type]
            except StoreError:  # deleted just now: its blocks are read (while they can be) or fetched
                by_ref = False
        for index, sha, block in records:
            if not (0 <= index < count) or (items and index <= items[-1][0]):
                raise ImageError(f"Block {index} is out of order or outside a disk of {size} bytes.")
            offset = index * BLOCK
            length = min(BLOCK, size - offset)
            if block is None and by_ref and base is not None and sha in base.by_hash:
                at = base.by_hash[sha]  # by reference: the new image's extent map names the base's bytes
                n = min(length, base.blocks.virtual_size - at * BLOCK)
                writer.skip(offset - position)
                writer.copy_from(base_reader, at * BLOCK, n)  # type: ignore[arg-type]
                writer.skip(length - n)  # (a shorter last block of the base: its zero padding)
                position = offset + length
                built.reused += 1
                items.append((index, sha))
                if progress is not None:
                    progress(position)
                continue
            if block is None:
                block = _from_base(base, base_reader, sha, length, built)
                if block is None:
                    if fallback is None:
                        raise ImageError(built.fallback or f"The base holds no block with the hash of block {index}.")
                    block = fallback(index, length)
                    _check(index, block, sha)
                    built.sent, built.bytes_sent = built.sent + 1, built.bytes_sent + len(block)
                else:
                    built.reused += 1
            else:
                if len(block) != length:
                    raise ImageError(f"Block {index} is {len(block)} bytes, expected {length}.")
                _check(index, block, sha)
                built.sent, built.bytes_sent = built.sent + 1, built.bytes_sent + len(block)
            writer.skip(offset - position)
            writer.write(block)
            position = offset + length
            items.append((index, sha))
            if progress is not None:
                progress(position)
        writer.skip(size - position)
        block_map = formats.BlockMap.from_items(size, items)
        info = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        if base_reader is not None:
            base_reader.close()
    built.stored = StoredData(key, info.size, info.etag, known[1], size, block_map.content_digest, block_map)
    return built


def _from_base(base: Base | None, reader: Any, sha: bytes, length: int, built: Built) -> bytes | None:
    """The bytes of the base block with hash ``sha`` cut to ``length``; None when the base has none
    (or cannot be read any more: then ``built.fallback`` says why and the base is not used again)."""
    if base is None or reader is None or built.fallback:
        return None
    at = base.by_hash.get(sha)
    if at is None:
        return None
    try:
        piece = reader.pread(at * BLOCK, min(BLOCK, base.blocks.virtual_size - at * BLOCK))
    except (StoreError, OSError):
        built.fallback = f"the base image {base.image_id} could not be read any more (deleted during the copy)"
        return None
    if len(piece) < length:
        piece += bytes(length - len(piece))
    return piece[:length]


def matches(block: bytes, sha: bytes) -> bool:
    """Whether ``block`` (zero-padded to 2 MiB, as the content digest hashes it) has SHA-256 ``sha``."""
    padded = block if len(block) == BLOCK else block + bytes(BLOCK - len(block))
    return hashlib.sha256(padded).digest() == sha


def _check(index: int, block: bytes, sha: bytes) -> None:
    if not matches(block, sha):
        raise BlockMismatch(f"Block {index} does not match its SHA-256: it was corrupted on the way.")
