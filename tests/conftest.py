"""Shared fixtures: real `imagehop serve` processes on SQLite and PostgreSQL (see tests/README.md).

The classes and helpers live in ``tests/support``; the names below stay importable from here
(``from tests.conftest import Cloud, make_cloud``) for older tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers import openstack as openstack_peer
from tests.peers import swift as swift_peer
from tests.peers.seaweedfs import SeaweedFS
from tests.support.cloud import (  # noqa: F401 (re-exported)
    BACKENDS,
    PG_ADMIN_URL,
    Cloud,
    create_pg_database,
    database_url,
    drop_pg_databases,
    make_cloud,
)
from tests.support.differential import AgreementCount


def pytest_configure(config: pytest.Config) -> None:
    """The differential suites' agreement counts, registered here: under pytest-xdist only this
    top-level conftest is loaded in the process that prints the summary (the folders' load in the workers)."""
    from tests.images.differential.sides import DOCUMENTED
    from tests.images.differential.sides import PEER as GLANCE
    from tests.objects.differential.sides import PEER as SWIFT

    plugins = config.pluginmanager
    plugins.register(AgreementCount("tests/objects/differential/", SWIFT), "objects-differential-count")
    plugins.register(AgreementCount("tests/images/differential/", GLANCE, DOCUMENTED), "images-differential-count")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_pg_databases()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running two-region cloud (ORD, IAD) shared by a test module, once per database backend."""
    with make_cloud(tmp_path_factory.mktemp(f"cloud-{request.param}"), request.param) as running:
        yield running


@pytest.fixture(scope="session")
def real_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[swift_peer.Swift]:
    """A real Swift 2.38 all-in-one (tempauth) for the whole test session; see tests/peers/swift.py."""
    with swift_peer.running_swift(tmp_path_factory.mktemp("real-swift")) as running:
        yield running


@pytest.fixture(scope="session")
def real_swift_keystone(
    real_openstack: openstack_peer.OpenStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[swift_peer.Swift]:
    """A real Swift 2.38 all-in-one with authtoken + keystoneauth against ``real_openstack``'s Keystone."""
    service = real_openstack.create_service_user("swift")
    keystone = swift_peer.KeystoneAuth(
        real_openstack.auth_url, service.name, service.password, service.project_id, real_openstack.identity_region
    )
    with swift_peer.running_swift(tmp_path_factory.mktemp("real-swift-keystone"), keystone=keystone) as running:
        yield running


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real S3 store (SeaweedFS) for the whole session; each user takes its own bucket."""
    with SeaweedFS.start(tmp_path_factory.mktemp("seaweedfs")) as peer:
        yield peer


@pytest.fixture(scope="session")
def real_openstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openstack_peer.OpenStack]:
    """A real Keystone 30 with Glance 33 regions ORD and IAD for the whole test session; see
    tests/peers/openstack.py."""
    with openstack_peer.OpenStack.running(tmp_path_factory.mktemp("real-openstack")) as running:
        yield running


@pytest.fixture(scope="module")
def sqlite_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running two-region cloud on SQLite only. Prefer ``cloud``: use this only where the database
    plays no part in what is tested, and say so in the test's docstring."""
    with make_cloud(tmp_path_factory.mktemp("cloud")) as running:
        yield running


@pytest.fixture
def cloud_factory(tmp_path: Path) -> Iterator[Callable[..., Cloud]]:
    """Make clouds (not started) for one test, as ``make_cloud`` does; every process any of them
    started is killed at the end of the test, whatever happened in it."""
    made: list[Cloud] = []

    def factory(name: str = "cloud", backend: str = "sqlite", **kwargs) -> Cloud:  # type: ignore[no-untyped-def]
        made.append(make_cloud(tmp_path / name, backend, **kwargs))
        return made[-1]

    yield factory
    for cloud in made:
        cloud.kill()
