"""Clouds as every OpenStack tool reads them: ``clouds.yaml`` and ``OS_*`` variables.

openstacksdk's config loader resolves a cloud by name; keystoneauth1 authenticates and resolves
endpoints. Nothing here imports server code: the same calls work against any real cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keystoneauth1.session import Session
from openstack import config as os_config


@dataclass(frozen=True)
class CloudSession:
    name: str
    session: Session
    region_name: str | None
    interface: str

    def catalog(self) -> list[dict[str, Any]]:
        """The service catalog the cloud returned at login, as a list of v3-style entries."""
        access = self.session.auth.get_access(self.session)
        return list(access.service_catalog.catalog)

    def endpoint(self, service_type: str, region: str | None = None) -> str:
        url = self.session.get_endpoint(
            service_type=service_type, region_name=region or self.region_name, interface=self.interface
        )
        if not url:
            raise LookupError(
                f"cloud {self.name} has no {service_type} endpoint in region {region or self.region_name}"
            )
        return url.rstrip("/")


def connect(cloud: str | None = None, config_file: str | None = None) -> CloudSession:
    """Authenticate to ``cloud`` (from clouds.yaml or ``OS_*``) and return a ready session."""
    loader = os_config.OpenStackConfig(config_files=[config_file] if config_file else None)
    region = loader.get_one(cloud=cloud)
    session = region.get_session()
    session.get_token()  # log in now, so a wrong password fails here with a clear error
    return CloudSession(
        name=region.name or cloud or "envvars",
        session=session,
        region_name=region.region_name or None,
        interface=region.config.get("interface", "public"),
    )
