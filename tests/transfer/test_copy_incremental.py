"""Incremental copies (issue 16): the second copy of a slightly changed image moves only the changed
blocks, builds on a base in the target, and gives the same bytes as a full copy; against real
`imagehop serve` processes (both databases) and the `imagehop copy` CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import BLOCK, Cloud, Glance, MiB, create_image, disk_bytes, make_cloud, reference_digest, wait_for
from tests.support.images import ended_tasks, wait_image
from tests.support.transfer import (
    copy_cli,
    copy_killed_when,
    copy_process,
    images_with,
    journal_says,
    two_clouds,
)

SIZE = 128 * MiB  # 64 blocks of data: one changed block is 1.6 % of the image


def dense(seed: int) -> bytes:
    """A disk with data in every block (the worst case for sparse copies, the usual one for real disks)."""
    return disk_bytes(SIZE, seed=seed, layout=[(0, SIZE, "random")])


def changed(data: bytes, *blocks: int) -> bytes:
    """``data`` with a few bytes of each of ``blocks`` flipped: what a day of use changes."""
    out = bytearray(data)
    for index in blocks:
        for at in (index * BLOCK + 17, index * BLOCK + BLOCK // 2):
            out[at] ^= 0xFF
    return bytes(out)


def target_bytes(cloud: Cloud, region: str, image_id: str, user: str = "demo") -> bytes:
    response = httpx.get(f"{cloud.regions[region]}/image/v2/images/{image_id}/file",
                         headers={"X-Auth-Token": cloud.token(user)}, timeout=120)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.content


def assert_identical(image: dict, data: bytes, got: bytes) -> None:
    """The copy is the source's bytes: content digest by DESIGN.md's definition, SHA-512 and MD5."""
    assert hashlib.sha512(got).hexdigest() == hashlib.sha512(data).hexdigest()
    assert image["imagehop.content_digest"] == reference_digest(data)
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["size"] == len(data)


def test_second_pull_builds_on_the_first_copy_and_moves_only_the_changed_block(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=inc-pull"
    first_data = dense(1)
    v1 = create_image(cloud, "ORD", "db-slave-3", first_data)
    first = json.loads(copy_cli(cloud.env(), v1["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                                "--method", "pull", state=tmp_path / "j.db").stdout)  # fmt: skip
    assert first["base"] is None and first["incremental"].startswith("full copy: no active raw image with")
    assert first["bytes_moved"] == SIZE

    data = changed(first_data, 37)
    v2 = create_image(cloud, "ORD", "db-slave-3", data)
    args = [v2["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull"]
    plan = json.loads(copy_cli(cloud.env(), *args, "--dry-run", state=tmp_path / "j.db").stdout)
    assert plan["base"]["image_id"] == first["target_image"]
    assert (plan["base"]["blocks_total"], plan["base"]["blocks_reused"]) == (64, 63)
    assert plan["bytes_to_move"] == BLOCK and plan["image_size"] == SIZE
    assert images_with(cloud, "IAD", tag) == [images_with(cloud, "IAD", tag)[0]]  # the dry run made nothing

    report = json.loads(copy_cli(cloud.env(), *args, state=tmp_path / "j.db").stdout)
    assert report["method"] == "glance-download" and report["base"]["image_id"] == first["target_image"]
    assert report["bytes_moved"] == BLOCK <= 0.02 * SIZE
    assert (report["blocks_reused"], report["blocks_sent"]) == (63, 1)
    assert report["verified_by"] == "content digest"
    new = Glance(cloud, region="IAD").image(report["target_image"])
    assert_identical(new, data, target_bytes(cloud, "IAD", new["id"]))
    # the base is untouched, and both copies are found by the coordinating property
    assert target_bytes(cloud, "IAD", first["target_image"]) == first_data
    assert {i["id"] for i in images_with(cloud, "IAD", tag)} == {first["target_image"], new["id"]}

    # --no-base: the same image copied in full gives the same bytes
    full = json.loads(copy_cli(cloud.env(), *args, "--tag", tag + "-full", "--no-base",
                               state=tmp_path / "j.db").stdout)  # fmt: skip
    assert full["base"] is None and full["incremental"].startswith("full copy: --no-base")
    assert full["bytes_moved"] == SIZE
    assert Glance(cloud, region="IAD").image(full["target_image"])["os_hash_value"] == new["os_hash_value"]


def test_between_clouds_the_client_sends_only_the_changed_blocks_to_imagehop_delta(tmp_path: Path) -> None:
    """Two deployments (SQLite and PostgreSQL, see two_clouds): the second copy streams a delta."""
    tag = "com.mycompany.image-of=inc-stream"
    with two_clouds(tmp_path) as (one, two, env):
        info = httpx.get(two.regions["LON"] + "/image/v2/info/import", headers={"X-Auth-Token": two.token("alt")})
        assert "imagehop-delta" in info.json()["import-methods"]["value"]
        first_data = dense(2)
        v1 = create_image(one, "ORD", "golden", first_data)
        common = ["--from", "ORD", "--to", "LON", "--to-cloud", "far", "--tag", tag]
        first = json.loads(copy_cli(env, v1["id"], *common, "--method", "stream", state=tmp_path / "j.db").stdout)
        assert first["base"] is None and first["bytes_moved"] == SIZE

        data = changed(first_data, 5, 60)
        v2 = create_image(one, "ORD", "golden", data)
        report = json.loads(copy_cli(env, v2["id"], *common, state=tmp_path / "j.db").stdout)
        # auto: web-download would move the whole image; the delta stream moves two blocks
        assert report["method"] == "stream" and report["move"]["upload"] == "delta"
        assert report["base"]["image_id"] == first["target_image"]
        assert report["bytes_moved"] == 2 * BLOCK <= 0.02 * SIZE * 2
        assert (report["blocks_reused"], report["blocks_sent"]) == (62, 2)
        new = Glance(two, "alt", "LON").image(report["target_image"])
        assert_identical(new, data, target_bytes(two, "LON", new["id"], "alt"))
        assert new["disk_format"] == "raw" and new[tag.split("=")[0]] == "inc-stream"


def test_a_base_the_caller_cannot_read_is_never_used(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=inc-foreign"
    data = dense(3)
    # another project's public image in the target, with the same property and the same blocks
    foreign = create_image(cloud, "IAD", "foreign", data, user="admin", visibility="public",
                           **{tag.split("=")[0]: "inc-foreign"})  # fmt: skip
    source = create_image(cloud, "ORD", "mine", changed(data, 1))
    assert foreign["id"] in {i["id"] for i in images_with(cloud, "IAD", tag)}  # visible to demo, not theirs

    args = [source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull"]
    report = json.loads(copy_cli(cloud.env(), *args, state=tmp_path / "j.db").stdout)
    assert report["base"] is None and report["blocks_reused"] == 0 and report["bytes_moved"] == SIZE
    assert "none of the candidate bases has a block map you may read" in report["incremental"]

    refused = copy_cli(cloud.env(), *args, "--tag", tag + "-2", "--base", foreign["id"], state=tmp_path / "j.db",
                       expect=1)  # fmt: skip
    assert "its block map is not readable to you" in refused.stderr

    # the region refuses it too, whoever asks: a pull or a delta import naming it
    glance = Glance(cloud, region="IAD")
    queued = glance.create(name="x", disk_format="raw", container_format="bare")
    request = {
        "name": "glance-download",
        "glance_image_id": source["id"],
        "glance_region": "ORD",
        "x-imagehop-base": {"image_id": foreign["id"], "content_digest": foreign["imagehop.content_digest"]},
    }
    response = glance.post(f"/v2/images/{queued['id']}/import", json={"method": request})
    assert response.status_code == 404 and "No base image found" in response.text
    assert glance.image(queued["id"])["status"] == "queued"


def test_a_changed_or_deleted_base_gives_a_full_copy(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=inc-gone"
    data = dense(4)
    v1 = create_image(cloud, "ORD", "gone", data)
    first = json.loads(copy_cli(cloud.env(), v1["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                                "--method", "pull", state=tmp_path / "j.db").stdout)  # fmt: skip
    v2 = create_image(cloud, "ORD", "gone-2", changed(data, 9))
    glance = Glance(cloud, region="IAD")

    # a pull naming the base with a digest it no longer has: every block is fetched, and said so
    queued = glance.create(name="changed-base", disk_format="raw", container_format="bare")
    stale = {"image_id": first["target_image"], "content_digest": "sha256:" + "0" * 64}
    request = {"name": "glance-download", "glance_image_id": v2["id"], "glance_region": "ORD", "x-imagehop-base": stale}
    assert glance.post(f"/v2/images/{queued['id']}/import", json={"method": request}).status_code == 202
    done = wait_image(glance, queued["id"])
    [task] = ended_tasks(glance, queued["id"])
    result = task["result"]["x-imagehop-delta"]
    assert result["base"] is None and result["blocks_reused"] == 0 and result["bytes_sent"] == SIZE
    assert result["fallback"].startswith(f"the base image {first['target_image']} changed")
    assert done["os_hash_value"] == v2["os_hash_value"]

    # the base deleted after the copy chose it (a --dry-run, then the copy with --base): copied in full
    plan = json.loads(copy_cli(cloud.env(), v2["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                               "--method", "pull", "--dry-run", state=tmp_path / "j.db").stdout)  # fmt: skip
    assert plan["base"]["image_id"] == first["target_image"]
    assert glance.delete(f"/v2/images/{first['target_image']}").status_code == 204
    report = json.loads(copy_cli(cloud.env(), v2["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                                 "--method", "pull", state=tmp_path / "j.db").stdout)  # fmt: skip
    assert report["base"] is None and report["bytes_moved"] == SIZE
    new = glance.image(report["target_image"])
    assert new["os_hash_value"] == v2["os_hash_value"]
    assert new["imagehop.content_digest"] == v2["imagehop.content_digest"]

    # the delta import has nothing to fall back on: it fails, and the image goes back to queued
    delta = glance.create(name="delta", disk_format="raw", container_format="bare")
    stream = b"IHDELTA1"
    assert glance.put(f"/v2/images/{delta['id']}/stage", content=stream,
                      headers={"Content-Type": "application/octet-stream"}).status_code == 204  # fmt: skip
    body = {"name": "imagehop-delta", "base_image_id": new["id"], "base_content_digest": "sha256:" + "1" * 64,
            "content_digest": v2["imagehop.content_digest"], "size": SIZE, "checksum": v2["checksum"],
            "os_hash_value": v2["os_hash_value"]}  # fmt: skip
    assert glance.post(f"/v2/images/{delta['id']}/import", json={"method": body}).status_code == 202
    wait_for(lambda: glance.image(delta["id"]).get("os_glance_failed_import") == "local", "the delta import failed")
    [task] = ended_tasks(glance, delta["id"])
    assert task["status"] == "failure" and "Cannot build on the base" in task["message"]
    assert "changed" in task["message"] and glance.image(delta["id"])["status"] == "queued"


def delete_during(proc: subprocess.Popen, glance: Glance, image_id: str, moment: Callable[[], object],
                  what: str) -> dict:  # fmt: skip
    """Delete ``image_id`` (a base) once ``moment()`` says the running copy ``proc`` got there; its report."""
    try:
        wait_for(moment, what, timeout=120)
        assert glance.delete(f"/v2/images/{image_id}").status_code == 204
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return json.loads(out)


def delta_stream(records: list[tuple[int, bytes, bytes | None]]) -> bytes:
    """The delta stream of formats/delta.py, written here from its definition."""
    out = bytearray(b"IHDELTA1")
    for index, sha, block in records:
        out += index.to_bytes(8, "big") + sha + (b"\x00" if block is None else b"\x01")
        out += block or b""
    return bytes(out)


def test_a_corrupted_block_is_caught_and_a_resent_one_accepted(cloud: Cloud) -> None:
    data = dense(5)
    base = create_image(cloud, "IAD", "base", data)
    new_data = changed(data, 3)
    source = create_image(cloud, "ORD", "new", new_data)
    glance = Glance(cloud, region="IAD")
    blocks = [(i, hashlib.sha256(new_data[i * BLOCK : (i + 1) * BLOCK]).digest()) for i in range(SIZE // BLOCK)]
    good = [(i, sha, new_data[i * BLOCK : (i + 1) * BLOCK] if i == 3 else None) for i, sha in blocks]
    bad_block = bytearray(new_data[3 * BLOCK : 4 * BLOCK])
    bad_block[1000] ^= 1
    bad = [(i, sha, bytes(bad_block) if i == 3 else block) for i, sha, block in good]
    image = glance.create(name="delta", disk_format="raw", container_format="bare")
    body = {"name": "imagehop-delta", "base_image_id": base["id"],
            "base_content_digest": base["imagehop.content_digest"], "content_digest": source["imagehop.content_digest"],
            "size": SIZE, "checksum": source["checksum"], "os_hash_value": source["os_hash_value"]}  # fmt: skip
    headers = {"Content-Type": "application/octet-stream"}

    assert glance.put(f"/v2/images/{image['id']}/stage", content=delta_stream(bad), headers=headers).status_code == 204
    assert glance.post(f"/v2/images/{image['id']}/import", json={"method": body}).status_code == 202
    wait_for(lambda: glance.image(image["id"]).get("os_glance_failed_import") == "local", "the import failed")
    [task] = ended_tasks(glance, image["id"])
    assert task["message"] == "Block 3 does not match its SHA-256: it was corrupted on the way."
    assert glance.image(image["id"])["status"] == "queued"

    assert glance.put(f"/v2/images/{image['id']}/stage", content=delta_stream(good), headers=headers).status_code == 204
    assert glance.post(f"/v2/images/{image['id']}/import", json={"method": body}).status_code == 202
    done = wait_image(glance, image["id"])
    assert_identical(done, new_data, target_bytes(cloud, "IAD", image["id"]))
    tasks = ended_tasks(glance, image["id"])
    result = next(t for t in tasks if t["status"] == "success")["result"]["x-imagehop-delta"]
    assert (result["base"], result["blocks_reused"], result["blocks_sent"]) == (base["id"], 63, 1)


def test_a_copy_killed_mid_way_is_finished_by_the_next_run(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=inc-killed"
    data = dense(6)
    v1 = create_image(cloud, "ORD", "killed", data)
    copy_cli(cloud.env(), v1["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull",
             state=tmp_path / "j.db")  # fmt: skip
    new_data = changed(data, *range(0, 64, 2))  # half the blocks: a pull that lasts long enough to kill
    v2 = create_image(cloud, "ORD", "killed", new_data)
    state = tmp_path / "k.db"
    args = [v2["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull"]
    copy_killed_when(
        cloud.env(),
        *args,
        state=state,
        what="the incremental pull has created its target image",
        ready=lambda: journal_says(state, "created"),
    )
    report = json.loads(copy_cli(cloud.env(), *args, state=state).stdout)
    assert report["steps"] == ["pulled", "tagged", "verified"]  # the killed run's image is the one finished
    assert (report["blocks_reused"], report["blocks_sent"]) == (32, 32)
    new = Glance(cloud, region="IAD").image(report["target_image"])
    assert_identical(new, new_data, target_bytes(cloud, "IAD", new["id"]))
    assert len(images_with(cloud, "IAD", "name=killed")) == 2


def test_a_base_deleted_while_the_delta_is_staged_gives_a_full_stream(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=inc-deleted"
    data = dense(7)
    v1 = create_image(cloud, "ORD", "deleted-base", data)
    common = ["--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "stream"]
    first = json.loads(copy_cli(cloud.env(), v1["id"], *common, state=tmp_path / "j.db").stdout)
    new_data = changed(data, *range(1, 64))  # all blocks but one: the client stages 126 MiB, long enough
    v2 = create_image(cloud, "ORD", "deleted-base", new_data)
    glance = Glance(cloud, region="IAD")
    state = tmp_path / "k.db"
    proc = copy_process(cloud.env(), v2["id"], *common, state=state)

    def staging() -> list[dict]:  # the delta is being staged: the base was chosen and named; now it goes
        return [i for i in glance.get("/v2/images?os_hidden=true").json()["images"] if i["status"] == "uploading"]

    report = delete_during(proc, glance, first["target_image"], staging, "the delta is being staged")
    assert report["base"] is None and report["blocks_reused"] == 0
    assert report["incremental"].startswith("full copy: ") and first["target_image"] in report["incremental"]
    assert report["bytes_moved"] == SIZE
    new = glance.image(report["target_image"])
    assert_identical(new, new_data, target_bytes(cloud, "IAD", new["id"]))
    # nothing half-made is left: the copy is the one image with the property
    assert [i["id"] for i in images_with(cloud, "IAD", tag)] == [new["id"]]
    assert [i for i in glance.get("/v2/images?os_hidden=true").json()["images"] if i["name"] == "deleted-base"] == []


def test_a_delta_stream_killed_mid_way_is_finished_by_the_next_run(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=inc-stream-killed"
    data = dense(8)
    v1 = create_image(cloud, "ORD", "stream-killed", data)
    common = ["--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "stream"]
    copy_cli(cloud.env(), v1["id"], *common, state=tmp_path / "j.db")
    new_data = changed(data, *range(0, 64, 2))
    v2 = create_image(cloud, "ORD", "stream-killed", new_data)
    glance = Glance(cloud, region="IAD")
    state = tmp_path / "k.db"
    copy_killed_when(cloud.env(), v2["id"], *common, state=state, what="the delta is being staged",
                     ready=lambda: [i for i in glance.get("/v2/images?os_hidden=true").json()["images"]
                                    if i["status"] == "uploading"])  # fmt: skip
    assert not journal_says(state, "delta")  # killed mid-way
    report = json.loads(copy_cli(cloud.env(), v2["id"], *common, state=state).stdout)
    assert report["move"]["upload"] == "delta" and report["steps"][-3:] == ["delta", "tagged", "verified"]
    assert (report["blocks_reused"], report["blocks_sent"]) == (32, 32)
    new = glance.image(report["target_image"])
    assert_identical(new, new_data, target_bytes(cloud, "IAD", new["id"]))
    assert len([i for i in images_with(cloud, "IAD", "name=stream-killed")]) == 2


def test_bad_delta_imports_are_refused_and_change_nothing(backend: str, tmp_path: Path) -> None:
    """On a cloud with a 1 MiB image_size_total quota: the quota counts what a small stage may build."""
    with make_cloud(tmp_path, backend, regions=("ORD",), config="[images]\nimage_size_total = 1\n") as cloud:
        glance = Glance(cloud)
        data = disk_bytes(2 * MiB, seed=9, layout=[(0, 2 * MiB, "random")])
        # Chunked, without a Content-Length: as Glance, an upload's declared length counts against the size
        # quota before its bytes arrive (2 MiB declared would be over 1 MiB); unknown, it counts 0.
        base = glance.create(name="base", disk_format="raw", container_format="bare")
        upload = glance.put(f"/v2/images/{base['id']}/file", content=iter([data]),
                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert upload.status_code == 204, upload.text
        base = glance.image(base["id"])
        digest = base["imagehop.content_digest"]
        body = {"name": "imagehop-delta", "base_image_id": base["id"], "base_content_digest": digest,
                "content_digest": digest, "size": 2 * MiB, "checksum": base["checksum"],
                "os_hash_value": base["os_hash_value"]}  # fmt: skip
        stream = delta_stream([(0, hashlib.sha256(data).digest(), None)])
        octet = {"Content-Type": "application/octet-stream"}

        def attempt(image_id: str, method: dict) -> httpx.Response:
            return glance.post(f"/v2/images/{image_id}/import", json={"method": method})

        queued = glance.create(name="not-staged", disk_format="raw", container_format="bare")
        response = attempt(queued["id"], body)
        assert response.status_code == 409 and "needs to be staged" in response.text
        staged = glance.create(name="staged", disk_format="raw", container_format="bare")
        assert glance.put(f"/v2/images/{staged['id']}/stage", content=stream, headers=octet).status_code == 204
        for broken, words in (({"size": "big"}, "size"), ({"checksum": None}, "checksum")):
            response = attempt(staged["id"], {**body, **broken})
            assert response.status_code == 400 and words in response.json()["message"]
        response = attempt(staged["id"], body)
        assert response.status_code == 413 and "image_size_total" in response.text
        vhd = glance.create(name="vhd", disk_format="vhd", container_format="bare")
        assert glance.put(f"/v2/images/{vhd['id']}/stage", content=stream, headers=octet).status_code == 204
        response = attempt(vhd["id"], body)
        assert response.status_code == 400 and "builds raw images" in response.text
        assert glance.image(queued["id"])["status"] == "queued"
        for image in (staged, vhd):
            after = glance.image(image["id"])
            assert after["status"] == "uploading" and "os_glance_import_task" not in after


def stored_bytes(cloud: Cloud, region: str) -> int:
    """Disk space the region's ``file`` blob store uses for committed blobs (allocated blocks)."""
    root = cloud.data_dir / "regions" / region / "objects" / "data"
    return sum(f.stat().st_blocks * 512 for f in root.rglob("*") if f.is_file())


