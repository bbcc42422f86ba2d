"""What `imagehop copy` imports at start-up: openstacksdk's config loader without its cloud layer, and
the SDK still whole for any code in the same process that uses it (each case in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_copy_path_leaves_out_the_sdk_cloud_layer() -> None:
    out = run_python(
        "import sys; import imagehop.cli, imagehop.transfer.copy, imagehop.transfer.progress;"
        "print(sorted(m for m in ('openstack.connection', 'openstack.cloud', 'asyncio') if m in sys.modules))"
    )
    assert out == "[]"


@pytest.mark.parametrize(
    "use",
    [
        "import openstack; print(openstack.connect.__name__, openstack.connection.Connection.__name__)",
        "from openstack import connection; import openstack; print(openstack.connect.__name__, "
        "connection.Connection.__name__)",
        "import openstack.connection; import openstack; print(openstack.connect.__name__, "
        "openstack.connection.Connection.__name__)",
        "from openstack import *; print(connect.__name__, enable_logging.__name__)",
    ],
)
def test_the_sdk_is_whole_for_code_that_uses_it(use: str) -> None:
    out = run_python("import imagehop.transfer.clouds; " + use)
    assert out.split()[0] == "connect" and out.split()[1] in ("Connection", "enable_logging")


def test_an_sdk_imported_first_is_left_as_it_is() -> None:
    out = run_python(
        "import openstack, sys; import imagehop.transfer.clouds;"
        "print(sys.modules['openstack'] is openstack, 'openstack.connection' in sys.modules)"
    )
    assert out == "True True"
