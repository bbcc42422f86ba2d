"""The real Swift peer itself: the swift CLI and tempauth work against it (the differential tests rely on it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

SWIFT_CLI = [sys.executable, "-m", "swiftclient.shell"]


def test_swift_cli_round_trip_against_the_real_peer(real_swift, tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(b"x" * 300_000)
    env = real_swift.cli_env()
    subprocess.run([*SWIFT_CLI, "upload", "--object-name", "blob", "peer-check", str(source)], env=env, check=True)
    out = subprocess.run([*SWIFT_CLI, "list", "peer-check"], env=env, check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["blob"]
    target = tmp_path / "back.bin"
    subprocess.run([*SWIFT_CLI, "download", "peer-check", "blob", "-o", str(target)], env=env, check=True)
    assert target.read_bytes() == source.read_bytes()


def test_tempauth_accounts_are_separate(real_swift) -> None:
    url, token = real_swift.token("test")
    httpx.put(f"{url}/private", headers={"X-Auth-Token": token}).raise_for_status()
    other_url, other_token = real_swift.token("test2")
    assert httpx.get(f"{url}/private", headers={"X-Auth-Token": other_token}).status_code == 403
    assert httpx.get(other_url, headers={"X-Auth-Token": other_token}).status_code in (200, 204)
    norole_url, norole_token = real_swift.token("test", "norole")
    assert norole_url == url
    assert httpx.get(f"{url}/private", headers={"X-Auth-Token": norole_token}).status_code == 403
