"""The story `make demo` tells: Rackspace's "Transfer images between regions", end to end.

A small real disk (ext4, made with ``mke2fs -d``, holding a file that names the server) is uploaded
to ORD; server "Slave Database 3" boots from it and is imaged; ``imagehop copy`` moves the image to
IAD with ``com.mycompany.image-of=db-slave-3``; the image is found there by that property; a server
boots from it; the new server's disk has the same content digest, and the file reads back with
``debugfs``. Every call goes over the public APIs, as a user's tools would.
"""

from __future__ import annotations

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


class Story:
    def __init__(self, cloud: CloudSession, clouds_yaml: str, say: Callable[[str], None]) -> None:
        self.cloud = cloud
        self.clouds_yaml = clouds_yaml
        self.say = say

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
        return self.call("GET", f"{url}/images/{image['id']}")

    def boot(self, region: str, name: str, image_id: str) -> dict:
        url = self.compute_url(region)
        body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "2", "networks": "none"}}
        server = self.call("POST", url + "/servers", json=body)["server"]
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
        images = self.image_url(region)
        return self.wait(
            f"image {name}", lambda: self.call("GET", f"{images}/images/{image_id}"), "active", ("killed", "deleted")
        )

    def run(self, work: Path) -> dict[str, Any]:
        say = self.say
        say("[bold]5.[/] A small real disk: ext4 made with mke2fs -d, holding /etc/hostname = db-slave-3")
        disk = self.make_disk(work)
        base = self.upload("ORD", "db-base", disk)
        say(f"   uploaded to ORD as image {base['id']} ({base['size']:,} bytes, {base.get('imagehop.content_digest')})")

        say(f"[bold]6.[/] Boot {SERVER_NAME!r} in ORD, then create an image of it")
        server = self.boot("ORD", SERVER_NAME, base["id"])
        say(f"   server {server['id']} is {server['status']}")
        image = self.snapshot("ORD", server["id"], "db-slave-3-image")
        say(f"   image {image['id']} is {image['status']} (image_type={image.get('image_type')})")

        say(f"[bold]7.[/] imagehop copy {image['id']} --from ORD --to IAD --tag {TAG_KEY}={TAG_VALUE} --method stream")
        subprocess.run(
            [sys.executable, "-m", "imagehop", "copy", image["id"], "--from", "ORD", "--to", "IAD",
             "--tag", f"{TAG_KEY}={TAG_VALUE}", "--method", "stream", "--state", str(work / "journal.db")],
            check=True, env=self._env(),
        )  # fmt: skip

        say(f"[bold]8.[/] Find it in IAD: GET /v2/images?{TAG_KEY}={TAG_VALUE}")
        found = self.call("GET", self.image_url("IAD") + "/images", params={TAG_KEY: TAG_VALUE})["images"]
        if len(found) != 1:
            raise RuntimeError(f"expected exactly one image with {TAG_KEY}={TAG_VALUE} in IAD, found {len(found)}")
        copy = found[0]
        say(f"   exactly one: {copy['id']} ({copy['name']}), digest {copy.get('imagehop.content_digest')}")

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


def run_story(cloud: CloudSession, clouds_yaml: str, say: Callable[[str], None]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="imagehop-demo-"))
    try:
        return Story(cloud, clouds_yaml, say).run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
