"""What a task runner needs from its region: the object engine, the image service, the settings."""

from __future__ import annotations

from dataclasses import dataclass

from imagehop.config import TaskSettings
from imagehop.identity.caller import Caller
from imagehop.images.data import ImageData
from imagehop.images.service import ImageService
from imagehop.objects.store import ObjectStore
from imagehop.region import Region


@dataclass
class TaskContext:
    region: Region
    objects: ObjectStore
    images: ImageService
    settings: TaskSettings

    @classmethod
    def for_region(cls, region: Region) -> TaskContext:
        images = ImageService(region.engine, ImageData(region), region.images)
        return cls(region, images.data.objects, images, region.tasks)


def swift_account(tenant_id: str) -> str:
    """The tenant's object storage account, as the Swift API names it."""
    return f"AUTH_{tenant_id}"


def task_caller(task: dict) -> Caller:
    """The task's creator as a caller of the image service (a member of the owning tenant)."""
    return Caller(user_id=task.get("user_id") or "", user_name="", tenant_id=task["owner"],
                  roles=frozenset({"member"}), token_expires_at=0.0)  # fmt: skip
