"""A scaled-out imagehop on one machine: identity, region API processes and workers as separate
processes on one PostgreSQL database, object bytes in a real S3 store (SeaweedFS).

The processes are the lines of ``deploy/Procfile`` (the documented test topology), run as a process
manager would run them, with this topology's ``IMAGEHOP_CONFIG`` and worker ports.

    topo = Topology.start(base, seaweedfs)      # identity; ORD (2 processes on one port); IAD; 2 workers
    topo.cloud                                  # a Cloud view (regions, token(), credentials(), env())
    topo.start_process("ord-b", "serve", "--role", "region", "--regions", "ORD", "--port", str(port))
    topo.kill("worker-1")                       # SIGKILL
    topo.stop()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers.seaweedfs import SeaweedFS
from tests.support.cloud import Cloud, create_pg_database
from tests.support.ports import free_port
from tests.support.wait import wait_for


@dataclass
class Topology:
    base: Path
    config: Path
    database_url: str
    ports: dict[str, int]
    cloud: Cloud
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, base: Path, s3: SeaweedFS, workers: int = 2) -> Topology:
        base.mkdir(parents=True, exist_ok=True)
        database_url = create_pg_database()
        ports = {name: free_port() for name in ("identity", "ORD", "IAD")}
        config = base / "imagehop.toml"
        suffix = os.urandom(4).hex()
        regions = []
        for name in ("ORD", "IAD"):
            regions.append(
                f'[[regions]]\nname = "{name}"\nport = {ports[name]}\nblob_store = "s3"\n'
                f's3_endpoint = "{s3.endpoint}"\ns3_bucket = "{name.lower()}-{suffix}"\n'
                f's3_access_key = "{s3.access_key}"\ns3_secret_key = "{s3.secret_key}"\nblob_delete_grace = 1\n'
            )
        config.write_text(
            f'host = "127.0.0.1"\nport = {ports["identity"]}\ndata_dir = "data"\ndatabase_url = "{database_url}"\n\n'
            "[tasks]\npoll_interval = 0.1\nhousekeeping_interval = 0.5\nmax_active_per_tenant = 100\n\n"
            + "\n".join(regions)
        )
        cloud = Cloud(base / "data", config)
        cloud.endpoints = {
            "identity": f"http://127.0.0.1:{ports['identity']}",
            "regions": {name: f"http://127.0.0.1:{ports[name]}" for name in ("ORD", "IAD")},
        }
        topo = cls(base, config, database_url, ports, cloud)
        worker_ports = {f"WORKER{i}_PORT": free_port() for i in (1, 2)}
        health = {
            "identity": cloud.identity_url, "ord": cloud.regions["ORD"], "iad": cloud.regions["IAD"],
            **{f"worker-{i}": f"http://127.0.0.1:{worker_ports[f'WORKER{i}_PORT']}" for i in (1, 2)},
        }  # fmt: skip
        try:
            for name, command in procfile():
                name = name.replace("worker", "worker-")
                topo.start_command(name, command, health=health[name], env=worker_ports)
        except BaseException:
            topo.stop()
            raise
        return topo

    def start_worker(self, name: str) -> None:
        port = free_port()
        self.start_process(name, "worker", "--regions", "ORD,IAD", "--port", str(port),
                           health=f"http://127.0.0.1:{port}")  # fmt: skip

    def start_process(self, name: str, *args: str, health: str) -> subprocess.Popen:
        """Start ``imagehop ARGS --config <config>`` and wait until its ``/readyz`` answers 200."""
        return self._start(name, [sys.executable, "-m", "imagehop", *args, "--config", str(self.config)], health, {})

    def start_command(self, name: str, command: str, health: str, env: dict[str, int]) -> subprocess.Popen:
        """A Procfile line, through the shell as a process manager runs it."""
        return self._start(name, ["bash", "-c", f"exec {command}"], health, {k: str(v) for k, v in env.items()})

    def _start(self, name: str, args: list[str], health: str, env: dict[str, str]) -> subprocess.Popen:
        log = open(self.base / f"{name}.log", "ab")  # noqa: SIM115 (the child writes to it)
        path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        environment = {**os.environ, **env, "PATH": path, "IMAGEHOP_CONFIG": str(self.config)}
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.base, env=environment)
        log.close()
        self.procs[name] = proc
        self.health[name] = health

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log(name)}")
            try:
                return httpx.get(health + "/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, f"{name} is ready", timeout=90, every=0.1)
        return proc

    def log(self, name: str) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_logs(self) -> str:
        return "".join(self.log(name) for name in self.procs if name.startswith("worker"))

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def procfile() -> list[tuple[str, str]]:
    """The ``name: command`` lines of ``deploy/Procfile``."""
    path = Path(__file__).resolve().parents[2] / "deploy" / "Procfile"
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [tuple(part.strip() for part in line.split(":", 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]
