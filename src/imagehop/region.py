"""What one region's services share: its name, public URL, database and data directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from imagehop.config import ImageSettings, TaskSettings
from imagehop.identity.service import IdentityService
from imagehop.objects.store import ObjectStore


@dataclass
class Region:
    name: str
    public_url: str  # without a trailing slash
    engine: Engine
    data_dir: Path
    identity: IdentityService  # in-process: tokens are validated without an HTTP round trip
    objects: ObjectStore  # the region's object storage engine, used in-process by every service
    tasks: TaskSettings = field(default_factory=TaskSettings)  # the [tasks] settings
    images: ImageSettings = field(default_factory=ImageSettings)  # the [images] settings
    # seals the hashes an export hands to an import (tasks/sealed.py); empty: nothing is sealed or trusted
    integrity_key: bytes = b""
