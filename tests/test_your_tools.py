"""The README's "Use it with your tools", run as written: each block marked
``<!-- tested by tests/test_your_tools.py: NAME -->`` is run by a real shell (or Python) in a folder
where ``imagehop serve`` runs with its default data dir, ``imagehop-data/``.

Runs on SQLite only: these tests are about the clients and the docs, not the database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cloud import Cloud
from tests.support.run import run

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(name: str) -> tuple[str, str]:
    """The language and text of the fenced block right after the README's marker for ``name``."""
    text = README.read_text()
    marker = f"<!-- tested by tests/test_your_tools.py: {name} -->\n"
    assert marker in text, f"README.md has no block marked {name!r}"
    match = re.match(r"```(\w+)\n(.*?)\n```", text.split(marker, 1)[1], re.S)
    assert match, f"no fenced block follows the README marker {name!r}"
    return match[1], match[2]


@dataclass
class Here:
    """A folder as a user has it: the cloud's data dir in it, a disk image, the venv on PATH."""

    folder: Path
    cloud: Cloud
    disk: bytes

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "RCLONE_"))}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        env["RCLONE_CONFIG"] = str(self.folder / "rclone.conf")  # not the user's own
        env.update(extra)
        return env

    def shell(self, script: str) -> subprocess.CompletedProcess[str]:
        return run(["bash", "-e", "-c", script], env=self.env(), cwd=self.folder)

    def object(self, user: str, region: str, path: str) -> bytes:
        entry = self.cloud.credentials()[user]
        response = httpx.get(
            f"{self.cloud.regions[region]}/v1/AUTH_{entry['tenant_id']}/{path}",
            headers={"X-Auth-Token": self.cloud.token(user)},
        )
        assert response.status_code == 200, (region, path, response.status_code)
        return response.content


@pytest.fixture(scope="module")
def here(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Here]:
    folder = tmp_path_factory.mktemp("project")
    disk = os.urandom(3 << 20)
    (folder / "disk.raw").write_bytes(disk)
    with Cloud(folder / "imagehop-data", None) as cloud:
        yield Here(folder, cloud, disk)


def test_openrc_sourced_by_a_shell_is_used_by_the_swift_cli(here: Here) -> None:
    language, script = readme_block("openrc")
    assert language == "sh"
    result = here.shell(script)
    assert result.stdout.splitlines()[-1] == "disk.raw"  # `swift list backups`
    assert here.object("demo", "ORD", "backups/disk.raw") == here.disk

    # Another user and region, as the comment in the README says.
    script = "imagehop credentials --openrc --user alt --region IAD > alt-openrc.sh\n. ./alt-openrc.sh\n"
    result = here.shell(script + "swift upload alt-backups disk.raw\nswift stat")
    assert re.search(r"^\s*Account: AUTH_10000002$", result.stdout, re.M), result.stdout
    assert here.object("alt", "IAD", "alt-backups/disk.raw") == here.disk
    openrc = (here.folder / "alt-openrc.sh").read_text()
    assert f"export OS_AUTH_URL={here.cloud.identity_url}/v3\n" in openrc
    assert "export OS_REGION_NAME=IAD\n" in openrc and "export OS_PROJECT_ID=10000002\n" in openrc
    assert openrc.splitlines()[0] == (
        "# imagehop: user alt, tenant 10000002, region IAD (endpoints from imagehop-data/endpoints.json)"
    )

    # An OS_CLOUD left over from clouds.yaml would win over the variables in `openstack`; the openrc unsets it.
    result = here.shell(
        "export OS_CLOUD=imagehop-admin\n. ./alt-openrc.sh\nopenstack token issue -f value -c project_id"
    )
    assert result.stdout.strip() == "10000002"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--user", "bob"), "Error: no user named bob; the users are: admin, alt, demo"),
        (("--region", "DFW"), "Error: no region DFW in this cloud; its regions are: ORD, IAD"),
    ],
)
def test_openrc_refuses_an_unknown_user_or_region(here: Here, args: tuple[str, ...], message: str) -> None:
    result = run(["imagehop", "credentials", "--openrc", *args], env=here.env(), cwd=here.folder, expect=1)
    assert result.stderr.strip() == message and result.stdout == ""


def test_an_rclone_remote_built_as_the_readme_says(here: Here) -> None:
    language, script = readme_block("rclone")
    assert language == "sh"
    result = here.shell(script)
    assert result.stdout.splitlines()[-1].split() == [str(len(here.disk)), "disk.raw"]  # rclone ls imagehop-iad:
    assert here.object("demo", "ORD", "backups/disk.raw") == here.disk
    assert here.object("demo", "IAD", "backups/disk.raw") == here.disk
    config = (here.folder / "rclone.conf").read_text()
    assert "[imagehop]\ntype = swift\nenv_auth = true\n" in config
    assert "[imagehop-iad]" in config and "region = IAD\n" in config and "auth_version = 3\n" in config


def test_the_openstack_cli_and_openstacksdk_blocks(here: Here) -> None:
    language, script = readme_block("openstack")
    assert language == "sh"
    result = here.shell(script)
    assert re.search(r"^\| ORD\s+\|", result.stdout, re.M) and re.search(r"^\| IAD\s+\|", result.stdout, re.M)
    assert f"| {here.cloud.regions['IAD']}/image " in result.stdout  # endpoint list as admin

    image = httpx.post(
        here.cloud.regions["IAD"] + "/image/v2/images",
        headers={"X-Auth-Token": here.cloud.token()},
        json={"name": "listed-by-the-sdk", "disk_format": "raw", "container_format": "bare"},
    ).json()
    language, code = readme_block("openstacksdk")
    assert language == "python"
    env = here.env(OS_CLIENT_CONFIG_FILE=str(here.cloud.clouds_yaml))
    result = run([sys.executable, "-c", code], env=env, cwd=here.folder)
    assert f"{image['id']} listed-by-the-sdk" in result.stdout.splitlines()
