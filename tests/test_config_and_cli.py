"""Settings resolution, the operator commands, and `imagehop demo` as a user runs it."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from imagehop.config import ConfigError, load_settings
from tests.support import Cloud, imagehop, run


def test_defaults() -> None:
    settings = load_settings(env={})
    assert [r.name for r in settings.regions] == ["ORD", "IAD"]
    assert settings.port == 5000
    assert [settings.region_port(i) for i in range(2)] == [5001, 5002]
    assert settings.data_dir == Path("imagehop-data")
    assert settings.token_lifetime == 86400


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "imagehop.toml"
    config.write_text(
        """
host = "0.0.0.0"
port = 7000
data_dir = "data"
token_lifetime = 600

[identity]
public_url = "https://id.example.test"

[[regions]]
name = "DFW"
port = 7100
public_url = "https://dfw.example.test"
database_url = "postgresql://db/dfw"

[[regions]]
name = "LON"

[[users]]
name = "ops"
tenant_id = "20000001"
roles = ["reader"]
"""
    )
    settings = load_settings(config, env={})
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == tmp_path / "data"  # relative to the file
    assert [(r.name, settings.region_port(i)) for i, r in enumerate(settings.regions)] == [("DFW", 7100), ("LON", 7002)]
    assert settings.regions[0].public_url == "https://dfw.example.test"
    assert settings.region_db_url(settings.regions[0]) == "postgresql://db/dfw"
    assert settings.identity_public_url == "https://id.example.test"
    assert settings.users[0].roles == ["reader"]

    env = {"IMAGEHOP_PORT": "8000", "IMAGEHOP_REGION_LON_DATABASE_URL": "postgresql://db/lon"}
    settings = load_settings(config, env=env)
    assert settings.port == 8000
    assert settings.region_db_url(settings.regions[1]) == "postgresql://db/lon"

    # Flags win; a region named again keeps what the file said about it.
    settings = load_settings(config, env=env, port=0, regions="LON,DFW")
    assert [r.name for r in settings.regions] == ["LON", "DFW"]
    assert settings.region_port(0) == 0 and settings.region_port(1) == 7100


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("port = 'x'", "port must be a port number"),
        ("colour = 'red'", "unknown setting"),
        ("[[regions]]\nport = 1", "needs a name"),
        ("[[regions]]\nname = 'A'\n[[regions]]\nname = 'A'", "unique"),
        ("[identity]\npublic_url = 'ftp://x'", "http"),
        ("port = [", "not valid TOML"),
    ],
)
def test_bad_config_is_explained(tmp_path: Path, text: str, words: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_settings(config, env={})


def test_serve_refuses_a_bad_config_and_a_taken_port(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("token_lifetime = -1\n")
    result = imagehop("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"), expect=None)
    assert result.returncode != 0
    assert "token_lifetime must be positive" in result.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = imagehop("serve", "--port", str(port), "--data-dir", str(tmp_path / "d"), expect=None)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_writes_clouds_yaml_and_locks_its_data_dir(cloud_factory) -> None:  # type: ignore[no-untyped-def]
    cloud = cloud_factory()
    cloud.start()
    clouds = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]
    assert set(clouds) == {"imagehop", "imagehop-alt", "imagehop-admin"}
    assert {c["region_name"] for c in clouds.values()} == {"ORD"}
    assert clouds["imagehop-alt"]["auth"]["project_id"] == "10000002"
    assert (cloud.clouds_yaml.stat().st_mode & 0o777) == 0o600

    second = imagehop("serve", "--port", "0", "--data-dir", str(cloud.data_dir), expect=None)
    assert second.returncode != 0
    assert "already using" in second.stderr
    assert cloud.stop() == 0  # SIGTERM: a clean exit


def test_user_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    imagehop("user", "create", "--user", "viewer", "--tenant-id", "10000001", "--role", "reader", "--data-dir", data)
    again = imagehop("user", "create", "--user", "viewer", "--tenant-id", "10000001", "--data-dir", data, expect=None)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = imagehop("user", "create", "--user", "x y", "--tenant-id", "1", "--data-dir", data, expect=None)
    assert bad.returncode != 0 and "user name" in bad.stderr

    users = {u["user"]: u for u in json.loads(imagehop("user", "list", "--json", "--data-dir", data).stdout)}
    assert users["viewer"]["roles"] == ["reader"] and users["viewer"]["tenant_id"] == "10000001"
    creds = {c["user"]: c for c in json.loads(imagehop("credentials", "--json", "--data-dir", data).stdout)}
    assert set(creds["viewer"]) == {"user", "tenant_id", "password", "api_key", "roles"}

    imagehop("user", "delete", "viewer", "--data-dir", data)
    users = json.loads(imagehop("user", "list", "--json", "--data-dir", data).stdout)
    assert "viewer" not in {u["user"] for u in users}
    missing = imagehop("user", "delete", "viewer", "--data-dir", data, expect=None)
    assert missing.returncode != 0 and "no user named viewer" in missing.stderr


def test_a_reader_beside_demo_logs_in_to_demos_tenant(cloud_factory) -> None:  # type: ignore[no-untyped-def]
    cloud = cloud_factory()
    cloud.data_dir.mkdir(parents=True)
    imagehop("user", "create", "--user", "viewer", "--tenant-id", "10000001", "--role", "reader",
             "--password", "viewer-pass", "--data-dir", str(cloud.data_dir))  # fmt: skip
    cloud.start()
    body = {"auth": {"passwordCredentials": {"username": "viewer", "password": "viewer-pass"}}}
    access = httpx.post(cloud.identity_url + "/v2.0/tokens", json=body).json()["access"]
    assert access["token"]["tenant"]["id"] == "10000001"
    assert [r["name"] for r in access["user"]["roles"]] == ["reader"]


def test_demo_runs_the_story_twice_in_the_same_folder(tmp_path: Path) -> None:
    """`make demo` a second time: the same story, exactly one copy found, and the user's own data kept."""

    def demo() -> str:
        env = {k: v for k, v in os.environ.items() if k != "MAKELEVEL"}  # as typed, not from `make demo`
        return run([sys.executable, "-m", "imagehop", "demo"], cwd=tmp_path, env=env).stdout

    out = demo()
    assert "token for user demo in tenant 10000001" in out
    assert "cloudFiles" in out and "/v1/AUTH_10000001" in out
    assert "ORD: GET" in out and "-> 300" in out and "IAD: GET" in out
    # The walkthrough: the server booted in IAD from the copied image has the ORD server's disk.
    assert "exactly one:" in out
    assert "-> same disk" in out
    assert "cat /etc/hostname' on the IAD server's disk: db-slave-3" in out
    # It ends by saying how to keep the cloud running and how to start over, with paths relative to here.
    assert "Its data stays in imagehop-demo (logs: imagehop-demo/imagehop.log, imagehop-demo/access.log)" in out
    assert "demo --keep-serving" in out and "serve --data-dir imagehop-demo" in out
    assert "Start over:             rm -rf imagehop-demo" in out
    assert str(tmp_path) not in out
    made = json.loads((tmp_path / "imagehop-demo" / "demo.json").read_text())
    first_images = {i for ids in made["images"].values() for i in ids}
    assert len(first_images) == 4 and sum(len(ids) for ids in made["servers"].values()) == 2

    # Something of the user's own in the demo cloud, between the runs.
    data = tmp_path / "imagehop-demo"
    cloud = Cloud(data, None)
    with cloud:
        headers = {"X-Auth-Token": cloud.token()}
        mine = httpx.post(
            cloud.regions["IAD"] + "/image/v2/images", headers=headers,
            json={"name": "mine", "disk_format": "raw", "container_format": "bare"},
        ).json()  # fmt: skip
    credentials_before = (data / "credentials.json").read_text()

    out = demo()
    assert "Removing what the last demo run made: 2 servers, 4 images" in out
    assert "exactly one:" in out and "-> same disk" in out and "Demo finished" in out
    assert (data / "credentials.json").read_text() == credentials_before
    with cloud:
        headers = {"X-Auth-Token": cloud.token()}
        ids = {
            image["id"]
            for url in cloud.regions.values()
            for image in httpx.get(url + "/image/v2/images", headers=headers).json()["images"]
        }
    assert mine["id"] in ids  # the user's image stays
    assert not first_images & ids  # the first run's images are gone
    assert len(ids) == 5  # the second run's four, and the user's


