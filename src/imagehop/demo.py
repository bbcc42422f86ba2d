"""The story `make demo` tells: Rackspace's "Transfer images between regions", end to end.

A small real disk (ext4, made with ``mke2fs -d``, holding a file that names the server) is uploaded
to ORD; server "Slave Database 3" boots from it and is imaged; ``imagehop copy`` moves the image to
IAD with ``com.mycompany.image-of=db-slave-3``; the image is found there by that property; a server
boots from it; the new server's disk has the same content digest, and the file reads back with
``debugfs``. Every call goes over the public APIs, as a user's tools would.

The demo runs any number of times on one data dir. It notes the id of every server and image it
makes in ``demo.json`` there, and a run starts by deleting what the previous run made (by id, and
nothing else), so the story finds exactly one copy each time while the cloud keeps its credentials
and whatever the user added to it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagehop.transfer.clouds import CloudSession

TAG_KEY, TAG_VALUE = "com.mycompany.image-of", "db-slave-3"
SERVER_NAME = "Slave Database 3"
DISK_MIB = 64
DIGEST_KEY = "imagehop.content_digest"


STATE_FILE = "demo.json"


class Made:
    """The servers and images a demo run made, by region, kept in ``demo.json`` as they are made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.things: dict[str, dict[str, list[str]]] = {"servers": {}, "images": {}}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
                self.things = {kind: dict(loaded.get(kind, {})) for kind in self.things}
            except (ValueError, AttributeError):
                pass  # unreadable: nothing to clean up, the file is rewritten below

    def add(self, kind: str, region: str, thing_id: str) -> None:
        self.things[kind].setdefault(region, []).append(thing_id)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.things, indent=2) + "\n")
        os.replace(tmp, self.path)

    def forget(self) -> None:
        self.things = {"servers": {}, "images": {}}
        self.path.unlink(missing_ok=True)


