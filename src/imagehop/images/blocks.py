"""Block maps of images: rows of ``image_block_maps`` and ``image_blocks`` (see db.py).

An image's block map is stored in the transaction that makes it active, from the content digest's
own pass over the bytes (``formats.BlockMap``), and removed with the image. Functions take a
connection so the service decides transactions.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from imagehop import formats
from imagehop.db import image_block_maps, image_blocks

INSERT_BATCH = 5000  # rows per INSERT statement


def save(conn: Connection, image_id: str, blocks: formats.BlockMap) -> None:
    """Store ``blocks`` as the map of ``image_id`` (replacing any older one)."""
    delete(conn, image_id)
    conn.execute(
        image_block_maps.insert().values(
            image_id=image_id, block_size=formats.BLOCK_SIZE, virtual_size=blocks.virtual_size,
            content_digest=blocks.content_digest, block_count=len(blocks),
        )
    )  # fmt: skip
    batch: list[dict[str, Any]] = []
    for index, sha in blocks.items():
        batch.append({"image_id": image_id, "block_index": index, "sha256": sha})
        if len(batch) == INSERT_BATCH:
            conn.execute(image_blocks.insert(), batch)
            batch = []
    if batch:
        conn.execute(image_blocks.insert(), batch)


def delete(conn: Connection, image_id: str) -> None:
    conn.execute(image_blocks.delete().where(image_blocks.c.image_id == image_id))
    conn.execute(image_block_maps.delete().where(image_block_maps.c.image_id == image_id))


def header(conn: Connection, image_id: str) -> dict[str, Any] | None:
    """Block size, virtual size, content digest and count of non-zero blocks; None: no map."""
    row = conn.execute(sa.select(image_block_maps).where(image_block_maps.c.image_id == image_id)).mappings().first()
    return dict(row) if row is not None else None


def page(conn: Connection, image_id: str, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to ``limit`` (index, sha256) entries with an index greater than ``after``, in order."""
    query = (
        sa.select(image_blocks.c.block_index, image_blocks.c.sha256)
        .where(image_blocks.c.image_id == image_id, image_blocks.c.block_index > after)
        .order_by(image_blocks.c.block_index)
        .limit(limit)
    )
    return [(int(index), bytes(sha)) for index, sha in conn.execute(query)]


def load(conn: Connection, image_id: str) -> formats.BlockMap | None:
    """The whole map of ``image_id`` (None: it has none), checked against its content digest."""
    head = header(conn, image_id)
    if head is None:
        return None
    query = (
        sa.select(image_blocks.c.block_index, image_blocks.c.sha256)
        .where(image_blocks.c.image_id == image_id)
        .order_by(image_blocks.c.block_index)
    )
    items = ((int(index), bytes(sha)) for index, sha in conn.execute(query))
    blocks = formats.BlockMap.from_items(int(head["virtual_size"]), items, head["content_digest"])
    blocks.check()
    return blocks
