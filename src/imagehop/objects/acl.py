"""Who may do what to an account or container: ownership, roles and container ACLs.

The owner of ``AUTH_<tenant>`` (and any admin) may do everything there, except that a caller with
only the ``reader`` role may not write. Other tenants get what the container's ``X-Container-Read``
/ ``X-Container-Write`` grant, in keystoneauth's element syntax: ``<project_id>:<user_id or name>``,
``<project_id>:*``, ``*:<user>``, ``*:*``; ``.r:*`` lets anyone read objects and ``.rlistings``
lets them list the container too.
"""

from __future__ import annotations

from imagehop.identity.caller import Caller
from imagehop.objects.constraints import SwiftError

READ_ACL = "x-container-read"
WRITE_ACL = "x-container-write"


def account_of(caller: Caller) -> str:
    return f"AUTH_{caller.tenant_id}"


def owns(caller: Caller | None, account: str) -> bool:
    return caller is not None and (caller.is_admin or account == account_of(caller))


def check_owner(caller: Caller | None, account: str, write: bool) -> None:
    """Account-level and container-level (metadata, create, delete) operations: owners only."""
    if caller is None:
        raise SwiftError(401, "")
    if not owns(caller, account):
        raise SwiftError(403, "")
    if write and not caller.can_write:
        raise SwiftError(403, "")


def check_container_access(
    caller: Caller | None, account: str, meta: dict[str, str], *, write: bool, listing: bool = False
) -> None:
    """Object reads/writes and container listings: owners, or whoever the container's ACL names."""
    if owns(caller, account):
        if write and caller is not None and not caller.can_write:
            raise SwiftError(403, "")
        return
    acl = meta.get(WRITE_ACL if write else READ_ACL, "")
    if allowed(acl, caller, listing=listing) and (not write or caller is None or caller.can_write):
        return
    raise SwiftError(401 if caller is None else 403, "")


def allowed(acl: str, caller: Caller | None, *, listing: bool) -> bool:
    for element in (e.strip() for e in acl.split(",")):
        if not element:
            continue
        if element.startswith(".r:"):
            if element[3:] == "*" and not listing:
                return True
            continue
        if element == ".rlistings":
            if listing and ".r:*" in acl:
                return True
            continue
        if caller is None:
            continue
        project, _, user = element.partition(":")
        user = user or "*"
        if project in ("*", caller.tenant_id) and user in ("*", caller.user_id, caller.user_name):
            return True
    return False
