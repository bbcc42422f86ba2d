"""Object storage tests use ``tests/support`` (``storage_url``, ``swift_env``, ``rclone_env``).

The object API runs on every blob store: ``cloud`` and ``sqlite_cloud`` here are parametrised over
``<database>-<blob store>``: local files on both databases, a real S3 store (SeaweedFS) and a real
Swift 2.38 cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.clients import rclone_env, storage_url, swift_env  # noqa: F401 (older tests import them here)
from tests.support.cloud import Cloud, make_cloud

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
