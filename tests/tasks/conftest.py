"""The tasks' cloud: small export segments (so the tests see both VHD shapes) and fast polling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BACKENDS, Cloud, MiB, make_cloud
from tests.support.clients import Swift  # noqa: F401 (older tests import it from here)
from tests.support.images import create_task, wait_task  # noqa: F401 (older tests import them from here)

SEGMENT = 8 * MiB  # exported VHDs over 8 MiB become SLOs: the tests see both shapes
TASK_SETTINGS = {
    "export_segment_size": SEGMENT,
    "retry_after": 1,
    "poll_interval": 0.05,
    "max_active_per_tenant": 50,
    "import_max_virtual_size": 1 << 40,
}


def task_config(**changes: object) -> str:
    """TASK_SETTINGS with ``changes``, as a ``[tasks]`` table (``make_cloud(config=...)``)."""
    settings = {**TASK_SETTINGS, **changes}
    return "[tasks]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())


def task_cloud(base: Path, backend: str, tasks: dict | None = None, **kwargs) -> Cloud:  # type: ignore[no-untyped-def]
    """A cloud (not started) with TASK_SETTINGS, changed by ``tasks``, as its ``[tasks]`` table."""
    return make_cloud(base, backend, config=task_config(**(tasks or {})), **kwargs)


@pytest.fixture(scope="module", params=BACKENDS)
def tcloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with task_cloud(tmp_path_factory.mktemp(f"tasks-{request.param}"), request.param) as running:
        yield running
