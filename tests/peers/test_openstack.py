"""The real Keystone + Glance harness itself: what the other tests rely on."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.peers.openstack import OpenStack


def test_two_glance_regions_on_one_keystone(real_openstack: OpenStack) -> None:
    openstack = real_openstack
    user = openstack.create_user()
    headers = {"X-Auth-Token": openstack.token(user)}
    catalog = httpx.get(f"{openstack.auth_url}/v3/auth/catalog", headers=headers).json()["catalog"]
    image = next(entry for entry in catalog if entry["type"] == "image")
    assert {e["region_id"] for e in image["endpoints"] if e["interface"] == "public"} == {"ORD", "IAD"}
    assert not [entry for entry in catalog if entry["type"] == "object-store"]

    ord_url, iad_url = openstack.glance_url("ORD"), openstack.glance_url("IAD")
    methods = httpx.get(f"{ord_url}/v2/info/import", headers=headers).json()["import-methods"]["value"]
    assert set(methods) >= {"glance-direct", "web-download", "glance-download", "copy-image"}

    data = os.urandom(3 << 20)
    created = httpx.post(
        f"{ord_url}/v2/images",
        headers=headers,
        json={"name": "harness", "disk_format": "raw", "container_format": "bare"},
    ).json()
    upload = httpx.put(
        f"{ord_url}/v2/images/{created['id']}/file",
        headers={**headers, "Content-Type": "application/octet-stream"},
        content=data,
    )
    assert upload.status_code == 204, upload.text
    source = httpx.get(f"{ord_url}/v2/images/{created['id']}", headers=headers).json()
    assert source["status"] == "active" and source["os_hash_value"] == hashlib.sha512(data).hexdigest()
    ranged = httpx.get(f"{ord_url}/v2/images/{created['id']}/file", headers={**headers, "Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]

    # glance-download between the two regions: the IAD Glance pulls from ORD with the user's token.
    target = httpx.post(
        f"{iad_url}/v2/images",
        headers=headers,
        json={"name": "pulled", "disk_format": "raw", "container_format": "bare"},
    ).json()
    method = {"name": "glance-download", "glance_image_id": created["id"], "glance_region": "ORD",
              "glance_service_interface": "public"}  # fmt: skip
    started = httpx.post(f"{iad_url}/v2/images/{target['id']}/import", headers=headers, json={"method": method})
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while (pulled := httpx.get(f"{iad_url}/v2/images/{target['id']}", headers=headers).json())["status"] != "active":
        assert pulled["status"] in ("queued", "importing") and time.monotonic() < deadline, pulled
        time.sleep(0.5)
    assert pulled["os_hash_value"] == source["os_hash_value"] and pulled["size"] == len(data)


def test_openstack_cli_and_extra_region(real_openstack: OpenStack) -> None:
    """The `openstack` CLI works with the harness's environment; a third region comes and goes."""
    openstack = real_openstack
    user = openstack.create_user()
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "openstack"), "image", "list", "-f", "value"],
        env=openstack.env(user),
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr

    openstack.start_glance("SYD", {"image_format": {"disk_formats": "raw"}})
    try:
        headers = {"X-Auth-Token": openstack.token(user)}
        refused = httpx.post(
            f"{openstack.glance_url('SYD')}/v2/images",
            headers=headers,
            json={"name": "q", "disk_format": "qcow2", "container_format": "bare"},
        )
        assert refused.status_code == 400 and "disk_format" in refused.text
    finally:
        openstack.stop_glance("SYD")
    regions = httpx.get(f"{openstack.auth_url}/v3/endpoints", headers={"X-Auth-Token": openstack.admin_token()})
    assert "SYD" not in {e["region_id"] for e in regions.json()["endpoints"]}
