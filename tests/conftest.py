"""Shared fixtures: fresh databases on SQLite and PostgreSQL, and real `imagehop serve` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.peers import swift as swift_peer

# PostgreSQL runs on every machine of this kind (and in CI); tests create and drop their own databases.
PG_ADMIN_URL = os.environ.get("IMAGEHOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def create_pg_database() -> str:
    """A new, empty PostgreSQL database; dropped at the end of the test session."""
    name = f"imagehop_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created_pg_databases.append(name)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


_created_pg_databases: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _created_pg_databases:
        return
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in _created_pg_databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(backend: str, path: Path) -> str:
    """A fresh database of ``backend``: a SQLite file under ``path`` or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{path}"
    return create_pg_database()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.param


@dataclass
class Cloud:
    """A running `imagehop serve` process and what a client needs to reach it."""

    data_dir: Path
    config_file: Path | None
    proc: subprocess.Popen | None = None
    endpoints: dict = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
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

    def credentials(self) -> dict[str, dict]:
        """``imagehop credentials --json``, read once per start of the server."""
        if self._credentials is None:
            self._credentials = self._read_credentials()
        return self._credentials

    def _read_credentials(self) -> dict[str, dict]:
        out = subprocess.run(
            [sys.executable, "-m", "imagehop", "credentials", "--json", "--data-dir", str(self.data_dir)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {entry["user"]: entry for entry in json.loads(out)}

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
        """Environment for CLI clients (openstack, swift, glance) pointed at this cloud."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), OS_CLOUD=cloud)
        return env

    def start(self, timeout: float = 30) -> None:
        endpoints_file = self.data_dir / "endpoints.json"
        endpoints_file.unlink(missing_ok=True)
        self._credentials = None
        args = [sys.executable, "-m", "imagehop", "serve", "--data-dir", str(self.data_dir), "--port", "0"]
        if self.config_file is not None:
            args += ["--config", str(self.config_file)]
        log = open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab")  # noqa: SIM115
        env = {**os.environ, **self.extra_env}
        self.proc = subprocess.Popen([*args, *self.extra_args], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while not endpoints_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"imagehop serve exited with {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"imagehop serve did not start in {timeout} s: {self.log()}")
            time.sleep(0.02)
        self.endpoints = json.loads(endpoints_file.read_text())

    def __enter__(self) -> Cloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def log(self) -> str:
        path = self.data_dir.parent / f"{self.data_dir.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def make_cloud(base: Path, backend: str = "sqlite", regions: tuple[str, ...] = ("ORD", "IAD")) -> Cloud:
    """A cloud (not yet started) on ``backend``; on PostgreSQL every database is a new one."""
    base.mkdir(parents=True, exist_ok=True)
    config_file = None
    if backend == "postgresql":
        config_file = base / "imagehop.toml"
        lines = [f'[identity]\ndatabase_url = "{create_pg_database()}"\n']
        for name in regions:
            lines.append(f'[[regions]]\nname = "{name}"\ndatabase_url = "{create_pg_database()}"\n')
        config_file.write_text("\n".join(lines))
    cloud = Cloud(base / "data", config_file)
    if config_file is None:
        cloud.extra_args = ["--regions", ",".join(regions)]
    return cloud


@pytest.fixture(scope="module", params=BACKENDS)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running two-region cloud shared by a test module, once per database backend."""
    with make_cloud(tmp_path_factory.mktemp(f"cloud-{request.param}"), request.param) as running:
        yield running


@pytest.fixture(scope="session")
def real_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[swift_peer.Swift]:
    """A real Swift 2.38 all-in-one (tempauth) for the whole test session; see tests/peers/swift.py."""
    with swift_peer.running_swift(tmp_path_factory.mktemp("real-swift")) as running:
        yield running


@pytest.fixture(scope="module")
def sqlite_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running two-region cloud on SQLite only (for client-compatibility tests)."""
    with make_cloud(tmp_path_factory.mktemp("cloud")) as running:
        yield running
