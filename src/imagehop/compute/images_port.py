"""Every call compute makes into the image service, in one place.

Booting reads an image (its record, then its virtual disk); ``createImage`` makes an image and
writes its bytes through the image service's own upload path, so checksum, ``os_hash_value``,
``virtual_size`` and the content digest are computed exactly as for an upload. If the image
service's Python API changes, this module is the one to change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from imagehop import formats
from imagehop.identity.caller import Caller
from imagehop.images import data as image_data
from imagehop.images.errors import ImageError, NotFound
from imagehop.images.service import CONTENT_DIGEST, ImageService
from imagehop.region import Region

Record = dict[str, Any]

__all__ = ["CONTENT_DIGEST", "ImageError", "ImagesPort"]


class ImagesPort:
    def __init__(self, region: Region) -> None:
        self.data = image_data.ImageData(region)
        self.service = ImageService(region.engine, self.data, region.images)

    def get(self, caller: Caller, image_id: str) -> Record | None:
        """The image if ``caller`` may see it, else None."""
        try:
            return self.service.get(caller, image_id)
        except NotFound:
            return None

    def list(self, caller: Caller, params: list[tuple[str, str]]) -> tuple[list[Record], bool]:
        """One page of images the caller sees (Glance filters and paging), and whether it is full."""
        return self.service.list(caller, params)

    @contextlib.contextmanager
    def open_disk(self, image: Record) -> Iterator[formats.VirtualDisk]:
        """The image's virtual disk; reads go to the stored object, holes are never read."""
        fmt = image["disk_format"] if image["disk_format"] in formats.FORMATS else "raw"
        with self.data.objects.open(image_data.ACCOUNT, image_data.CONTAINER, image["data_key"]) as reader:
            yield formats.open_disk(reader, fmt)

    def create(self, caller: Caller, body: Record) -> Record:
        """A new image record (``queued``); Glance's rules apply to ``body``."""
        return self.service.create(caller, body)

    def store_disk(self, caller: Caller, image_id: str, disk: formats.VirtualDisk) -> None:
        """Write the image's bytes from a virtual disk (queued → saving → active); blocking."""
        self.service.store_disk(caller, image_id, disk)

    def delete(self, caller: Caller, image_id: str) -> None:
        with contextlib.suppress(ImageError):
            self.service.delete(caller, image_id)
