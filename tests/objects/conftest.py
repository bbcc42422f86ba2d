"""Fixtures for object storage tests: Swift endpoints and environments for the swift CLI and rclone."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Cloud, make_cloud

# The object API runs on every blob store: local files on both databases, a real S3 store (SeaweedFS)
# and a real Swift 2.38 cluster.
STORES = ("sqlite-file", "postgresql-file", "sqlite-s3", "sqlite-swift")


def blob_cloud(request: pytest.FixtureRequest, base: os.PathLike[str], variant: str) -> Cloud:
    """A cloud (not started) on ``variant`` = ``<database>-<blob store>``."""
    backend, store = variant.split("-")
    cloud = make_cloud(base, backend)  # type: ignore[arg-type]
    if store == "s3":
        s3 = request.getfixturevalue("seaweedfs")
        for region in ("ORD", "IAD"):
            cloud.extra_env.update(s3.region_env(region, bucket=f"{region.lower()}-{uuid.uuid4().hex[:10]}"))
    if store == "swift":
        swift = request.getfixturevalue("real_swift")
        for region in ("ORD", "IAD"):
            prefix = f"IMAGEHOP_REGION_{region}_"
            cloud.extra_env.update({
                prefix + "BLOB_STORE": "swift", prefix + "SWIFT_AUTH_URL": swift.auth_url,
                prefix + "SWIFT_USER": "test:tester", prefix + "SWIFT_KEY": "testing",
                prefix + "SWIFT_CONTAINER": f"imagehop-{region.lower()}-{uuid.uuid4().hex[:10]}",
            })  # fmt: skip
    return cloud


@pytest.fixture(scope="module", params=STORES)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running two-region cloud shared by a test module, once per database and blob store."""
    with blob_cloud(request, tmp_path_factory.mktemp(f"cloud-{request.param}"), request.param) as running:
        yield running


@pytest.fixture(scope="module", params=("sqlite-file", "sqlite-s3", "sqlite-swift"))
def sqlite_cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running two-region cloud on SQLite, once per blob store (for client-compatibility tests)."""
    with blob_cloud(request, tmp_path_factory.mktemp(f"cloud-{request.param}"), request.param) as running:
        yield running


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
