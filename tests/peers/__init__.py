"""Real peers the tests and benchmarks run beside imagehop: Keystone + Glance, Swift, an S3 store.

Each peer is built once into its own virtualenv under ``peers_dir()`` (an ignored folder, reused by
later runs) and started on loopback ports by the test suite or the bench, then stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def peers_dir() -> Path:
    """Where peers are built: ``$IMAGEHOP_PEERS_DIR``, or ``.peers/`` at the top of the checkout."""
    path = Path(os.environ.get("IMAGEHOP_PEERS_DIR") or REPO / ".peers")
    path.mkdir(parents=True, exist_ok=True)
    return path
