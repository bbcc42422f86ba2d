"""The tasks' cloud: small export segments (so the tests see both VHD shapes) and fast polling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import BACKENDS, Cloud, make_cloud
from tests.support.clients import Swift  # noqa: F401 (older tests import it from here)
from tests.support.cloud import TASK_SEGMENT as SEGMENT  # noqa: F401 (older tests import it from here)
from tests.support.cloud import task_config
from tests.support.images import create_task, wait_task  # noqa: F401 (older tests import them from here)


@pytest.fixture(scope="module", params=BACKENDS)
def tcloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A two-region cloud with the test task settings, shared by a module, once per backend."""
    base = tmp_path_factory.mktemp(f"tasks-{request.param}")
    with make_cloud(base, request.param, config=task_config()) as running:
        yield running
