"""Move one (large) object from one Swift endpoint to another: streaming, parallel, verified, resumable.

No local staging: each segment is read from the source with a ranged GET and written to the target
with a PUT in the same stream. Segments are the source's own when it is a large object (their
ETags are known, so every PUT carries its ETag and the target verifies the bytes before it stores
them); a plain object is cut into byte ranges, and each range's MD5, computed while sending, is
checked against the ETag the target computed. The target gets a Static Large Object manifest (or a
DLO one where the target has no SLO), whose size and ETag are checked last.

Finished segments are recorded in the journal as soon as the target has them, so a re-run after a
crash or Ctrl-C sends only what is missing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from imagehop.transfer.journal import Journal
from imagehop.transfer.swift import ObjectHead, Segment, SwiftClient, SwiftError

DEFAULT_SEGMENT_SIZE = 256 << 20  # an imagehop export's segments: each is sent whole, with its ETag
MAX_SEGMENT_SIZE = 5 << 30  # Swift's single-object limit
MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments: an SLO of more is refused
ATTEMPTS = 3


class MoveError(Exception):
    """The move could not finish; the message says why and what to do next."""


@dataclass(frozen=True)
class Piece:
    """What one target segment is made of: a byte range of the source object."""

    idx: int
    offset: int
    size: int
    etag: str | None  # known in advance when the piece is a whole source segment


@dataclass(frozen=True)
class MoveResult:
    size: int
    etag: str  # the target's ETag for the whole object (quoted SLO ETag without quotes)
    segments: int
    segments_sent: int  # by this run; the rest were done by an earlier one
    bytes_sent: int
    verified_by: str  # how every segment was checked


def plan_pieces(head: ObjectHead, source_segments: list[Segment] | None, segment_size: int) -> list[Piece]:
    """One piece per source segment when their ETags are known and sizes sane (the target checks
    each against its ETag), else byte ranges of ``segment_size``. A source segment larger than
    ``segment_size`` is cut into ranges too, so that the pieces move in parallel: an export's
    1 GiB segments would otherwise each go down one connection, hashed on one core."""
    segment_size = max(1 << 20, min(segment_size, MAX_SEGMENT_SIZE), -(-head.size // (MAX_SEGMENTS << 20)) << 20)
    if source_segments and all(0 < s.size <= MAX_SEGMENT_SIZE and s.etag for s in source_segments):
        pieces: list[Piece] = []
        offset = 0
        for seg in source_segments:
            if seg.size <= segment_size:
                pieces.append(Piece(len(pieces), offset, seg.size, seg.etag))
            else:
                for start in range(0, seg.size, segment_size):
                    pieces.append(Piece(len(pieces), offset + start, min(segment_size, seg.size - start), None))
            offset += seg.size
        if offset == head.size:
            return pieces
    count = max(1, -(-head.size // segment_size))
    return [Piece(i, i * segment_size, min(segment_size, head.size - i * segment_size), None) for i in range(count)]


def job_key(src: SwiftClient, src_container: str, src_name: str, head: ObjectHead, dst: SwiftClient,
            dst_container: str, dst_name: str) -> str:  # fmt: skip
    what = "\n".join(
        [src.storage_url, src_container, src_name, head.etag, str(head.size), dst.storage_url, dst_container, dst_name]
    )
    return "move:" + hashlib.sha256(what.encode()).hexdigest()[:32]


def move_object(
    src: SwiftClient,
    src_container: str,
    src_name: str,
    dst: SwiftClient,
    dst_container: str,
    dst_name: str,
    *,
    journal: Journal,
    parallel: int = 4,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    progress: Callable[[int], None] | None = None,
    headers: dict[str, str] | None = None,
) -> MoveResult:
    """Copy ``src_container/src_name`` to ``dst_container/dst_name`` as a large object."""
    head = src.head_object(src_container, src_name)
    if head is None:
        raise MoveError(f"the source object {src_container}/{src_name} does not exist in {src.region}")
    pieces = plan_pieces(head, src.large_object_segments(src_container, src_name, head), segment_size)
    key = job_key(src, src_container, src_name, head, dst, dst_container, dst_name)
    journal.open_job(key)
    seg_container = f"{dst_container}_segments"
    seg_prefix = f"{dst_name}/imagehop/{head.etag}/{head.size}/"
    dst.ensure_container(dst_container)
    dst.ensure_container(seg_container)

    done = _confirm_done(dst, seg_container, seg_prefix, pieces, journal, key)
    if progress:
        progress(sum(p.size for p in pieces if p.idx in done))
    todo = [p for p in pieces if p.idx not in done]
    sent = _send_all(
        src, src_container, src_name, dst, seg_container, seg_prefix, todo, journal, key, parallel, progress
    )
    done.update(sent)

    segments = [Segment(seg_container, f"{seg_prefix}{p.idx:08d}", p.size, done[p.idx]) for p in pieces]
    # the object's own metadata goes with it (an export's sealed hashes spare the import its hashing)
    manifest_headers = {"Content-Type": head.content_type, **head.meta, **(headers or {})}
    target_info = dst.info()
    if "slo" in target_info or not target_info:
        etag = dst.put_slo_manifest(dst_container, dst_name, segments, manifest_headers)
        expected = hashlib.md5("".join(s.etag or "" for s in segments).encode()).hexdigest()
        if etag and etag != expected:
            raise MoveError(f"the target's manifest ETag {etag} is not the one of the segments sent ({expected})")
    else:
        dst.put_dlo_manifest(dst_container, dst_name, f"{seg_container}/{seg_prefix}", manifest_headers)
        etag = ""
    final = dst.head_object(dst_container, dst_name)
    if final is None or final.size != head.size:
        got = "nothing" if final is None else f"{final.size} bytes"
        raise MoveError(f"the target object {dst_container}/{dst_name} has {got}, expected {head.size} bytes")
    journal.finish_job(key)
    return MoveResult(
        size=head.size,
        etag=final.etag or etag,
        segments=len(pieces),
        segments_sent=len(sent),
        bytes_sent=sum(p.size for p in todo),
        verified_by="source segment ETags checked by the target"
        if all(p.etag for p in pieces)
        else "MD5 of each segment, computed while sending, equal to the target's ETag"
        if not any(p.etag for p in pieces)
        else "source segment ETags checked by the target; MD5 of each cut piece, computed while sending, equal"
        " to the target's ETag",
    )


def _confirm_done(
    dst: SwiftClient, seg_container: str, seg_prefix: str, pieces: list[Piece], journal: Journal, key: str
) -> dict[int, str]:
    """Segments an earlier run finished, still present on the target with the right size."""
    recorded = journal.segments(key)
    if not recorded:
        return {}
    listing = {e["name"]: e for e in dst.list_objects(seg_container, seg_prefix) if "name" in e}
    done: dict[int, str] = {}
    for piece in pieces:
        record = recorded.get(piece.idx)
        entry = listing.get(f"{seg_prefix}{piece.idx:08d}")
        if record is None:
            continue
        if entry is None:
            # Listings may lag behind writes: ask for the object itself before sending it again.
            head = dst.head_object(seg_container, f"{seg_prefix}{piece.idx:08d}")
            entry = {"bytes": head.size, "hash": head.etag} if head else None
        if entry and int(entry["bytes"]) == piece.size and entry["hash"] == record.etag:
            done[piece.idx] = record.etag
        else:
            journal.forget_segment(key, piece.idx)
    return done


def _send_all(
    src: SwiftClient,
    src_container: str,
    src_name: str,
    dst: SwiftClient,
    seg_container: str,
    seg_prefix: str,
    pieces: list[Piece],
    journal: Journal,
    key: str,
    parallel: int,
    progress: Callable[[int], None] | None,
) -> dict[int, str]:
    sent: dict[int, str] = {}
    stop = threading.Event()

    def one(piece: Piece) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            if stop.is_set():
                return
            moved = 0
            # A piece with its source ETag is checked by the target (422 on mismatch); only a piece cut
            # out of a bigger segment needs the MD5 of what was sent, to compare with the target's ETag.
            md5 = None if piece.etag else hashlib.md5()

            def sent_chunk(chunk: memoryview, md5: hashlib._Hash | None = md5) -> None:
                nonlocal moved
                if stop.is_set():
                    raise MoveError("stopped")
                if md5 is not None:
                    md5.update(chunk)
                moved += len(chunk)
                if progress:
                    progress(len(chunk))

            try:
                with src.open_range(src_container, src_name, piece.offset, piece.size) as read_into:
                    etag = dst.put_from(
                        seg_container,
                        f"{seg_prefix}{piece.idx:08d}",
                        read_into,
                        length=piece.size,
                        etag=piece.etag,
                        headers={"Content-Type": "application/octet-stream"},
                        on_chunk=sent_chunk,
                    )
            except SwiftError as exc:
                if progress and moved:
                    progress(-moved)
                # 401: the token ran out on the way; the client dropped it, the next attempt gets a new one
                retryable = exc.status in (0, 401, 408, 409, 422, 429, 500, 502, 503, 504)
                if attempt == ATTEMPTS or not retryable:
                    what = "the bytes did not match the ETag (422)" if exc.status == 422 else str(exc)
                    raise MoveError(
                        f"segment {piece.idx} ({piece.size} bytes at offset {piece.offset}) failed after "
                        f"{attempt} attempt(s): {what}"
                    ) from exc
                continue
            expected = piece.etag or md5.hexdigest()  # type: ignore[union-attr]
            if etag != expected:
                if progress:
                    progress(-moved)
                if attempt == ATTEMPTS:
                    what = "the source segment's ETag" if piece.etag else "the MD5 of the bytes sent"
                    raise MoveError(f"segment {piece.idx}: the target's ETag {etag} != {what} {expected}")
                continue
            journal.segment_done(key, piece.idx, etag, piece.size, attempt)
            sent[piece.idx] = etag
            return

    if not pieces:
        return sent
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="imagehop-move") as pool:
        futures = [pool.submit(one, p) for p in pieces]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failure = next((f.exception() for f in finished if f.exception()), None)
        if failure is not None:
            stop.set()
            for future in futures:
                future.cancel()
            raise failure
    return sent
