"""The compute API's versions document and microversion negotiation.

Clients ask for a microversion with ``OpenStack-API-Version: compute X.Y`` (or the older
``X-OpenStack-Nova-API-Version: X.Y``); no header means the minimum, ``latest`` the maximum. The
answer names the version used in both headers, with ``Vary`` on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from imagehop.compute.errors import BadRequest, NotAcceptable

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 47)  # 2.45: createImage answers {"image_id"}; 2.47: the server embeds its flavor
UPDATED = "2013-07-23T11:33:21Z"
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")

Version = tuple[int, int]


def text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def requested(headers: Mapping[str, str]) -> Version:
    """The microversion a request asks for; 400 if malformed, 406 if out of range."""
    value = None
    for item in headers.get(HEADER, "").split(","):
        service, _, ver = item.strip().partition(" ")
        if service.lower() == "compute":
            value = ver.strip()
    if value is None:
        value = headers.get(LEGACY_HEADER)
    if value is None:
        return MIN_VERSION
    if value.lower() == "latest":
        return MAX_VERSION
    match = _VERSION.match(value.strip())
    if not match:
        raise BadRequest(f"API Version String {value} is of invalid format. Must be of format MajorNum.MinorNum.")
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NotAcceptable(
            f"Version {text(version)} is not supported by the API. "
            f"Minimum is {text(MIN_VERSION)} and maximum is {text(MAX_VERSION)}."
        )
    return version


def response_headers(version: Version) -> dict[str, str]:
    return {HEADER: f"compute {text(version)}", LEGACY_HEADER: text(version), "Vary": f"{HEADER}, {LEGACY_HEADER}"}


def version_entry(region_url: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": text(MAX_VERSION),
        "min_version": text(MIN_VERSION),
        "updated": UPDATED,
        "links": [
            {"rel": "self", "href": f"{region_url}/compute/v2.1/"},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }
