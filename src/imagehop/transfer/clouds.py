"""Clouds as every OpenStack tool reads them: ``clouds.yaml`` and ``OS_*`` variables.

openstacksdk's config loader resolves a cloud by name (Keystone v3 with project names or ids and
domains, v2.0 with Rackspace's API key, application credentials, ``insecure``/``cacert``);
keystoneauth1 authenticates and resolves endpoints. Nothing here imports server code: the same
calls work against any real cloud.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import ssl
import sys
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1.session import Session


def _sdk_package_on_first_use() -> None:
    """Import openstacksdk's config loader without running the package's ``__init__`` yet.

    We use only ``openstack.config`` (and ``openstack.exceptions``), but ``openstack/__init__``
    imports ``openstack.connection`` and through it every service's proxy: about three quarters of
    the SDK's import time, paid by every ``imagehop copy``. So, when nothing has imported the SDK yet,
    the package is registered without running its ``__init__`` and with a module ``__getattr__``
    (PEP 562, called only for names the package does not have yet): a submodule's name imports that
    submodule (as ``from openstack import _log`` and ``openstack.connection`` expect); any other
    name (``openstack.connect``, ``enable_logging``, ``__all__``) runs ``__init__`` first, in the same
    module object. Code that uses the SDK sees it as it always was."""
    if "openstack" in sys.modules:
        return
    spec = importlib.util.find_spec("openstack")  # finds the package without running it
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module") or spec.origin is None:
        return
    package = importlib.util.module_from_spec(spec)
    lock = threading.RLock()

    def rest_of_package(name: str) -> Any:
        if not name.startswith("__") and importlib.machinery.PathFinder.find_spec(
            f"openstack.{name}", list(package.__path__)
        ):
            return importlib.import_module(f"openstack.{name}")
        with lock:
            if package.__dict__.pop("__getattr__", None) is not None:  # once: run openstack/__init__ now
                spec.loader.exec_module(package)  # type: ignore[union-attr]
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'openstack' has no attribute {name!r}") from None

    package.__getattr__ = rest_of_package  # type: ignore[attr-defined]
    sys.modules["openstack"] = package


_sdk_package_on_first_use()

import openstack.config as os_config  # noqa: E402  (not `from openstack import`: it would run __init__)
import openstack.exceptions as os_exceptions  # noqa: E402


class CloudConfigError(Exception):
    """A cloud cannot be used as named; the message says what to do."""


@dataclass(frozen=True)
class CloudSession:
    name: str
    session: Session
    region_name: str | None
    interface: str
    auth_url: str = ""

    def catalog(self) -> list[dict[str, Any]]:
        """The service catalog the cloud returned at login, as a list of v3-style entries."""
        access = self.session.auth.get_access(self.session)
        return list(access.service_catalog.catalog or [])

    def regions(self, service_type: str) -> list[str]:
        """Regions whose catalog entry of ``service_type`` has an endpoint of our interface."""
        found: list[str] = []
        for entry in self.catalog():
            if entry.get("type") != service_type:
                continue
            for endpoint in entry.get("endpoints", []):
                region = endpoint.get("region_id") or endpoint.get("region")
                interface = endpoint.get("interface")
                if interface is None and f"{self.interface}URL" not in endpoint:  # v2.0 catalog entries
                    continue
                if interface not in (None, self.interface) or not region or region in found:
                    continue
                found.append(region)
        return found

    def has(self, service_type: str, region: str | None = None) -> bool:
        return (region or self.region_name) in self.regions(service_type)

    def endpoint(self, service_type: str, region: str | None = None) -> str:
        region = region or self.region_name
        try:
            url = self.session.get_endpoint(service_type=service_type, region_name=region, interface=self.interface)
        except ks_exceptions.EndpointNotFound:
            url = None
        if not url:
            known = self.regions(service_type)
            where = f"regions with {service_type}: {', '.join(known)}" if known else f"no region has {service_type}"
            raise LookupError(f"cloud {self.name} has no {service_type} endpoint in region {region} ({where})")
        return url.rstrip("/")

    @property
    def project_id(self) -> str:
        return str(self.session.get_project_id())

    @cached_property
    def tls(self) -> ssl.SSLContext:
        """What httpx needs to verify this cloud's certificates as the keystoneauth session does.

        One context for every httpx client of this cloud (image data, object storage, each region):
        httpx would build the same one per client (``create_ssl_context``; loading the CA bundle
        takes tens of milliseconds each time)."""
        verify = self.session.verify
        if isinstance(verify, str):
            return ssl.create_default_context(cafile=verify)
        return httpx.create_ssl_context(verify=bool(verify))


def cloud_names(config_file: str | None = None) -> list[str]:
    """The clouds clouds.yaml (and secure.yaml) name, sorted."""
    loader = os_config.OpenStackConfig(config_files=[config_file] if config_file else None)
    return sorted(loader.get_cloud_names())


def _which_clouds(config_file: str | None) -> str:
    names = [n for n in cloud_names(config_file) if n != "envvars"]
    return f"clouds in clouds.yaml: {', '.join(names)}" if names else "clouds.yaml names no cloud"


def connect(cloud: str | None = None, config_file: str | None = None) -> CloudSession:
    """Authenticate to ``cloud`` (from clouds.yaml or ``OS_*``) and return a ready session."""
    loader = os_config.OpenStackConfig(config_files=[config_file] if config_file else None)
    if not cloud and not os.environ.get("OS_CLOUD") and not os.environ.get("OS_AUTH_URL"):
        raise CloudConfigError(
            f"no cloud given: pass --from-cloud NAME (or --os-cloud) or set OS_CLOUD ({_which_clouds(config_file)})"
        )
    name = cloud or os.environ.get("OS_CLOUD") or "envvars"
    try:
        region = loader.get_one(cloud=cloud)
    except os_exceptions.ConfigException as exc:
        if "not found" in str(exc).lower() or "cloud" in str(exc).lower():
            raise CloudConfigError(f"no cloud named {name!r} ({_which_clouds(config_file)})") from None
        raise CloudConfigError(f"cloud {name}: {exc}") from None
    session = region.get_session()
    auth_url = str(region.config.get("auth", {}).get("auth_url") or "")
    try:
        session.get_token()  # log in now, so a wrong password fails here with a clear error
    except ks_exceptions.Unauthorized:
        raise CloudConfigError(
            f"cloud {name} refused the credentials (401 from {auth_url}): check the user name, password, API key or "
            "application credential, and the project and domain names, in clouds.yaml or OS_*"
        ) from None
    except ks_exceptions.ClientException as exc:
        if isinstance(exc, ks_exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise CloudConfigError(
                f"cannot verify the TLS certificate of cloud {name} at {auth_url} ({exc}): if a private CA signed "
                f"it, name that CA's certificate in clouds.yaml (`cacert: /path/to/ca.pem` under {name}, or "
                "OS_CACERT); `insecure: true` skips the check (not for production)"
            ) from None
        if isinstance(exc, ks_exceptions.ConnectFailure):
            raise CloudConfigError(f"cannot reach the identity service of cloud {name} at {auth_url}: {exc}") from None
        if isinstance(exc, ks_exceptions.MissingRequiredOptions):
            missing = ", ".join(o.dest for o in exc.options)
            raise CloudConfigError(
                f"cloud {name} lacks {missing} in clouds.yaml or OS_* ({_which_clouds(None)})"
            ) from None
        raise CloudConfigError(f"cannot log in to cloud {name} at {auth_url}: {exc}") from None
    return CloudSession(
        name=region.name or name,
        session=session,
        region_name=region.region_name or None,
        interface=region.config.get("interface", "public") or "public",
        auth_url=auth_url,
    )
