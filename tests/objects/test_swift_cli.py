"""python-swiftclient's `swift` CLI against a real `imagehop serve` (Keystone v3 auth from OS_* variables)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.support import Cloud, MiB, run, storage_url, tool, write_disk
from tests.support.clients import swift_env

pytestmark = pytest.mark.e2e
SIZE = 50 * MiB + 12345
SEGMENT = 5 * MiB  # swift's --segment-size 5M


def swift(cloud: Cloud, *args: str, cwd: Path | None = None, user: str = "demo") -> str:
    return run([tool("swift"), *args], env=swift_env(cloud, user), cwd=cwd).stdout


def listing(cloud: Cloud, container: str, **params: str) -> list[dict]:
    response = httpx.get(
        f"{storage_url(cloud)}/{container}",
        params={"format": "json", **params},
        headers={"X-Auth-Token": cloud.token()},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("mode", ["slo", "dlo"])
def test_segmented_upload_download_delete(cloud: Cloud, tmp_path: Path, mode: str) -> None:
    src = tmp_path / "up"
    src.mkdir()
    data = write_disk(src / "big.bin", SIZE, seed=6).read_bytes()
    container = f"big-{mode}"
    extra = ["--use-dlo"] if mode == "dlo" else []
    swift(cloud, "upload", container, "big.bin", "--segment-size", "5M", *extra, cwd=src)

    stat = swift(cloud, "stat", container, "big.bin")
    # the large object's ETag, computed here: MD5 of the segments' MD5s, quoted
    etags = "".join(hashlib.md5(data[i : i + SEGMENT]).hexdigest() for i in range(0, SIZE, SEGMENT))
    assert f'ETag: "{hashlib.md5(etags.encode()).hexdigest()}"' in stat
    assert f"Content Length: {SIZE}" in stat
    if mode == "slo":
        assert "X-Static-Large-Object: True" in stat and "Manifest:" not in stat
    else:
        assert f"Manifest: {container}_segments/big.bin/" in stat and "X-Static-Large-Object" not in stat
    segments = listing(cloud, f"{container}_segments")
    assert len(segments) == 11
    assert sum(s["bytes"] for s in segments) == SIZE

    down = tmp_path / "down"
    down.mkdir()
    swift(cloud, "download", container, "big.bin", cwd=down)
    assert (down / "big.bin").read_bytes() == data

    swift(cloud, "delete", container, "big.bin")
    assert listing(cloud, container) == []
    assert listing(cloud, f"{container}_segments") == []


def test_list_stat_post_copy_delete(cloud: Cloud, tmp_path: Path) -> None:
    for name in ("a/1.txt", "a/2.txt", "b/3.txt", "top.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"content of {name}\n")
    swift(cloud, "upload", "files", "a", "b", "top.txt", cwd=tmp_path)

    assert swift(cloud, "list", "files").split() == ["a/1.txt", "a/2.txt", "b/3.txt", "top.txt"]
    assert swift(cloud, "list", "files", "--prefix", "a/").split() == ["a/1.txt", "a/2.txt"]
    assert swift(cloud, "list", "files", "--delimiter", "/").split() == ["a/", "b/", "top.txt"]
    assert "files" in swift(cloud, "list").split()

    swift(cloud, "post", "-m", "Color:blue", "files", "top.txt")
    stat = swift(cloud, "stat", "files", "top.txt")
    assert "Meta Color: blue" in stat
    assert "Content Length: 19" in stat
    account = swift(cloud, "stat")
    assert "Containers: " in account and "Objects: " in account

    swift(cloud, "copy", "--destination", "/files/copied.txt", "files", "top.txt")
    response = httpx.get(f"{storage_url(cloud)}/files/copied.txt", headers={"X-Auth-Token": cloud.token()})
    assert response.content == b"content of top.txt\n"
    assert response.headers["x-object-meta-color"] == "blue"

    swift(cloud, "delete", "files", "a/1.txt")
    assert "a/1.txt" not in swift(cloud, "list", "files").split()
    swift(cloud, "delete", "files")
    assert "files" not in swift(cloud, "list").split()


def test_info_advertises_what_is_implemented(cloud: Cloud) -> None:
    info = json.loads(swift(cloud, "capabilities", "--json"))
    assert set(info) == {"swift", "slo", "bulk_delete", "tempurl"}
    assert info["swift"]["max_file_size"] == 5368709122
    assert info["slo"]["max_manifest_segments"] == 1000
    assert info["tempurl"]["allowed_digests"] == ["sha256", "sha512"]
