"""Incremental copies, the client's side: pick a *base* in the target and move only the blocks it lacks.

imagehop keeps a block map of every image ((index, SHA-256) of each non-zero 2 MiB block, served at
``GET /v2/images/{id}/x-imagehop-blocks``). When the target is imagehop (it advertises the
``imagehop-delta`` import method), the copy looks in the target for images with the coordinating
property (or the one ``--base`` names), reads their block maps and the source's (no image bytes are
read), and takes the one with the most blocks in common. Then:

- ``glance-download`` (regions of one deployment): the pull request names the base and its content
  digest; the target region copies the common blocks from it and fetches the others itself.
- ``stream`` (any imagehop target, e.g. another cloud): this client reads only the changed blocks
  from the source (``Range``), checks each against the source's block map, and stages a delta
  stream (``formats/delta.py``) for the target's ``imagehop-delta`` import.

Either way the target checks every block that arrives and the content digest of the result before
the image becomes active; a base deleted or changed meanwhile makes the pull fetch everything, and
the delta import fail, after which the copy streams the image in full.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from imagehop import formats
from imagehop.formats import delta as delta_stream
from imagehop.transfer import stream as direct
from imagehop.transfer.glance import GlanceClient

BLOCK = formats.BLOCK_SIZE
DELTA_METHOD = "imagehop-delta"
BASE_KEY = "x-imagehop-base"  # the glance-download extension naming the base
MAX_CANDIDATES = 20  # target images whose block maps are compared, newest first


class BaseError(Exception):
    """``--base`` names an image that cannot be a base; the message says why."""


@dataclass
class BasePlan:
    """The base chosen in the target, and what the copy will reuse and move."""

    image_id: str
    name: str
    content_digest: str
    blocks_total: int  # non-zero blocks of the source image
    blocks_reused: int  # of those, held by the base
    bytes_to_move: int  # the bytes of the other blocks
    image_size: int
    candidates: int = 1  # target images compared
    source_blocks: list[tuple[int, bytes]] = field(default_factory=list, repr=False)
    base_hashes: set[bytes] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id, "name": self.name, "content_digest": self.content_digest,
            "blocks_total": self.blocks_total, "blocks_reused": self.blocks_reused,
            "bytes_to_move": self.bytes_to_move, "image_size": self.image_size, "candidates": self.candidates,
        }  # fmt: skip

    @property
    def spec(self) -> dict[str, str]:
        return {"image_id": self.image_id, "content_digest": self.content_digest}


def unsupported(image: dict[str, Any], source_label: str, target_label: str, offers_delta: bool) -> str:
    """Why this image cannot be copied incrementally to the target ("" when it can be)."""
    if not offers_delta:
        return (
            f"full copy: {target_label} is not imagehop (it offers no {DELTA_METHOD} import), so every byte of the "
            "image moves"
        )
    if image.get("disk_format") != "raw":
        return f"full copy: incremental copies build raw images and the source is {image.get('disk_format')}"
    if not image.get("imagehop.content_digest"):
        return (
            f"full copy: {source_label} publishes no content digest of the image (only imagehop does), so no block "
            "of it can be matched with a base"
        )
    missing = [name for name, ok in (("checksum", image.get("checksum")),
                                     ("SHA-512 hash", image.get("os_hash_algo") == "sha512")) if not ok]  # fmt: skip
    if missing:
        return f"full copy: the source image has no {' or '.join(missing)} to verify a delta against"
    return ""


def plan_base(
    source: GlanceClient, target: GlanceClient, image: dict[str, Any], coordinating: tuple[str, str],
    wanted: str | None = None,
) -> tuple[BasePlan | None, str]:  # fmt: skip
    """The best base in the target and why, or ``(None, why a full copy)``. Reads block maps only.

    Candidates: ``wanted`` (an id or a name; :class:`BaseError` if it cannot be used), else the
    target's active raw images with the coordinating property that the caller can read the block
    map of (its own, or shared with it: a public image of another project is never a base).
    """
    mapped = source.block_map(image["id"])
    if mapped is None:
        return None, f"full copy: {source.region} publishes no block map of image {image['id']}"
    head, items = mapped
    size = int(image.get("size") or 0)
    digest = image.get("imagehop.content_digest")
    if int(head.get("virtual_size") or -1) != size or head.get("content_digest") != digest:
        return None, "full copy: the source's block map does not describe its raw bytes"
    if wanted:
        candidates = [_named_base(target, wanted)]
    else:
        key, value = coordinating
        found = [c for c in target.find_images(**{key: value}) if c.get("status") == "active"]
        found.sort(key=lambda c: str(c.get("created_at") or ""), reverse=True)
        candidates = [c for c in found if c.get("disk_format") == "raw"][:MAX_CANDIDATES]
        if not candidates:
            return None, f"full copy: no active raw image with {key}={value} in {target.region} to build on"
    best: BasePlan | None = None
    compared = 0
    for candidate in candidates:
        theirs = target.block_map(candidate["id"])
        if theirs is None:
            if wanted:
                raise BaseError(
                    f"--base {wanted}: its block map is not readable to you (only your own images, or ones shared "
                    "with you, can be a base)"
                )
            continue
        compared += 1
        hashes = {sha for _, sha in theirs[1]}
        reused = sum(1 for _, sha in items if sha in hashes)
        if best is None or reused > best.blocks_reused:
            moving = sum(min(BLOCK, size - index * BLOCK) for index, sha in items if sha not in hashes)
            best = BasePlan(
                candidate["id"], str(candidate.get("name") or ""), str(theirs[0].get("content_digest") or ""),
                len(items), reused, moving, size, source_blocks=items, base_hashes=hashes,
            )  # fmt: skip
    if best is None:
        return None, "full copy: none of the candidate bases has a block map you may read"
    best.candidates = compared
    if best.blocks_reused == 0 and items:
        return None, f"full copy: no block in common with {compared} candidate base(s) in {target.region}"
    return best, (
        f"incremental: base {best.image_id} ({best.name}) holds {best.blocks_reused} of {best.blocks_total} blocks; "
        f"{best.bytes_to_move:,} of {size:,} bytes will move"
    )


def _named_base(target: GlanceClient, wanted: str) -> dict[str, Any]:
    image = target.get_image(wanted)
    if image is None:
        matches = target.find_images(name=wanted)
        if len(matches) != 1:
            raise BaseError(
                f"--base {wanted}: {'no' if not matches else len(matches)} image(s) with that id or name visible to "
                f"you in {target.region}" + (": name one by id" if matches else "")
            )
        image = matches[0]
    if image.get("status") != "active" or image.get("disk_format") != "raw":
        state = f"{image.get('status')} {image.get('disk_format')}"
        raise BaseError(f"--base {wanted}: it is {state}; a base is an active raw image")
    return image


# --- the delta stream ----------------------------------------------------------------------------


@dataclass
class Sent:
    bytes: int = 0  # bytes of blocks read from the source and sent
    blocks: int = 0
    reread: int = 0  # blocks read twice because the first read did not match the source's map


def delta_length(plan: BasePlan) -> int:
    """The length of the delta stream for ``plan`` (its Content-Length)."""
    size = plan.image_size
    return delta_stream.encoded_size(
        (index, None if sha in plan.base_hashes else min(BLOCK, size - index * BLOCK))
        for index, sha in plan.source_blocks
    )


def delta_records(source: GlanceClient, image_id: str, plan: BasePlan, sent: Sent) -> Iterator[delta_stream.Record]:
    """The records of the delta stream: the base's blocks by hash, the others read from the source
    with one Range request per run of consecutive changed blocks, each checked against the source's
    block map (a block that does not match is read once more, then the copy stops)."""
    items, base, size = plan.source_blocks, plan.base_hashes, plan.image_size
    i = 0
    while i < len(items):
        index, sha = items[i]
        if sha in base:
            yield index, sha, None
            i += 1
            continue
        j = i
        while j + 1 < len(items) and items[j + 1][0] == items[j][0] + 1 and items[j + 1][1] not in base:
            j += 1
        start, end = index * BLOCK, min(size, (items[j][0] + 1) * BLOCK)
        with direct.read_image(source, image_id, start, end - start) as chunks:
            reader = delta_stream.Exact(chunks)
            for at, want in items[i : j + 1]:
                length = min(BLOCK, size - at * BLOCK)
                block = reader.read(length)
                if not _matches(block, want):
                    sent.reread += 1
                    with direct.read_image(source, image_id, at * BLOCK, length) as again:
                        block = b"".join(again)
                    if not _matches(block, want):
                        raise direct.StreamError(
                            f"block {at} of image {image_id} in {source.region} does not match the image's block map "
                            "(read twice): the source's data may be damaged"
                        )
                sent.blocks += 1
                sent.bytes += length
                yield at, want, block
        i = j + 1


def _matches(block: bytes, sha: bytes) -> bool:
    padded = block if len(block) == BLOCK else block + bytes(BLOCK - len(block))
    return hashlib.sha256(padded).digest() == sha


def delta_import(plan: BasePlan, image: dict[str, Any]) -> dict[str, Any]:
    """The ``imagehop-delta`` import method body: the base, and what the result must be."""
    return {
        "name": DELTA_METHOD, "base_image_id": plan.image_id, "base_content_digest": plan.content_digest,
        "content_digest": image["imagehop.content_digest"], "size": int(image["size"]),
        "checksum": image["checksum"], "os_hash_value": image["os_hash_value"],
    }  # fmt: skip
