"""What every test uses, once: real server processes, clients, waiting, disks, runners, sizes.

- ``cloud``: ``Cloud`` (a real ``imagehop serve`` process), ``make_cloud``, ``BACKENDS``, PostgreSQL databases.
- ``clients``: ``Glance``, ``Swift``, ``Compute`` (httpx as one user of one region), ``storage_url``.
- ``images``: ``create_image`` (the one image-create helper), ``wait_image``, ``create_task``,
  ``wait_task``, ``run_task``.
- ``disks``: ``disk_bytes`` / ``write_disk`` (the one disk generator), ``reference_digest``.
- ``run``: ``run`` (the one CLI runner) with ``imagehop``, ``openstack`` and ``tool``; ``curl``.
- ``wait``: ``wait_for`` (the one polling helper).
- ``web``: ``web_server`` (a web-download source the test controls, able to stall mid-body).
- ``vhd``: editing VHD bytes by the spec (fields, checksums) to make broken disks.
- ``sizes``: ``KiB``, ``MiB``, ``GiB``, ``SECTOR``, ``BLOCK``.
"""

from tests.support.clients import V20, V21, Compute, Glance, Swift, storage_url
from tests.support.cloud import BACKENDS, Cloud, create_pg_database, database_url, make_cloud
from tests.support.disks import disk_bytes, reference_digest, write_disk
from tests.support.images import create_image, create_task, ended_tasks, run_task, wait_image, wait_task
from tests.support.run import curl, imagehop, openstack, run, tool
from tests.support.sizes import BLOCK, SECTOR, GiB, KiB, MiB
from tests.support.wait import wait_for

__all__ = [
    "BACKENDS", "BLOCK", "SECTOR", "V20", "V21", "Cloud", "Compute", "GiB", "Glance", "KiB", "MiB", "Swift",
    "create_image", "create_pg_database", "create_task", "curl", "database_url", "disk_bytes", "ended_tasks",
    "imagehop", "make_cloud", "openstack", "reference_digest", "run", "run_task", "storage_url", "tool", "wait_for",
    "wait_image", "wait_task", "write_disk",
]  # fmt: skip
