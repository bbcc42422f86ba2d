"""The two image services of the differential tests, and the count of cases that agree (printed at the end).

imagehop runs once per database backend (the module's cloud, as the ``cloud`` fixture); the real
Glance 33 (``real_openstack``, region ORD) is the same for both, so each case runs against it twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.images.differential.sides import Side, Sides, glance_side, imagehop_side
from tests.peers.openstack import OpenStack
from tests.support import BACKENDS, Cloud, make_cloud

# Loopback sources for web-download: Glance's peer allows 127.0.0.1 ([import_filtering_opts]); so must we.
OURS_CONFIG = "[images]\nweb_download_allow_private = true\n"


@pytest.fixture(scope="session")
def theirs(real_openstack: OpenStack) -> Iterator[Side]:
    side = glance_side(real_openstack, "ORD", "main")
    yield side
    side.client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def ours_cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with make_cloud(tmp_path_factory.mktemp(f"glance-diff-{request.param}"), request.param,
                    config=OURS_CONFIG) as cloud:  # fmt: skip
        yield cloud


@pytest.fixture(scope="module")
def sides(ours_cloud: Cloud, theirs: Side) -> Iterator[Sides]:
    ours = imagehop_side(ours_cloud)
    yield Sides(ours, theirs)
    ours.client.close()