def test_the_delta_refers_to_its_bases_bytes_and_outlives_it(cloud: Cloud, tmp_path: Path) -> None:
    """The second copy stores only the changed blocks (the rest is the base's bytes, referred to); it
    is byte-identical to a full copy; deleting it frees only its own bytes; deleting the base after it
    was built leaves it whole, and the base's bytes go with the last image that refers to them."""
    tag = "com.mycompany.image-of=inc-refs"
    data = dense(11)
    start = stored_bytes(cloud, "IAD")
    v1 = create_image(cloud, "ORD", "refs", data)
    pull = ["--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull"]
    base = json.loads(copy_cli(cloud.env(), v1["id"], *pull, state=tmp_path / "j.db").stdout)["target_image"]
    with_base = stored_bytes(cloud, "IAD")
    assert SIZE <= with_base - start <= SIZE + MiB

    new_data = changed(data, 7, 40)
    v2 = create_image(cloud, "ORD", "refs", new_data)
    glance = Glance(cloud, region="IAD")

    def delta(journal: str) -> str:
        report = json.loads(copy_cli(cloud.env(), v2["id"], *pull, state=tmp_path / journal).stdout)
        assert report["base"]["image_id"] == base and (report["blocks_reused"], report["blocks_sent"]) == (62, 2)
        return report["target_image"]

    first_delta = delta("d1.db")
    with_delta = stored_bytes(cloud, "IAD")
    assert 2 * BLOCK <= with_delta - with_base <= 2 * BLOCK + MiB  # the two changed blocks, nothing more

    # byte-identical to a full copy of the same image
    full = json.loads(copy_cli(cloud.env(), v2["id"], *pull[:4], "--method", "pull", "--no-base",
                               "--tag", tag + "-full", state=tmp_path / "j.db").stdout)["target_image"]  # fmt: skip
    full_image, delta_image = glance.image(full), glance.image(first_delta)
    for key in ("imagehop.content_digest", "os_hash_value", "checksum", "size"):
        assert delta_image[key] == full_image[key]
    assert hashlib.sha512(target_bytes(cloud, "IAD", first_delta)).digest() == hashlib.sha512(new_data).digest()
    assert_identical(delta_image, new_data, target_bytes(cloud, "IAD", first_delta))
    assert glance.delete(f"/v2/images/{full}").status_code == 204
    assert stored_bytes(cloud, "IAD") == with_delta

    # the delta deleted: the base is whole, and only the delta's own bytes were freed
    assert glance.delete(f"/v2/images/{first_delta}").status_code == 204
    assert stored_bytes(cloud, "IAD") == with_base
    assert target_bytes(cloud, "IAD", base) == data

    # built again, then the base deleted: the delta reads the same, whole or by ranges; the base's
    # bytes stay while the delta refers to them
    second_delta = delta("d2.db")
    assert stored_bytes(cloud, "IAD") - with_base <= 2 * BLOCK + MiB
    assert glance.delete(f"/v2/images/{base}").status_code == 204
    assert stored_bytes(cloud, "IAD") - with_base <= 2 * BLOCK + MiB
    assert_identical(glance.image(second_delta), new_data, target_bytes(cloud, "IAD", second_delta))
    url = f"{cloud.regions['IAD']}/image/v2/images/{second_delta}/file"
    for lo, hi in ((7 * BLOCK - 100, 7 * BLOCK + 100), (39 * BLOCK + 5, 41 * BLOCK + 7), (SIZE - 10, SIZE - 1)):
        part = httpx.get(url, headers={"X-Auth-Token": cloud.token("demo"), "Range": f"bytes={lo}-{hi}"})
        assert part.status_code == 206 and part.content == new_data[lo : hi + 1]
    # and it is a base in its turn: a copy made from it by a pull reads the same
    again = json.loads(copy_cli(cloud.env(), second_delta, "--from", "IAD", "--to", "ORD", "--method", "pull",
                                "--no-base", state=tmp_path / "j.db").stdout)["target_image"]  # fmt: skip
    assert target_bytes(cloud, "ORD", again) == new_data

    # the last image that refers to the base's bytes goes: all of them are freed
    assert glance.delete(f"/v2/images/{second_delta}").status_code == 204
    assert stored_bytes(cloud, "IAD") == start


def test_a_base_deleted_during_a_pull_still_gives_the_right_image(cloud: Cloud, tmp_path: Path) -> None:
    """Deleted while the copy runs: either the build holds its bytes already (and uses them), or the
    base is seen gone (by the client or the region) and the image is copied in full; it is right
    either way."""
    tag = "com.mycompany.image-of=inc-mid"
    data = dense(12)
    v1 = create_image(cloud, "ORD", "mid", data)
    pull = ["--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull"]
    base = json.loads(copy_cli(cloud.env(), v1["id"], *pull, state=tmp_path / "j.db").stdout)["target_image"]
    new_data = changed(data, *range(0, 64, 2))
    v2 = create_image(cloud, "ORD", "mid", new_data)
    glance = Glance(cloud, region="IAD")
    state = tmp_path / "k.db"
    proc = copy_process(cloud.env(), v2["id"], *pull, state=state)
    report = delete_during(
        proc, glance, base, lambda: journal_says(state, "created"), "the incremental pull has created its target image"
    )
    # the pin came first (32 blocks taken from the base), or the base was seen gone (a full copy)
    assert report["blocks_reused"] in (0, 32)
    assert_identical(glance.image(report["target_image"]), new_data, target_bytes(cloud, "IAD", report["target_image"]))
