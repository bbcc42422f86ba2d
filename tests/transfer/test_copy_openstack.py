"""`imagehop copy` between imagehop and a real OpenStack cloud (Keystone 30 + Glance 33, no object
storage, no Rackspace tasks), and between two real Glance regions on one Keystone.

These tests run on SQLite only: what is tested is the client and the two clouds' HTTP APIs; the
imagehop side's database plays no part that the imagehop-to-imagehop copy tests do not cover.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.peers.openstack import OpenStack, User
from tests.support import Cloud, MiB, create_image, disk_bytes, reference_digest, storage_url
from tests.support.transfer import copy_cli, copy_killed_when
from tests.support.wait import wait_for

TAG = "com.mycompany.image-of=db-slave-3"


@dataclass
class Pair:
    """An imagehop deployment (cloud ``imagehop``) and the real cloud (``real``) in one clouds.yaml."""

    imagehop: Cloud
    real: OpenStack
    user: User
    env: dict[str, str]
    clouds_yaml: Path

    def real_headers(self, user: User | None = None) -> dict[str, str]:
        return {"X-Auth-Token": self.real.token(user or self.user)}

    def real_image(self, region: str, name: str, data: bytes, user: User | None = None, **attrs: object) -> dict:
        """An active image in the real Glance, uploaded with PUT /file."""
        url, headers = self.real.glance_url(region), self.real_headers(user)
        body = {"name": name, "disk_format": "raw", "container_format": "bare", **attrs}
        created = httpx.post(f"{url}/v2/images", headers=headers, json=body)
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        upload = httpx.put(
            f"{url}/v2/images/{image_id}/file",
            headers={**headers, "Content-Type": "application/octet-stream"},
            content=data,
            timeout=120,
        )
        assert upload.status_code == 204, upload.text
        return self.get_real(region, image_id, user)

    def get_real(self, region: str, image_id: str, user: User | None = None) -> dict:
        answer = httpx.get(f"{self.real.glance_url(region)}/v2/images/{image_id}", headers=self.real_headers(user))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def real_images(self, region: str, user: User | None = None, **filters: str) -> list[dict]:
        """Every image of the user's project in the real region, hidden ones included."""
        url, headers = self.real.glance_url(region), self.real_headers(user)
        found = []
        for hidden in ("false", "true"):
            params = {**filters, "os_hidden": hidden, "owner": (user or self.user).project_id}
            found += httpx.get(f"{url}/v2/images", headers=headers, params=params).json()["images"]
        return found

    def real_bytes(self, region: str, image_id: str) -> bytes:
        answer = httpx.get(
            f"{self.real.glance_url(region)}/v2/images/{image_id}/file", headers=self.real_headers(), timeout=120
        )
        assert answer.status_code == 200
        return answer.content

    def imagehop_images(self, region: str, **filters: str) -> list[dict]:
        url = f"{self.imagehop.regions[region]}/image/v2/images"
        found = []
        for hidden in ("false", "true"):
            params = {**filters, "os_hidden": hidden}
            answer = httpx.get(url, headers={"X-Auth-Token": self.imagehop.token()}, params=params)
            found += answer.json()["images"]
        return found

    def copy(self, *args: str, state: Path, expect: int = 0, env: dict | None = None) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "imagehop", "copy", *args, "--state", str(state), "--json", "--poll-interval", "1"],
            env=env or self.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == expect, result.stderr + result.stdout
        return json.loads(result.stdout.splitlines()[0] if expect else result.stdout)


