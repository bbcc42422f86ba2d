"""Who may do what to an account or container: roles, the account's ACL and container ACLs.

As Swift's keystoneauth (and tempauth's account ACLs):

- A user of the project with an **operator role** (``admin``, ``member``, and the configured
  ``[objects] operator_roles``) owns ``AUTH_<project>``: everything there. A user with the
  ``ResellerAdmin`` role (keystoneauth's ``reseller_admin_role``) owns every account; so does an admin
  of the admin project (imagehop's own rule: keystoneauth gives that admin its own account only).
- A user with a **reader role** (``reader`` and ``[objects] reader_roles``, as keystoneauth's
  ``project_reader_roles``) reads the whole account and changes nothing.
- A user of the project with neither gets 403 on everything unless an ACL grants access.
- ``X-Account-Access-Control`` (JSON: ``admin``, ``read-write``, ``read-only`` lists) grants other
  users the account: ``admin`` as an owner, ``read-write`` every container and object (not the
  account's metadata), ``read-only`` reading them.
- ``X-Container-Read`` / ``X-Container-Write`` grant one container, in keystoneauth's element syntax:
  ``<project>:<user>`` where each is an id, a name or ``*`` (``<project_id>:*``, ``*:<user_id>``, ``*:*``);
  a bare element is a role name, granting the users of the account's own project that hold it; ``.r:*``
  lets anyone read objects and ``.rlistings`` lets them list the container too.
- Only owners see a container's ACLs and TempURL keys (Swift's ``swift_owner_headers``).

Rackspace Cloud Files' roles map onto these: ``object-store:admin`` is an operator role and
``object-store:observer`` a reader role by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from imagehop.identity.caller import Caller
from imagehop.objects.constraints import SwiftError

READ_ACL = "x-container-read"
WRITE_ACL = "x-container-write"
ACCOUNT_ACL = "x-account-access-control"
ACCOUNT_ACL_KEYS = ("admin", "read-write", "read-only")

DEFAULT_OPERATOR_ROLES = ("admin", "member", "swiftoperator", "object-store:admin")
DEFAULT_READER_ROLES = ("reader", "object-store:observer")
RESELLER_ADMIN_ROLE = "reselleradmin"  # keystoneauth's reseller_admin_role (ResellerAdmin), compared lower-case
_roles = {"operator": frozenset(DEFAULT_OPERATOR_ROLES), "reader": frozenset(DEFAULT_READER_ROLES)}


def configure(operator_roles: Iterable[str] = (), reader_roles: Iterable[str] = ()) -> None:
    """Add the configured role names to the built-in ones (``[objects]`` settings)."""
    _roles["operator"] = frozenset(DEFAULT_OPERATOR_ROLES) | frozenset(operator_roles)
    _roles["reader"] = frozenset(DEFAULT_READER_ROLES) | frozenset(reader_roles)


def account_of(caller: Caller) -> str:
    return f"AUTH_{caller.tenant_id}"


def _is_admin_project(caller: Caller) -> bool:
    from imagehop.identity.bootstrap import ADMIN_TENANT

    return caller.tenant_id == ADMIN_TENANT


def owns(caller: Caller | None, account: str, grants: dict | None = None) -> bool:
    """May do everything in ``account``: an operator of its project, a reseller admin, or an ACL admin."""
    if caller is None:
        return False
    if account == account_of(caller) and caller.roles & _roles["operator"]:
        return True
    if caller.is_admin and _is_admin_project(caller):
        return True
    if any(role.lower() == RESELLER_ADMIN_ROLE for role in caller.roles):
        return True
    return _granted(grants, "admin", caller)


def reads_account(caller: Caller | None, account: str, grants: dict | None = None) -> bool:
    """May read everything in ``account`` (a reader role of its project, or an account ACL)."""
    if caller is None:
        return False
    if account == account_of(caller) and caller.roles & _roles["reader"]:
        return True
    return any(_granted(grants, key, caller) for key in ACCOUNT_ACL_KEYS)


def writes_containers(caller: Caller | None, grants: dict | None) -> bool:
    return caller is not None and (_granted(grants, "read-write", caller) or _granted(grants, "admin", caller))


def check_owner(caller: Caller | None, account: str, write: bool, grants: dict | None = None) -> None:
    """Account-level and container-level (metadata, create, delete) operations."""
    if caller is None:
        raise SwiftError(401, "")
    if owns(caller, account, grants):
        return
    if not write and reads_account(caller, account, grants):
        return
    raise SwiftError(403, "")


def is_operator(caller: Caller | None, account: str) -> bool:
    """An operator of the account's own project (no need to read the account's ACL)."""
    return caller is not None and account == account_of(caller) and bool(caller.roles & _roles["operator"])


def check_container_access(
    caller: Caller | None,
    account: str,
    meta: dict[str, str],
    *,
    write: bool,
    listing: bool = False,
    grants: dict | None = None,
) -> None:
    """Object reads/writes and container listings: owners, account grants, or the container's ACL."""
    if owns(caller, account, grants):
        return
    if write and writes_containers(caller, grants):
        return
    if not write and reads_account(caller, account, grants):
        return
    acl = meta.get(WRITE_ACL if write else READ_ACL, "")
    if allowed(acl, caller, listing=listing, account=account):
        return
    raise SwiftError(401 if caller is None else 403, "")


def allowed(acl: str, caller: Caller | None, *, listing: bool, account: str = "") -> bool:
    """Whether a container ACL lets ``caller`` in, as keystoneauth reads it (``account``: the container's)."""
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
        project, colon, user = element.partition(":")
        if not colon:  # a role name: only for the users of the account's own project
            if account == account_of(caller) and element.lower() in {role.lower() for role in caller.roles}:
                return True
            continue
        projects = ("*", caller.tenant_id, caller.tenant_name) if caller.tenant_name else ("*", caller.tenant_id)
        if project in projects and user in ("*", caller.user_id, caller.user_name):
            return True
    return False


def _granted(grants: dict | None, key: str, caller: Caller) -> bool:
    if not grants:
        return False
    for entry in grants.get(key, ()):
        project, sep, user = entry.partition(":")
        if not sep and project in (caller.tenant_id, caller.user_id):  # a project id, or a user id alone
            return True
        if sep and project in ("*", caller.tenant_id) and user in ("*", caller.user_id, caller.user_name):
            return True
    return False


def parse_account_acl(value: str) -> dict | None:
    """``X-Account-Access-Control`` as stored (normalised JSON); 400 if malformed, in Swift 2.38's words
    (tempauth's, which the swift CLI shows). Empty: remove."""
    if not value.strip():
        return None
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    error = None
    if not isinstance(data, dict):
        error = f"Syntax error in input ({value!r})"
    else:
        for key in data:
            if key not in ACCOUNT_ACL_KEYS:
                error = f"Key {json.dumps(key)} not recognized"
                break
        for key in ACCOUNT_ACL_KEYS:
            if error is None and key in data:
                if not isinstance(data[key], list):
                    error = f"Value for key {json.dumps(key)} must be a list"
                elif not all(isinstance(e, str) for e in data[key]):
                    error = f"Elements of {json.dumps(key)} list must be strings"
    if error is not None:
        raise SwiftError(400, f"X-Account-Access-Control invalid: {error}\n\nInput: {value}\n",
                         content_type="text/plain; charset=UTF-8")  # fmt: skip
    return {k: v for k, v in data.items() if v}


def grants_of(meta: dict[str, str]) -> dict | None:
    value = meta.get(ACCOUNT_ACL)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None
