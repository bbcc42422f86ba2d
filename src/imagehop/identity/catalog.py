"""The service catalog: which endpoints each region offers a tenant, in v2.0 and v3 shapes.

Service names are Rackspace's (``cloudImages``, ``cloudFiles``, ``cloudServersOpenStack``) so that
tools configured for Rackspace (``compute_service_name: cloudServersOpenStack``) work unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RegionEndpoint:
    name: str
    url: str  # the region's public base URL, without a trailing slash


@dataclass(frozen=True)
class Service:
    type: str
    name: str
    path: str  # appended to the region URL; {tenant} is replaced by the tenant id


SERVICES = (
    Service("image", "cloudImages", "/image"),
    Service("object-store", "cloudFiles", "/v1/AUTH_{tenant}"),
    Service("compute", "cloudServersOpenStack", "/compute/v2.1/{tenant}"),
)


@dataclass(frozen=True)
class Catalog:
    identity_url: str
    regions: tuple[RegionEndpoint, ...]

    @property
    def default_region(self) -> str:
        return self.regions[0].name

    def _urls(self, tenant_id: str) -> list[tuple[Service, RegionEndpoint, str]]:
        return [
            (service, region, region.url + service.path.format(tenant=tenant_id))
            for service in SERVICES
            for region in self.regions
        ]

    def v2(self, tenant_id: str) -> list[dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for service, region, url in self._urls(tenant_id):
            entry = entries.setdefault(
                service.type, {"name": service.name, "type": service.type, "endpoints": [], "endpoints_links": []}
            )
            entry["endpoints"].append(
                {
                    "id": _endpoint_id(region.name, service.type, "v2"),
                    "region": region.name,
                    "tenantId": tenant_id,
                    "publicURL": url,
                    "internalURL": url,
                }
            )
        entries["identity"] = {
            "name": "keystone",
            "type": "identity",
            "endpoints": [
                {
                    "id": _endpoint_id(r.name, "identity", "v2"),
                    "region": r.name,
                    "publicURL": f"{self.identity_url}/v2.0",
                    "internalURL": f"{self.identity_url}/v2.0",
                    "adminURL": f"{self.identity_url}/v2.0",
                }
                for r in self.regions
            ],
            "endpoints_links": [],
        }
        return list(entries.values())

    def v3(self, tenant_id: str) -> list[dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for service, region, url in self._urls(tenant_id):
            entry = entries.setdefault(
                service.type,
                {"id": _service_id(service.type), "name": service.name, "type": service.type, "endpoints": []},
            )
            for interface in ("public", "internal"):
                entry["endpoints"].append(_v3_endpoint(region.name, service.type, interface, url))
        entries["identity"] = {
            "id": _service_id("identity"),
            "name": "keystone",
            "type": "identity",
            "endpoints": [
                _v3_endpoint(r.name, "identity", interface, f"{self.identity_url}/v3")
                for r in self.regions
                for interface in ("public", "internal", "admin")
            ],
        }
        return list(entries.values())

    # --- the same endpoints as the v3 admin API lists them (``openstack endpoint list``) -------

    def services(self) -> list[dict[str, Any]]:
        """Every service: ``{"id", "name", "type"}``."""
        return [{"id": _service_id(s.type), "name": s.name, "type": s.type} for s in (*SERVICES, IDENTITY)]

    def endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint with its service id; per-tenant URLs carry Keystone's ``$(project_id)s`` template."""
        entries = []
        for service in SERVICES:
            for region in self.regions:
                url = region.url + service.path.format(tenant=PROJECT_TEMPLATE)
                for interface in ("public", "internal"):
                    entry = _v3_endpoint(region.name, service.type, interface, url)
                    entries.append(dict(entry, service_id=_service_id(service.type)))
        for region in self.regions:
            for interface in ("public", "internal", "admin"):
                entry = _v3_endpoint(region.name, "identity", interface, f"{self.identity_url}/v3")
                entries.append(dict(entry, service_id=_service_id("identity")))
        return entries


PROJECT_TEMPLATE = "$(project_id)s"
IDENTITY = Service("identity", "keystone", "")


def _v3_endpoint(region: str, service_type: str, interface: str, url: str) -> dict[str, Any]:
    return {
        "id": _endpoint_id(region, service_type, interface),
        "interface": interface,
        "region": region,
        "region_id": region,
        "url": url,
    }


def _endpoint_id(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


def _service_id(service_type: str) -> str:
    return hashlib.sha1(f"service/{service_type}".encode()).hexdigest()