class Story:
    def __init__(self, cloud: CloudSession, clouds_yaml: str, say: Callable[[str], None], made: Made) -> None:
        self.cloud = cloud
        self.clouds_yaml = clouds_yaml
        self.say = say
        self.made = made

    # --- API helpers -----------------------------------------------------------------------------

    def image_url(self, region: str) -> str:
        return self.cloud.endpoint("image", region) + "/v2"

    def compute_url(self, region: str) -> str:
        return self.cloud.endpoint("compute", region)

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.cloud.session.request(url, method, **kwargs)
        return response.json() if response.content else None

    def wait(self, what: str, get: Callable[[], dict[str, Any]], done: str, failed: tuple[str, ...]) -> dict:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            thing = get()
            status = str(thing.get("status", "")).lower()
            if status == done.lower():
                return thing
            if status in failed:
                raise RuntimeError(f"{what} ended {status}: {thing.get('fault') or thing}")
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not become {done} in 300 s")

    # --- steps -----------------------------------------------------------------------------------

    def clean_up_last_run(self) -> None:
        """Delete the servers and images the previous run made (by id); nothing else is touched."""
        things = self.made.things
        counts = {kind: sum(len(ids) for ids in things[kind].values()) for kind in things}
        if not any(counts.values()):
            return
        self.say(
            f"Removing what the last demo run made: {counts['servers']} servers, {counts['images']} images "
            f"(their ids are in {STATE_FILE}; nothing else in the cloud is touched)"
        )
        for region, ids in things["servers"].items():
            for server_id in ids:
                self._delete(f"{self.compute_url(region)}/servers/{server_id}")
        for region, ids in things["servers"].items():
            for server_id in ids:
                self._wait_gone(f"{self.compute_url(region)}/servers/{server_id}")
        for region, ids in things["images"].items():
            for image_id in ids:
                self._delete(f"{self.image_url(region)}/images/{image_id}")
        self.made.forget()

    def _delete(self, url: str) -> None:
        response = self.cloud.session.delete(url, raise_exc=False)
        if response.status_code not in (202, 204, 404):
            self.say(f"   could not delete {url}: {response.status_code} {response.text[:200]}")

    def _wait_gone(self, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.cloud.session.get(url, raise_exc=False).status_code != 404:
            time.sleep(0.2)

    def tagged(self, region: str) -> list[dict]:
        return self.call("GET", self.image_url(region) + "/images", params={TAG_KEY: TAG_VALUE})["images"]

    def make_disk(self, work: Path) -> Path:
        root = work / "rootfs"
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "hostname").write_text("db-slave-3\n")
        (root / "README").write_text(f"This disk belongs to {SERVER_NAME}.\n")
        disk = work / "db-slave-3.raw"
        mke2fs = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
        subprocess.run([mke2fs, "-q", "-t", "ext4", "-d", str(root), "-L", "dbslave3", str(disk), f"{DISK_MIB}M"],
                       check=True, capture_output=True)  # fmt: skip
        return disk

    def upload(self, region: str, name: str, disk: Path) -> dict:
        url = self.image_url(region)
        image = self.call(
            "POST", url + "/images", json={"name": name, "disk_format": "raw", "container_format": "bare"}
        )
        with open(disk, "rb") as handle:
            self.cloud.session.put(
                f"{url}/images/{image['id']}/file", data=handle,
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
        self.made.add("images", region, image["id"])
        return self.call("GET", f"{url}/images/{image['id']}")

    def boot(self, region: str, name: str, image_id: str) -> dict:
        url = self.compute_url(region)
        body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "2", "networks": "none"}}
        server = self.call("POST", url + "/servers", json=body)["server"]
        self.made.add("servers", region, server["id"])
        return self.wait(
            f"server {name}", lambda: self.call("GET", f"{url}/servers/{server['id']}")["server"], "ACTIVE", ("error",)
        )

    def snapshot(self, region: str, server_id: str, name: str) -> dict:
        url = self.compute_url(region)
        response = self.cloud.session.post(
            f"{url}/servers/{server_id}/action", json={"createImage": {"name": name}},
            headers={"OpenStack-API-Version": "compute 2.45"},
        )  # fmt: skip
        image_id = response.json()["image_id"]
        self.made.add("images", region, image_id)
        images = self.image_url(region)
        return self.wait(
            f"image {name}", lambda: self.call("GET", f"{images}/images/{image_id}"), "active", ("killed", "deleted")
        )

    def run(self, work: Path) -> dict[str, Any]:
        say = self.say
        self.clean_up_last_run()
        say("[bold]5.[/] A small real disk: ext4 made with mke2fs -d, holding /etc/hostname = db-slave-3")
        disk = self.make_disk(work)
        base = self.upload("ORD", "db-base", disk)
        say(f"   uploaded to ORD as image {base['id']} ({base['size']:,} bytes, {base.get('imagehop.content_digest')})")

        say(f"[bold]6.[/] Boot {SERVER_NAME!r} in ORD, then create an image of it")
        server = self.boot("ORD", SERVER_NAME, base["id"])
        say(f"   server {server['id']} is {server['status']}")
        image = self.snapshot("ORD", server["id"], "db-slave-3-image")
        say(f"   image {image['id']} is {image['status']} (image_type={image.get('image_type')})")

        before = {i["id"] for i in self.tagged("IAD")}
        say(f"[bold]7.[/] imagehop copy {image['id']} --from ORD --to IAD --tag {TAG_KEY}={TAG_VALUE} --method tasks")
        subprocess.run(
            [sys.executable, "-m", "imagehop", "copy", image["id"], "--from", "ORD", "--to", "IAD",
             "--tag", f"{TAG_KEY}={TAG_VALUE}", "--method", "tasks", "--state", str(work / "journal.db")],
            check=True, env=self._env(),
        )  # fmt: skip

        say(f"[bold]8.[/] Find it in IAD: GET /v2/images?{TAG_KEY}={TAG_VALUE}")
        found = self.tagged("IAD")
        digest = image.get("imagehop.content_digest")
        # The copy is the tagged image that was not there before (or, had it been, the one with this disk).
        ours = [i for i in found if i["id"] not in before] or [i for i in found if i.get(DIGEST_KEY) == digest]
        if not ours:
            raise RuntimeError(f"no image with {TAG_KEY}={TAG_VALUE} and digest {digest} in IAD after the copy")
        copy = ours[0]
        if copy["id"] not in before:
            self.made.add("images", "IAD", copy["id"])
        if len(found) == 1:
            say(f"   exactly one: {copy['id']} ({copy['name']}), digest {copy.get(DIGEST_KEY)}")
        else:
            say(f"   {len(found)} images carry the tag (the others are not the demo's); the copy: {copy['id']}")

        say("[bold]9.[/] Boot a server in IAD from it, image that server, compare")
        twin = self.boot("IAD", SERVER_NAME, copy["id"])
        check = self.snapshot("IAD", twin["id"], "db-slave-3-check")
        same = check.get("imagehop.content_digest") == image.get("imagehop.content_digest")
        say(f"   ORD server disk {image.get('imagehop.content_digest')}")
        say(f"   IAD server disk {check.get('imagehop.content_digest')}  -> {'same disk' if same else 'DIFFERENT'}")
        if not same:
            raise RuntimeError("the server booted in IAD does not have the disk of the server in ORD")

        downloaded = work / "iad-server.raw"
        with open(downloaded, "wb") as handle:
            response = self.cloud.session.get(f"{self.image_url('IAD')}/images/{check['id']}/file", stream=True)
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)
        debugfs = shutil.which("debugfs") or "/usr/sbin/debugfs"
        hostname = subprocess.run([debugfs, "-R", "cat /etc/hostname", str(downloaded)], capture_output=True,
                                  text=True, check=True).stdout.strip()  # fmt: skip
        say(f"   debugfs -R 'cat /etc/hostname' on the IAD server's disk: {hostname}")
        return {"source_image": image["id"], "target_image": copy["id"], "same_digest": same, "hostname": hostname}

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=self.clouds_yaml, OS_CLOUD="imagehop")
        return env


def run_story(cloud: CloudSession, clouds_yaml: str, say: Callable[[str], None], data_dir: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="imagehop-demo-"))
    try:
        return Story(cloud, clouds_yaml, say, Made(data_dir / STATE_FILE)).run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