COMBINED = re.compile(
    r"^(?P<client>\S+) - (?P<user>\S+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" '
    r"(?P<request_id>\S+) (?P<seconds>\d+\.\d{3})$"
)


def test_serve_writes_an_access_log_with_request_ids_and_a_message_log(cloud_factory) -> None:  # type: ignore[no-untyped-def]
    cloud = cloud_factory()
    cloud.extra_args += ["--log-level", "debug"]
    with cloud:
        headers = {"X-Auth-Token": cloud.token(), "User-Agent": "curl/8.0 (test)", "Referer": "http://x/y"}
        images = httpx.get(cloud.regions["ORD"] + "/image/v2/images?limit=5", headers=headers)
        flavors = httpx.get(cloud.regions["IAD"] + "/compute/v2.1/flavors", headers=headers)
        missing = httpx.get(cloud.identity_url + "/v3/nothing-here", headers=headers)
        swift = httpx.head(cloud.regions["ORD"] + "/v1/AUTH_10000001", headers=headers)
    lines = (cloud.data_dir / "access.log").read_text().splitlines()
    parsed = [COMBINED.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m]
    by_id = {m["request_id"]: m for m in parsed if m}
    # Every response names its request id, and the access log line carries the same id.
    for response, request, user in (
        (images, "GET /image/v2/images?limit=5 HTTP/1.1", "demo"),
        (flavors, "GET /compute/v2.1/flavors HTTP/1.1", "demo"),
        (missing, "GET /v3/nothing-here HTTP/1.1", "-"),
        (swift, "HEAD /v1/AUTH_10000001 HTTP/1.1", "-"),
    ):
        request_id = response.headers["x-openstack-request-id"]
        line = by_id[request_id]
        assert line["request"] == request and int(line["status"]) == response.status_code
        assert line["agent"] == "curl/8.0 (test)" and line["referer"] == "http://x/y"
        assert line["user"] in (user, "demo")
    assert by_id[images.headers["x-openstack-request-id"]]["size"] == str(len(images.content))
    messages = (cloud.data_dir / "imagehop.log").read_text()
    assert "INFO imagehop: imagehop 0.1.0 serving: identity http://127.0.0.1:" in messages
    assert "DEBUG" in messages  # --log-level debug
    assert "INFO imagehop: stopped" in messages
