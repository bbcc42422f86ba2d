"""``PATCH /v2/images/{id}`` bodies → a list of :class:`Change`, or a 400.

Two media types: ``application/openstack-images-v2.1-json-patch`` (RFC 6902 subset:
``{"op": "add", "path": "/k", "value": v}``) and the deprecated
``application/openstack-images-v2.0-json-patch`` (``{"add": "/k", "value": v}``, used by tempest).
Only single-token pointers are valid: Glance images are flat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from imagehop.images.errors import BadRequest, UnsupportedMediaType

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"
ACCEPT_PATCH = f"{V20}, {V21}"
OPERATIONS = ("add", "remove", "replace")
_MISSING = object()


@dataclass(frozen=True)
class Change:
    op: str
    key: str
    value: Any
    draft: int  # 10 for the 2.1 media type, 4 for 2.0: "add" on an existing property differs


def media_draft(content_type: str | None) -> int:
    """The JSON-patch draft a PATCH content type selects, or 415."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == V21:
        return 10
    if media == V20:
        return 4
    raise UnsupportedMediaType(
        f"Unsupported Content-Type {content_type or '(none)'}; use {V21}.", headers={"Accept-Patch": ACCEPT_PATCH}
    )


def parse(body: Any, draft: int) -> list[Change]:
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    return [_change(item, draft) for item in body]


def _change(item: Any, draft: int) -> Change:
    if not isinstance(item, dict):
        raise BadRequest("Operations must be JSON objects.")
    if draft == 10:
        op = item.get("op", _MISSING)
        if op is _MISSING:
            raise BadRequest("Unable to find 'op' in JSON Schema change")
        if op not in OPERATIONS:
            raise BadRequest(f"Invalid operation: `{op}`. It must be one of the following: {', '.join(OPERATIONS)}.")
        path = item.get("path", _MISSING)
        if path is _MISSING:
            raise BadRequest("Unable to find 'path' in JSON Schema change")
    else:
        present = [op for op in OPERATIONS if op in item]
        if len(present) != 1:
            raise BadRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".')
        op = present[0]
        path = item[op]
    value = item.get("value", _MISSING)
    if op in ("add", "replace") and value is _MISSING:
        raise BadRequest(f'Operation "{op}" requires a member named "value".')
    return Change(op, _pointer(path), None if value is _MISSING else value, draft)


def _pointer(path: Any) -> str:
    """The single key a restricted JSON pointer names (``/a~1b`` → ``a/b``), checked and decoded as
    Glance does: leading slashes dropped, each token stripped of spaces."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadRequest(f'Pointer `{path}` does not start with "/".')
    if re.search(r"/\s*?/", path[1:]):
        raise BadRequest(f'Pointer `{path}` contains adjacent "/".')
    if len(path) > 1 and path.endswith("/"):
        raise BadRequest(f'Pointer `{path}` end with "/".')
    if re.search("~[^01]", path) or path.endswith("~"):
        raise BadRequest(f'Pointer `{path}` contains "~" not part of a recognized escape sequence.')
    tokens = [part.replace("~1", "/").replace("~0", "~").strip() for part in path.lstrip("/").split("/")]
    if len(tokens) > 1:
        if tokens[0] == "locations":
            return "locations"
        raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(tokens)}'")
    return tokens[0]
