"""What one region's services share: its name, public URL, database and data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from imagehop.identity.service import IdentityService


@dataclass
class Region:
    name: str
    public_url: str  # without a trailing slash
    engine: Engine
    data_dir: Path
    identity: IdentityService  # in-process: tokens are validated without an HTTP round trip
