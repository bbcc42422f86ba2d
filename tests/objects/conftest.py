"""Object storage tests use ``tests/support`` (``storage_url``, ``swift_env``, ``rclone_env``)."""

from tests.support.clients import rclone_env, storage_url, swift_env  # noqa: F401 (older tests import them here)
