"""Glance v2 routes under ``<region URL>/image``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from imagehop.region import Region

# Through 2.12, which adds GET /v2/images/{id}/tasks; the highest is CURRENT, the rest SUPPORTED.
API_VERSIONS = [f"v2.{minor}" for minor in range(12, -1, -1)]


def image_routes(region: Region) -> list[BaseRoute]:
    async def versions(request: Request) -> Response:
        # `GET /image/` answers 300 (tempest asserts it); `GET /image/versions` answers 200.
        status = 200 if request.url.path.rstrip("/").endswith("/versions") else 300
        return JSONResponse(versions_document(region.public_url), status_code=status)

    return [
        Route("/", versions, methods=["GET", "HEAD"]),
        Route("/versions", versions, methods=["GET", "HEAD"]),
    ]


def versions_document(region_url: str) -> dict:
    href = f"{region_url}/image/v2/"
    return {
        "versions": [
            {
                "id": version,
                "status": "CURRENT" if index == 0 else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for index, version in enumerate(API_VERSIONS)
        ]
    }
