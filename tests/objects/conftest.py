"""Fixtures for object storage tests: Swift endpoints and environments for the swift CLI and rclone."""

from __future__ import annotations

import os

import pytest

from tests.conftest import Cloud


def storage_url(cloud: Cloud, user: str = "demo", region: str = "ORD") -> str:
    return f"{cloud.regions[region]}/v1/AUTH_{cloud.credentials()[user]['tenant_id']}"


def swift_env(cloud: Cloud, user: str = "demo", region: str = "ORD") -> dict[str, str]:
    """Environment for python-swiftclient's `swift` CLI: Keystone v3 password auth, as an operator sets it."""
    entry = cloud.credentials()[user]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    env.update(
        OS_AUTH_URL=cloud.identity_url + "/v3",
        OS_IDENTITY_API_VERSION="3",
        OS_USERNAME=user,
        OS_PASSWORD=entry["password"],
        OS_PROJECT_ID=entry["tenant_id"],
        OS_USER_DOMAIN_NAME="Default",
        OS_PROJECT_DOMAIN_NAME="Default",
        OS_REGION_NAME=region,
    )
    return env


def rclone_env(cloud: Cloud, name: str = "ORD", user: str = "demo", region: str = "ORD") -> dict[str, str]:
    """An rclone remote called ``name`` configured only through RCLONE_CONFIG_* variables."""
    entry = cloud.credentials()[user]
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_", "RCLONE_"))}
    env.update(
        {
            prefix + "TYPE": "swift",
            prefix + "AUTH": cloud.identity_url + "/v3",
            prefix + "USER": user,
            prefix + "KEY": entry["password"],
            prefix + "DOMAIN": "Default",
            prefix + "TENANT_ID": entry["tenant_id"],
            prefix + "TENANT_DOMAIN": "Default",
            prefix + "REGION": region,
            "RCLONE_CONFIG": os.devnull,
        }
    )
    return env


@pytest.fixture(scope="module")
def demo_token(sqlite_cloud: Cloud) -> str:
    return sqlite_cloud.token("demo")
