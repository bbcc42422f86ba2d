"""Image sharing: the owner adds projects as members; each member accepts or rejects.

Rules (Glance's): only a ``shared`` image has members; only the owner adds or removes them (200 on
create, not 201); only the member itself (or an admin) changes its status; the owner sees every
member, a member sees only itself, anyone else gets 404.
"""

from __future__ import annotations

from typing import Any

from imagehop.identity.caller import Caller
from imagehop.images import store
from imagehop.images.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from imagehop.images.schemas import MEMBER_STATUSES
from imagehop.images.service import ImageService, check_can_write, now

Record = dict[str, Any]
MAX_MEMBERS = 128


def _is_owner(caller: Caller, image: Record) -> bool:
    return caller.is_admin or image["owner"] == caller.tenant_id


def _check_shared(image: Record) -> None:
    """Glance's member repository exists for shared images only: any member call on another is a 403."""
    if image["visibility"] != "shared":
        raise Forbidden(f"Only shared images have members; image {image['id']} is {image['visibility']}.")


def create(service: ImageService, caller: Caller, image_id: str, body: Any) -> Record:
    member_id = body.get("member") if isinstance(body, dict) else None
    if not isinstance(member_id, str) or not member_id.strip() or len(member_id) > 64:
        raise BadRequest('Request body must be {"member": "<project id>"}.')
    with service.engine.begin() as conn:
        image = service._visible(conn, caller, image_id, for_update=True)
        if not _is_owner(caller, image):
            raise Forbidden("Only the image owner can add members.")
        check_can_write(caller, image)
        if image["visibility"] != "shared":
            raise Forbidden(f"Only shared images have members; image {image_id} is {image['visibility']}.")
        if store.get_member(conn, image_id, member_id) is not None:
            raise Conflict(f"Member {member_id} already exists for image {image_id}.")
        if store.count_members(conn, image_id) >= MAX_MEMBERS:
            raise TooLarge(f"Maximum number of image members ({MAX_MEMBERS}) exceeded.")
        moment = now()
        row = {
            "image_id": image_id,
            "member_id": member_id,
            "status": "pending",
            "created_at": moment,
            "updated_at": moment,
        }
        store.insert_member(conn, row)
        return row


def list_members(service: ImageService, caller: Caller, image_id: str) -> list[Record]:
    with service.engine.connect() as conn:
        image = service._visible(conn, caller, image_id)
        _check_shared(image)
        members = store.list_members(conn, image_id)
    if _is_owner(caller, image):
        return members
    return [m for m in members if m["member_id"] == caller.tenant_id]


def get(service: ImageService, caller: Caller, image_id: str, member_id: str) -> Record:
    with service.engine.connect() as conn:
        image = service._visible(conn, caller, image_id)
        _check_shared(image)
        member = store.get_member(conn, image_id, member_id)
    if member is None or not (_is_owner(caller, image) or member_id == caller.tenant_id):
        raise NotFound(f"Member {member_id} not found for image {image_id}.")
    return member


def update(service: ImageService, caller: Caller, image_id: str, member_id: str, body: Any) -> Record:
    status = body.get("status") if isinstance(body, dict) else None
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid status {status!r}: it must be one of {', '.join(MEMBER_STATUSES)}.")
    with service.engine.begin() as conn:
        image = service._visible(conn, caller, image_id)
        _check_shared(image)
        member = store.get_member(conn, image_id, member_id)
        if member is None or not (_is_owner(caller, image) or member_id == caller.tenant_id):
            raise NotFound(f"Member {member_id} not found for image {image_id}.")
        if member_id != caller.tenant_id and not caller.is_admin:
            raise Forbidden("Only the member can accept or reject an image shared with it.")
        if not caller.can_write:
            raise Forbidden("You are not authorized to change image members (read-only role).")
        moment = now()
        store.update_member(conn, image_id, member_id, status, moment)
        return {**member, "status": status, "updated_at": moment}


def delete(service: ImageService, caller: Caller, image_id: str, member_id: str) -> None:
    with service.engine.begin() as conn:
        image = service._visible(conn, caller, image_id)
        _check_shared(image)
        member = store.get_member(conn, image_id, member_id)
        if member is None or not (_is_owner(caller, image) or member_id == caller.tenant_id):
            raise NotFound(f"Member {member_id} not found for image {image_id}.")
        if not _is_owner(caller, image):
            raise Forbidden("Only the image owner can remove members.")
        check_can_write(caller, image)
        store.delete_member(conn, image_id, member_id)
