"""`imagehop copy` as a newcomer meets it: each error says what to do next (and only a resumable
one suggests a re-run), the report's formats and columns, the dry run, and the OpenStack habits
(`--os-cloud`, the cloud's region as `--from`, `--debug`).

On SQLite only: these are the command's words and choices; the server's database plays no part.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import Cloud, MiB, create_image, disk_bytes

RERUN = "Run the same command again"


def run_copy(env: dict[str, str], *args: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagehop", "copy", *args, "--state", str(state), "--poll-interval", "1"],
        env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def image(sqlite_cloud: Cloud) -> dict:
    return create_image(sqlite_cloud, "ORD", "newcomer", disk_bytes(2 * MiB, seed=21), visibility="private")


def table(out: str) -> dict[str, str]:
    """The report table's rows (label -> value) from the command's output."""
    rows = (re.match(r"^\s*(\S.*?)\s{2,}(\S.*?)\s*$", line) for line in out.splitlines())
    return {m.group(1): m.group(2) for m in rows if m}


def clouds_of(cloud: Cloud) -> str:
    return ", ".join(sorted(yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]))


def test_each_mistake_gets_one_line_that_says_what_to_do(sqlite_cloud: Cloud, image: dict, tmp_path: Path) -> None:
    env, state = sqlite_cloud.env(), tmp_path / "j.db"
    cases = [
        (["no-such-image", "--from", "ORD", "--to", "IAD"],
         "Error: no image named 'no-such-image' in ORD: check the name, or list them with `openstack image list`"),
        ([image["id"], "--from", "ORD", "--to", "DFW"],
         "Error: --to DFW: cloud imagehop has no image service in region DFW; its regions: ORD, IAD"),
        ([image["id"], "--from", "ord", "--to", "IAD"],
         "Error: --from ord: cloud imagehop has no image service in region ord (did you mean ORD? region names are "
         "case-sensitive); its regions: ORD, IAD"),
        ([image["id"], "--from", "ORD", "--to", "ORD"],
         "Error: --from and --to are both ORD of imagehop: a copy onto itself does nothing. Pick another --to (IAD) "
         "or --to-cloud CLOUD."),
        ([image["id"], "--from-cloud", "imagehopp", "--from", "ORD", "--to", "IAD"],
         f"Error: no cloud named 'imagehopp' (clouds in clouds.yaml: {clouds_of(sqlite_cloud)})"),
        ([image["id"], "--from", "ORD"],
         "Error: pass --to REGION (the other regions of imagehop: IAD), or --to-cloud CLOUD"),
    ]  # fmt: skip
    for args, expected in cases:
        result = run_copy(env, *args, state=state)
        assert result.returncode == 1, result.stdout
        assert result.stderr.strip() == expected
        assert RERUN not in result.stderr and "Traceback" not in result.stderr

    no_cloud = {k: v for k, v in env.items() if k != "OS_CLOUD"}
    result = run_copy(no_cloud, image["id"], "--from", "ORD", "--to", "IAD", state=state)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: no cloud given: pass --from-cloud NAME (or --os-cloud) or set OS_CLOUD "
        f"(clouds in clouds.yaml: {clouds_of(sqlite_cloud)})"
    )
    # The same, as a machine reads it.
    result = run_copy(env, "no-such-image", "--from", "ORD", "--to", "IAD", "-f", "json", state=state)
    assert json.loads(result.stdout) == {
        "error": "no image named 'no-such-image' in ORD: check the name, or list them with `openstack image list`",
        "resumable": False,
    }


def test_debug_shows_the_http_calls_and_the_traceback(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    result = run_copy(sqlite_cloud.env(), "no-such-image", "--from", "ORD", "--to", "IAD", "--debug",
                      state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "/v2/images?limit=100&name=no-such-image" in result.stderr  # the request, as it was sent


def test_report_formats_columns_and_the_dry_run(sqlite_cloud: Cloud, image: dict, tmp_path: Path) -> None:
    env, state = sqlite_cloud.env(), tmp_path / "j.db"
    dry = run_copy(env, image["id"], "--from", "ORD", "--to", "IAD", "--dry-run", "--json", state=state)
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["target_image"] is None and report["method"] == "glance-download"
    assert report["why"].startswith("glance-download: imagehop/IAD pulls the image from imagehop/ORD itself")
    found = report["discovered"]["target"]
    methods = ["glance-direct", "web-download", "glance-download", "copy-image", "imagehop-delta"]
    assert found["import_methods"] == methods
    assert found["tasks_api"] and found["object_store"] and found["content_digest"] and "v2.0" in found["versions"]

    # --os-cloud names the source cloud; without --from, its region_name (ORD) is the source region.
    result = run_copy(env, image["id"], "--os-cloud", "imagehop", "--to", "IAD", "-f", "value", "-c", "target_image",
                      "-c", "method", state=state)  # fmt: skip
    assert result.returncode == 0, result.stderr
    target_id, method = result.stdout.splitlines()
    assert method == "glance-download" and len(target_id) == 36

    again = run_copy(env, image["id"], "--from", "ORD", "--to", "IAD", "-f", "yaml", state=state)
    document = yaml.safe_load(again.stdout)
    assert document["already_done"] is True and document["target_image"] == target_id
    # A private image stays private in the target.
    assert document["visibility"] == "private"

    shown = run_copy(env, image["id"], "--from", "ORD", "--to", "IAD", state=state)
    rows = table(shown.stdout)
    assert rows["target image"] == f"{target_id} (imagehop/IAD)" and rows["visibility"] == "private"
    assert "server" not in rows  # no --boot: no always-empty row
    assert "Already copied" in shown.stdout


def test_region_from_the_environment_and_the_order_of_the_output(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(sqlite_cloud, "IAD", "from-iad", disk_bytes(3 * MiB, seed=22))
    env = {**sqlite_cloud.env(), "OS_REGION_NAME": "IAD"}
    result = run_copy(
        env, source["id"], "--to", "ORD", "--method", "tasks", "--segment-size", "1", state=tmp_path / "j.db"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    # the move's bar is drawn for good before the import task's lines, and the table names each task
    assert out.index("move ") < out.index("import: task")
    lines = table(out)
    assert "export task" in lines and "import task" in lines
    assert "imagehop/IAD" in lines["source image"]
    # the exported dynamic VHD's bytes: more than the 3 MiB of data (headers, table), less than a fixed VHD
    moved = int(lines["bytes moved"].split()[-1].replace(",", ""))
    assert 3 * MiB < moved < 4 * MiB + 2 * MiB


def test_a_pull_names_its_task_and_the_bytes_it_moved(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(sqlite_cloud, "ORD", "pulled-64", disk_bytes(64 * MiB, seed=23))
    result = run_copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", state=tmp_path / "j.db")
    assert result.returncode == 0, result.stderr
    lines = table(result.stdout)
    target_id = lines["target image"].split()[0]
    task_lines = [line for line in result.stdout.splitlines() if line.startswith("pull: task ")]
    assert task_lines and all(target_id not in line for line in task_lines)
    assert lines["pull task"] == task_lines[-1].split()[2]
    assert lines["bytes moved"] == f"{64 * MiB:,}"
    assert lines["method"] == "glance-download"


def test_v2_password_and_rackspace_api_key_clouds(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    """Keystone v2.0 clouds as Rackspace users have them: a password, and an API key
    (``auth_type: rackspace_apikey``)."""
    demo = sqlite_cloud.credentials()["demo"]
    v2 = f"{sqlite_cloud.identity_url}/v2.0"
    clouds = yaml.safe_load(sqlite_cloud.clouds_yaml.read_text())["clouds"]
    clouds["v2"] = {"auth_type": "v2password", "identity_api_version": 2, "region_name": "ORD",
                    "auth": {"auth_url": v2, "username": "demo", "password": demo["password"],
                             "tenant_id": demo["tenant_id"]}}  # fmt: skip
    clouds["rax"] = {"auth_type": "rackspace_apikey", "identity_api_version": 2, "region_name": "IAD",
                     "auth": {"auth_url": v2, "username": "demo", "api_key": demo["api_key"]}}  # fmt: skip
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    env = {**sqlite_cloud.env(), "OS_CLIENT_CONFIG_FILE": str(path)}
    source = create_image(sqlite_cloud, "ORD", "rackspace-user", disk_bytes(MiB, seed=24))
    result = run_copy(env, source["id"], "--from-cloud", "v2", "--to-cloud", "rax", "-f", "json", state=tmp_path / "j")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["source_region"] == "v2/ORD" and report["target_region"] == "rax/IAD"
    assert report["method"] == "glance-download" and report["verified_by"].startswith("content digest")
