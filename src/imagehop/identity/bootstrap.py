"""First-start users and the credentials file that remembers their plaintext secrets.

The database keeps only salted hashes; the operator's copy of the generated passwords and API
keys lives in ``<data-dir>/credentials.json`` (mode 0600), which ``imagehop credentials`` reads.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from imagehop.config import UserSpec
from imagehop.identity.hashing import new_api_key, new_password
from imagehop.identity.service import IdentityService, NewUser

log = logging.getLogger(__name__)

DEMO_TENANT = "10000001"
ALT_TENANT = "10000002"
ADMIN_TENANT = "10000000"

BUILTIN_USERS = (
    ("demo", DEMO_TENANT, ["member"]),
    ("alt", ALT_TENANT, ["member"]),
    ("admin", ADMIN_TENANT, ["admin"]),
)


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "credentials.json"


def read_credentials(data_dir: Path) -> list[NewUser]:
    path = credentials_path(data_dir)
    if not path.exists():
        return []
    return [NewUser(**entry) for entry in json.loads(path.read_text())]


def write_credentials(data_dir: Path, entries: list[NewUser]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = credentials_path(data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump([asdict(e) for e in entries], handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def bootstrap(identity: IdentityService, data_dir: Path, configured: list[UserSpec]) -> list[NewUser]:
    """Make sure the built-in and configured users exist with the credentials on record.

    Idempotent: credentials generated on the first start are reused on every later one, even
    against a fresh database (e.g. a new PostgreSQL URL).
    """
    identity.ensure_roles()
    known = {entry.user: entry for entry in read_credentials(data_dir)}
    wanted = [NewUser(name, tenant, roles) for name, tenant, roles in BUILTIN_USERS] + [
        NewUser(u.name, u.tenant_id, u.roles, u.password, u.api_key) for u in configured
    ]
    # Users added later with `imagehop user create` are recreated too if the database is new.
    wanted += [entry for name, entry in known.items() if name not in {w.user for w in wanted}]
    for spec in wanted:
        previous = known.get(spec.user)
        spec.password = spec.password or (previous.password if previous else None) or new_password()
        spec.api_key = spec.api_key or (previous.api_key if previous else None) or new_api_key()
        if identity.ensure_user(spec) or identity.secrets_match(spec):
            known[spec.user] = spec
        else:
            # The user exists with other secrets (made by another host or process): they are kept,
            # never rotated, and this data dir does not know them.
            known.pop(spec.user, None)
            log.warning("user %s exists with other credentials than this data dir's; they were kept", spec.user)
    write_credentials(data_dir, list(known.values()))
    return list(known.values())


def add_user(identity: IdentityService, data_dir: Path, spec: NewUser) -> NewUser:
    """Create one more user (``imagehop user create``) and record its credentials."""
    spec.password = spec.password or new_password()
    spec.api_key = spec.api_key or new_api_key()
    identity.create_user(spec.user, spec.tenant_id, spec.roles, password=spec.password, api_key=spec.api_key)
    entries = [e for e in read_credentials(data_dir) if e.user != spec.user]
    write_credentials(data_dir, [*entries, spec])
    return spec


def remove_user(identity: IdentityService, data_dir: Path, name: str) -> None:
    identity.delete_user(name)
    write_credentials(data_dir, [e for e in read_credentials(data_dir) if e.user != name])