@pytest.fixture(scope="module")
def pair(real_openstack: OpenStack, sqlite_cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    user = real_openstack.create_user("copier")
    folder = tmp_path_factory.mktemp("clouds")
    path = real_openstack.clouds_yaml(folder, {"real": user}, merge=sqlite_cloud.clouds_yaml)
    env = {**sqlite_cloud.env(), "OS_CLIENT_CONFIG_FILE": str(path)}
    return Pair(sqlite_cloud, real_openstack, user, env, path)


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def test_imagehop_to_real_glance_streams_and_carries_everything(pair: Pair, tmp_path: Path) -> None:
    data = disk_bytes(24 * MiB, seed=1)
    source = create_image(pair.imagehop, "IAD", "db-slave-3-image", data, visibility="private", os_distro="debian",
                          min_ram=512, **{"com.mycompany.role": "db"})  # fmt: skip
    report = pair.copy(source["id"], "--from", "IAD", "--to-cloud", "real", "--to", "ORD", "--tag", TAG,
                       state=tmp_path / "j.db")  # fmt: skip
    # Different clouds, a target with no object storage and no tasks: the direct stream.
    assert report["method"] == "stream" and report["move"]["upload"] == "put"
    assert "not glance-download: real/ORD does not share a Keystone catalog with imagehop/IAD" in report["why"]
    assert "not web-download: the URL serves a VHD and real/ORD would keep it as a VHD" in report["why"]
    assert report["bytes_moved"] == len(data)
    # a real Glance has no base to build on: a full copy, and the report says why
    assert report["base"] is None and report["incremental"].startswith(
        "full copy: real/ORD is not imagehop (it offers no imagehop-delta import), so every byte of the image moves"
    )
    target = pair.get_real("ORD", report["target_image"])
    assert target["status"] == "active" and target["os_hash_value"] == sha512(data) and target["size"] == len(data)
    assert target["checksum"] == hashlib.md5(data).hexdigest()
    assert target["com.mycompany.image-of"] == "db-slave-3" and target["com.mycompany.role"] == "db"
    assert target["os_distro"] == "debian" and target["min_ram"] == 512 and target["name"] == "db-slave-3-image"
    assert target["visibility"] == "private" and target["os_hidden"] is False
    assert "imagehop.content_digest" not in target
    assert report["verified_by"].startswith("sha512 and size = the source's; MD5 and sha512 computed in flight")
    assert pair.real_bytes("ORD", target["id"]) == data

    # The same command again: nothing moves, nothing is created.
    again = pair.copy(source["id"], "--from", "IAD", "--to-cloud", "real", "--to", "ORD", "--tag", TAG,
                      state=tmp_path / "j.db")  # fmt: skip
    assert again["already_done"] and again["target_image"] == target["id"]
    assert [i["id"] for i in pair.real_images("ORD", name="db-slave-3-image")] == [target["id"]]


def test_real_glance_to_imagehop_streams_in_one_resumable_put(pair: Pair, tmp_path: Path) -> None:
    data = disk_bytes(20 * MiB, seed=2)
    source = pair.real_image("IAD", "from-real", data, os_type="linux", **{"com.mycompany.role": "web"})
    report = pair.copy(source["id"], "--from-cloud", "real", "--from", "IAD", "--to-cloud", "imagehop", "--to", "ORD",
                       state=tmp_path / "j.db")  # fmt: skip
    # imagehop keeps a broken upload: one PUT, the bytes written once, nothing staged in object storage
    assert report["method"] == "stream" and report["steps"][:2] == ["created", "streamed"]
    assert report["move"] == {"bytes": len(data), "upload": "resumable", "read": len(data), "resumed_at": 0}
    assert "PUT /v2/images/{id}/file, resumable" in report["why"]
    assert report["verified_by"] == "sha512 and size = the source's"
    # a real Glance publishes no content digest: no base can be matched, and the plan says why
    assert report["base"] is None and report["incremental"].startswith(
        "full copy: real/IAD publishes no content digest of the image (only imagehop does), so no block of it can "
        "be matched with a base"
    )
    found = pair.imagehop_images("ORD", **{"imagehop.source": f"IAD/{source['id']}"})
    assert [i["id"] for i in found] == [report["target_image"]]
    target = found[0]
    assert target["os_hash_value"] == sha512(data) == source["os_hash_value"]
    assert target["checksum"] == source["checksum"] and target["size"] == len(data)
    assert target["imagehop.content_digest"] == reference_digest(data) and "imagehop.upload_kept" not in target
    assert target["os_type"] == "linux" and target["com.mycompany.role"] == "web" and target["name"] == "from-real"
    assert target["visibility"] == source["visibility"] and target["os_hidden"] is False
    swift = httpx.get(storage_url(pair.imagehop, region="ORD") + "/imagehop-exports",
                      headers={"X-Auth-Token": pair.imagehop.token()})  # fmt: skip
    assert swift.status_code == 404 or swift.json() == []


def test_forced_methods_between_imagehop_and_real_glance(pair: Pair, tmp_path: Path) -> None:
    data = disk_bytes(8 * MiB, seed=3)
    source = create_image(pair.imagehop, "ORD", "forced", data)
    to_real = (source["id"], "--from", "ORD", "--to-cloud", "real", "--to", "IAD")
    # web-download: the real Glance fetches the exported VHD from a TempURL (it keeps it a VHD, so --convert vhd).
    report = pair.copy(*to_real, "--method", "web-download", "--convert", "vhd", "--tag", "k=web",
                       state=tmp_path / "w.db")  # fmt: skip
    target = pair.get_real("IAD", report["target_image"])
    assert report["method"] == "web-download" and target["disk_format"] == "vhd" and target["status"] == "active"
    assert target["virtual_size"] == len(data) and report["move"]["through_client"] == 0
    # stream, asked for.
    report = pair.copy(*to_real, "--method", "stream", "--tag", "k=stream", state=tmp_path / "s.db")
    assert pair.get_real("IAD", report["target_image"])["os_hash_value"] == sha512(data)
    # What the real cloud cannot do is refused before anything happens, with the reason.
    for method, reason in (
        ("tasks", "--method tasks cannot copy this image: real/IAD has no Tasks API for this project"),
        ("glance-download", "--method glance-download cannot copy this image: real/IAD does not share a Keystone"),
        ("web-download", "--method web-download cannot copy this image: the URL serves a VHD and real/IAD"),
    ):
        error = pair.copy(*to_real, "--method", method, "--tag", f"k={method}", state=tmp_path / "x.db", expect=1)
        assert error["error"].startswith(reason) and error["resumable"] is False
        assert error["error"].endswith("Leave out --method to let imagehop pick a way both clouds support.")
        assert pair.real_images("IAD", **{"k": method}) == []
    back = (report["target_image"], "--from-cloud", "real", "--from", "IAD", "--to-cloud", "imagehop", "--to", "ORD")
    error = pair.copy(*back, "--method", "web-download", state=tmp_path / "b.db", expect=1)
    assert "real/IAD has no export task into object storage to give a URL without credentials" in error["error"]
    report = pair.copy(*back, "--method", "stream", "--tag", "k=back", state=tmp_path / "b.db")
    assert report["method"] == "stream"


def test_two_real_glance_regions_use_glance_download_and_stream_otherwise(pair: Pair, tmp_path: Path) -> None:
    data = disk_bytes(6 * MiB, seed=4)
    source = pair.real_image("ORD", "regional", data, hw_disk_bus="scsi", **{"com.mycompany.image-of": "web-1"})
    report = pair.copy(source["id"], "--from-cloud", "real", "--from", "ORD", "--to", "IAD", state=tmp_path / "j.db")
    assert report["method"] == "glance-download" and report["move"]["through_client"] == 0
    assert report["bytes_moved"] == len(data) and report["tasks"]["pull"]
    target = pair.get_real("IAD", report["target_image"])
    assert target["os_hash_value"] == source["os_hash_value"] == sha512(data)
    assert target["com.mycompany.image-of"] == "web-1" and target["hw_disk_bus"] == "scsi"

    # A Glance region without glance-download: the direct stream between the two regions.
    pair.real.start_glance("SYD", {"DEFAULT": {"enabled_import_methods": "[glance-direct,web-download]"}})
    try:
        report = pair.copy(source["id"], "--from-cloud", "real", "--from", "ORD", "--to", "SYD",
                           state=tmp_path / "j.db")  # fmt: skip
        assert report["method"] == "stream"
        assert "not glance-download: real/SYD does not offer the glance-download import method" in report["why"]
        assert pair.get_real("SYD", report["target_image"])["os_hash_value"] == sha512(data)
    finally:
        pair.real.stop_glance("SYD")


@pytest.mark.slow
def test_a_stream_killed_halfway_resumes_without_reading_again(pair: Pair, tmp_path: Path) -> None:
    size = 128 * MiB
    data = disk_bytes(size, seed=5)
    source = pair.real_image("ORD", "resumed", data)
    state = tmp_path / "j.db"
    args = (source["id"], "--from-cloud", "real", "--from", "ORD", "--to-cloud", "imagehop", "--to", "IAD",
            "--method", "stream")  # fmt: skip

    def server_wrote() -> int:  # bytes the imagehop server process has written to files (nearly all: the upload)
        with open(f"/proc/{pair.imagehop.proc.pid}/io") as io:
            return int(next(line for line in io if line.startswith("wchar:")).split()[1])

    before = server_wrote()
    copy_killed_when(pair.env, *args, state=state, ready=lambda: server_wrote() - before >= 16 * MiB,
                     what="the target has written 16 MiB")  # fmt: skip

    # The target keeps what arrived, in the one (hidden, queued) image the copy made.
    def kept() -> list[dict] | None:
        found = pair.imagehop_images("IAD", name="resumed")
        return found if found and all(i["status"] == "queued" for i in found) else None

    found = wait_for(kept, "the target keeps the interrupted upload", timeout=120)
    assert len(found) == 1 and found[0]["os_hidden"] is True
    done_before = int(found[0]["imagehop.upload_kept"])
    assert 0 < done_before < size, "the first run finished before it was killed"

    report = json.loads(copy_cli(pair.env, *args, state=state).stdout)
    # What the first run sent is neither read from the source (it honours Range) nor sent again.
    assert report["move"] == {"bytes": size, "upload": "resumable", "read": size - done_before,
                              "resumed_at": done_before}  # fmt: skip
    assert f"kept {done_before:,} bytes of the interrupted upload" in " ".join(report["notes"])
    found = pair.imagehop_images("IAD", name="resumed")
    assert [i["id"] for i in found] == [report["target_image"]]
    assert found[0]["os_hash_value"] == sha512(data) and found[0]["checksum"] == hashlib.md5(data).hexdigest()
    assert found[0]["imagehop.content_digest"] == reference_digest(data) and found[0]["status"] == "active"
    assert "imagehop.upload_kept" not in found[0] and found[0]["os_hidden"] is False


def test_a_glance_that_refuses_the_format_names_convert(pair: Pair, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(disk_bytes(10 * MiB, seed=6))
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    source = create_image(pair.imagehop, "ORD", "qcow", qcow2.read_bytes(), disk_format="qcow2")
    pair.real.start_glance("SYD", {"image_format": {"disk_formats": "raw"}, "DEFAULT": {"image_size_cap": 16 * MiB}})
    try:
        to_syd = (source["id"], "--from", "ORD", "--to-cloud", "real", "--to", "SYD")
        error = pair.copy(*to_syd, state=tmp_path / "j.db", expect=1)
        assert error["error"] == (
            "real/SYD refuses disk_format qcow2 (it accepts: raw): pass --convert raw to convert the image while it "
            "streams"
        )
        assert pair.real_images("SYD") == []
        report = pair.copy(*to_syd, "--convert", "raw", state=tmp_path / "j.db")
        target = pair.get_real("SYD", report["target_image"])
        assert target["disk_format"] == "raw" and target["status"] == "active"
        assert target["os_hash_value"] == sha512(raw.read_bytes())

        # Larger than that Glance's image_size_cap: its 413, named, with what to do; nothing left there.
        big = create_image(pair.imagehop, "ORD", "too-big", disk_bytes(20 * MiB, seed=7))
        error = pair.copy(big["id"], "--from", "ORD", "--to-cloud", "real", "--to", "SYD", state=tmp_path / "b.db",
                          expect=1)  # fmt: skip
        assert "answered 413" in error["error"] and error["resumable"] is False
        assert "larger than that cloud accepts (image_size_cap or your storage quota)" in error["error"]
        assert [i["name"] for i in pair.real_images("SYD")] == ["qcow"]
    finally:
        pair.real.stop_glance("SYD")


def test_a_reader_is_told_what_role_is_missing(pair: Pair, tmp_path: Path) -> None:
    reader = pair.real.create_user("reader-only", roles=("reader",))
    path = pair.real.clouds_yaml(tmp_path, {"readonly": reader}, merge=pair.clouds_yaml)
    source = create_image(pair.imagehop, "ORD", "for-reader", disk_bytes(MiB, seed=8))
    error = pair.copy(source["id"], "--from", "ORD", "--to-cloud", "readonly", "--to", "ORD", state=tmp_path / "j.db",
                      expect=1, env={**pair.env, "OS_CLIENT_CONFIG_FILE": str(path)})  # fmt: skip
    assert "answered 403" in error["error"]
    assert "your role in that project does not allow it: ask the cloud's operator for the member role" in error["error"]
    assert error["resumable"] is False


def test_clouds_by_project_id_other_domain_and_application_credential(pair: Pair, tmp_path: Path) -> None:
    """clouds.yaml entries as real users write them: a project by id in another domain, and an
    application credential."""
    domain = pair.real.create_domain(f"acme-{int(time.time() * 1000)}")
    user = pair.real.create_user("acme-user", "acme-project", domain_id=domain)
    by_id = {
        "auth": {"auth_url": pair.real.auth_url, "username": user.name, "password": user.password,
                 "user_domain_id": domain, "project_id": user.project_id},
        "region_name": "ORD", "identity_api_version": 3,
    }  # fmt: skip
    cred_id, secret = pair.real.create_application_credential(user)
    app = {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": pair.real.auth_url, "application_credential_id": cred_id,
                 "application_credential_secret": secret},
        "region_name": "IAD",
    }  # fmt: skip
    path = pair.real.clouds_yaml(tmp_path, {"acme": by_id, "acme-app": app}, merge=pair.clouds_yaml)
    env = {**pair.env, "OS_CLIENT_CONFIG_FILE": str(path)}
    data = disk_bytes(2 * MiB, seed=9)
    source = create_image(pair.imagehop, "ORD", "for-acme", data)
    report = pair.copy(source["id"], "--from", "ORD", "--to-cloud", "acme", state=tmp_path / "j.db", env=env)
    assert report["target_region"] == "acme/ORD"
    # --from defaults to the cloud's region_name (IAD for acme-app); --os-cloud names the source cloud.
    back = pair.copy(report["target_image"], "--os-cloud", "acme", "--to-cloud", "acme-app", state=tmp_path / "k.db",
                     env=env)  # fmt: skip
    assert back["source_region"] == "acme/ORD" and back["target_region"] == "acme-app/IAD"
    assert back["method"] == "glance-download"
    assert pair.get_real("IAD", back["target_image"], user)["os_hash_value"] == sha512(data)


def test_a_batch_from_real_glance_and_its_rerun(pair: Pair, tmp_path: Path) -> None:
    marker = f"batch-{int(time.time() * 1000)}"
    sources = [pair.real_image("ORD", f"{marker}-{i}", disk_bytes(MiB, seed=30 + i), batch=marker) for i in range(2)]
    args = ("--all-with", f"batch={marker}", "--from-cloud", "real", "--from", "ORD", "--to-cloud", "imagehop",
            "--to", "IAD")  # fmt: skip
    first = pair.copy(*args, state=tmp_path / "j.db")
    assert first["copied"] == 2 and first["failed"] == []
    assert {r["method"] for r in first["images"]} == {"stream"}
    for source in sources:
        found = pair.imagehop_images("IAD", batch=marker, name=source["name"])
        assert [i["os_hash_value"] for i in found] == [source["os_hash_value"]]
    again = pair.copy(*args, state=tmp_path / "j.db")
    assert [r["already_done"] for r in again["images"]] == [True, True]
    assert len(pair.imagehop_images("IAD", batch=marker)) == 2
