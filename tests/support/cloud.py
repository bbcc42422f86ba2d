"""Real `imagehop serve` processes for the tests, on SQLite or PostgreSQL.

``make_cloud`` describes a deployment (not yet started); a ``Cloud`` starts the real process, waits
for its ``endpoints.json``, and stops it (SIGTERM) or kills it (SIGKILL) on demand. Fixtures in
``tests/conftest.py`` own the processes, so they are stopped even when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from tests.support.wait import wait_for

# PostgreSQL runs on every machine of this kind (and in CI); tests create and drop their own databases.
PG_ADMIN_URL = os.environ.get("IMAGEHOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")

_created_pg_databases: list[str] = []

TASK_SEGMENT = 8 << 20  # exported VHDs over 8 MiB become SLOs: task tests see both shapes
TASK_SETTINGS = {
    "export_segment_size": TASK_SEGMENT,
    "retry_after": 1,
    "poll_interval": 0.05,
    "max_active_per_tenant": 50,
    "import_max_virtual_size": 1 << 40,
}


def task_config(**changes: object) -> str:
    """A ``[tasks]`` table for ``make_cloud(config=...)``: TASK_SETTINGS with ``changes``."""
    settings = {**TASK_SETTINGS, **changes}
    return "[tasks]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())


def create_pg_database() -> str:
    """A new, empty PostgreSQL database; dropped at the end of the test session."""
    name = f"imagehop_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created_pg_databases.append(name)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_databases() -> None:
    """Drop every database ``create_pg_database`` made in this session."""
    if not _created_pg_databases:
        return
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        while _created_pg_databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{_created_pg_databases.pop()}" WITH (FORCE)')


def database_url(backend: str, path: Path) -> str:
    """A fresh database of ``backend``: a SQLite file under ``path`` or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{path}"
    return create_pg_database()


@dataclass
class Cloud:
    """A running `imagehop serve` process and what a client needs to reach it."""

    data_dir: Path
    config_file: Path | None
    proc: subprocess.Popen | None = None
    endpoints: dict = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    backend: str = "sqlite"
    _credentials: dict[str, dict] | None = None

    @property
    def identity_url(self) -> str:
        return self.endpoints["identity"]

    @property
    def regions(self) -> dict[str, str]:
        return self.endpoints["regions"]

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def credentials(self) -> dict[str, dict]:
        """``imagehop credentials --json``, read once per start of the server."""
        if self._credentials is None:
            self._credentials = self._read_credentials()
        return self._credentials

    def _read_credentials(self) -> dict[str, dict]:
        args = [sys.executable, "-m", "imagehop", "credentials", "--json", "--data-dir", str(self.data_dir)]
        if self.config_file is not None:
            args += ["--config", str(self.config_file)]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return {entry["user"]: entry for entry in json.loads(out)}

    def tenant(self, user: str = "demo") -> str:
        return self.credentials()[user]["tenant_id"]

    def token(self, user: str = "demo") -> str:
        """A v3 project-scoped token for a built-in user."""
        entry = self.credentials()[user]
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": {"id": "default"}, "password": entry["password"]}},
                },
                "scope": {"project": {"id": entry["tenant_id"]}},
            }
        }
        response = httpx.post(f"{self.identity_url}/v3/auth/tokens", json=body)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    def env(self, cloud: str = "imagehop") -> dict[str, str]:
        """Environment for CLI clients (openstack, swift, glance, imagehop copy) pointed at this cloud."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), OS_CLOUD=cloud)
        return env

    def start(self, timeout: float = 60) -> None:
        endpoints_file = self.data_dir / "endpoints.json"
        endpoints_file.unlink(missing_ok=True)
        self._credentials = None
        args = [sys.executable, "-m", "imagehop", "serve", "--data-dir", str(self.data_dir), "--port", "0"]
        if self.config_file is not None:
            args += ["--config", str(self.config_file)]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child writes to it; closed when it is replaced)
        env = {**os.environ, **self.extra_env}
        self.proc = subprocess.Popen([*args, *self.extra_args], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"imagehop serve exited with {self.proc.returncode}: {self.log()}")
            return endpoints_file.exists()

        try:
            wait_for(ready, "imagehop serve writes endpoints.json", timeout=timeout, every=0.02)
        except AssertionError:
            self.kill()
            raise RuntimeError(f"imagehop serve did not start in {timeout} s: {self.log()}") from None
        self.endpoints = json.loads(endpoints_file.read_text())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Cloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process with ``sig`` (SIGTERM: a clean stop) and return its exit status."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"imagehop serve did not stop on signal {sig} within 30 s") from None

    def kill(self) -> None:
        """A crash: SIGKILL, no clean-up of any kind in the process."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def partial_files(self, region: str = "ORD") -> list[Path]:
        """Files the object engine of ``region`` is writing right now (not yet committed): in-flight
        writes, observable from outside the process. A crash test uses them as its mid-point."""
        tmp = self.data_dir / "regions" / region / "objects" / "tmp"
        return sorted(tmp.iterdir()) if tmp.exists() else []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def logged(self) -> str:
        """The server's messages over all its runs: ``imagehop.log`` in its data dir (its standard
        error, where warnings also go, when there is no such file)."""
        path = self.data_dir / "imagehop.log"
        path = path if path.exists() else self.log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, text: str, timeout: float = 60) -> None:
        """Wait until the server's log holds ``text`` (a line it writes when something happened)."""
        wait_for(lambda: text in self.logged(), f"the server log says {text!r}", timeout=timeout)


def make_cloud(
    base: Path,
    backend: str = "sqlite",
    regions: tuple[str, ...] = ("ORD", "IAD"),
    config: str = "",
    env: dict[str, str] | None = None,
) -> Cloud:
    """A cloud (not yet started) on ``backend``; on PostgreSQL every database is a new one.

    ``config`` is TOML appended to its config file (e.g. a ``[tasks]`` table); ``env`` adds
    ``IMAGEHOP_*`` variables to the server's environment.
    """
    base.mkdir(parents=True, exist_ok=True)
    config_file = None
    lines: list[str] = []
    if backend == "postgresql":
        lines.append(f'[identity]\ndatabase_url = "{create_pg_database()}"\n')
        for name in regions:
            lines.append(f'[[regions]]\nname = "{name}"\ndatabase_url = "{create_pg_database()}"\n')
    elif backend != "sqlite":
        raise ValueError(f"unknown backend {backend!r}")
    if lines or config:
        config_file = base / "imagehop.toml"
        config_file.write_text("\n".join([*lines, config]))
    cloud = Cloud(base / "data", config_file, backend=backend)
    if backend == "sqlite":
        cloud.extra_args = ["--regions", ",".join(regions)]
    cloud.extra_env.update(env or {})
    return cloud
