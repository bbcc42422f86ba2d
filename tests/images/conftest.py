"""Fixtures for image API tests: a ``Glance`` client per user against the module's cloud."""

from __future__ import annotations

import pytest

from tests.conftest import Cloud
from tests.support.clients import V20, V21, Glance  # noqa: F401 (older tests import them from here)


@pytest.fixture(scope="module")
def demo(cloud: Cloud) -> Glance:
    return Glance(cloud, "demo")


@pytest.fixture(scope="module")
def alt(cloud: Cloud) -> Glance:
    return Glance(cloud, "alt")


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Glance:
    return Glance(cloud, "admin")
