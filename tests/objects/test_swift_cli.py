"""python-swiftclient's `swift` CLI against a real `imagehop serve` (Keystone v3 auth from OS_* variables)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cloud
from tests.objects.conftest import storage_url, swift_env

SWIFT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "swift")
pytestmark = pytest.mark.e2e


def swift(cloud: Cloud, *args: str, cwd: Path | None = None, user: str = "demo") -> str:
    result = subprocess.run(
        [SWIFT, *args], env=swift_env(cloud, user), cwd=cwd, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, f"swift {' '.join(args)} failed: {result.stdout}\n{result.stderr}\n{cloud.log()}"
    return result.stdout


def big_file(path: Path, size: int) -> str:
    """A file of random and zero stretches; its MD5."""
    md5 = hashlib.md5()
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            block = os.urandom(1 << 20) if (written >> 20) % 3 else bytes(1 << 20)
            block = block[: size - written]
            handle.write(block)
            md5.update(block)
            written += len(block)
    return md5.hexdigest()


def listing(cloud: Cloud, container: str, **params: str) -> list[dict]:
    response = httpx.get(
        f"{storage_url(cloud)}/{container}",
        params={"format": "json", **params},
        headers={"X-Auth-Token": cloud.token()},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("mode", ["slo", "dlo"])
def test_segmented_upload_download_delete(sqlite_cloud: Cloud, tmp_path: Path, mode: str) -> None:
    src = tmp_path / "up"
    src.mkdir()
    digest = big_file(src / "big.bin", 50 * 1024 * 1024 + 12345)
    container = f"big-{mode}"
    extra = ["--use-dlo"] if mode == "dlo" else []
    swift(sqlite_cloud, "upload", container, "big.bin", "--segment-size", "5M", *extra, cwd=src)

    stat = swift(sqlite_cloud, "stat", container, "big.bin")
    if mode == "slo":
        assert "Manifest" not in stat or "segments" not in stat
        head = httpx.head(
            f"{storage_url(sqlite_cloud)}/{container}/big.bin", headers={"X-Auth-Token": sqlite_cloud.token()}
        )
        assert head.headers["x-static-large-object"] == "True"
        assert head.headers["etag"].startswith('"')
    else:
        assert f"Manifest: {container}_segments/big.bin/" in stat
    segments = listing(sqlite_cloud, f"{container}_segments")
    assert len(segments) == 11
    assert sum(s["bytes"] for s in segments) == 50 * 1024 * 1024 + 12345

    down = tmp_path / "down"
    down.mkdir()
    swift(sqlite_cloud, "download", container, "big.bin", cwd=down)
    assert hashlib.md5((down / "big.bin").read_bytes()).hexdigest() == digest

    swift(sqlite_cloud, "delete", container, "big.bin")
    assert listing(sqlite_cloud, container) == []
    assert listing(sqlite_cloud, f"{container}_segments") == []


def test_list_stat_post_copy_delete(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    for name in ("a/1.txt", "a/2.txt", "b/3.txt", "top.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"content of {name}\n")
    swift(sqlite_cloud, "upload", "files", "a", "b", "top.txt", cwd=tmp_path)

    assert swift(sqlite_cloud, "list", "files").split() == ["a/1.txt", "a/2.txt", "b/3.txt", "top.txt"]
    assert swift(sqlite_cloud, "list", "files", "--prefix", "a/").split() == ["a/1.txt", "a/2.txt"]
    assert swift(sqlite_cloud, "list", "files", "--delimiter", "/").split() == ["a/", "b/", "top.txt"]
    assert "files" in swift(sqlite_cloud, "list").split()

    swift(sqlite_cloud, "post", "-m", "Color:blue", "files", "top.txt")
    stat = swift(sqlite_cloud, "stat", "files", "top.txt")
    assert "Meta Color: blue" in stat
    assert "Content Length: 19" in stat
    account = swift(sqlite_cloud, "stat")
    assert "Containers: " in account and "Objects: " in account

    swift(sqlite_cloud, "copy", "--destination", "/files/copied.txt", "files", "top.txt")
    response = httpx.get(
        f"{storage_url(sqlite_cloud)}/files/copied.txt", headers={"X-Auth-Token": sqlite_cloud.token()}
    )
    assert response.content == b"content of top.txt\n"
    assert response.headers["x-object-meta-color"] == "blue"

    swift(sqlite_cloud, "delete", "files", "a/1.txt")
    assert "a/1.txt" not in swift(sqlite_cloud, "list", "files").split()
    swift(sqlite_cloud, "delete", "files")
    assert "files" not in swift(sqlite_cloud, "list").split()


def test_info_advertises_what_is_implemented(sqlite_cloud: Cloud) -> None:
    info = json.loads(swift(sqlite_cloud, "capabilities", "--json"))
    assert set(info) == {"swift", "slo", "bulk_delete", "tempurl"}
    assert info["swift"]["max_file_size"] == 5368709122
    assert info["slo"]["max_manifest_segments"] == 1000
    assert info["tempurl"]["allowed_digests"] == ["sha256", "sha512"]
