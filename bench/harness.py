"""What every benchmark needs: a fresh cloud, timed commands, peak memory, medians, the report."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
MiB = 1 << 20


@dataclass
class Timing:
    seconds: float
    peak_rss_mb: float  # of the measured child process (and its children)


def measure(cmd: Sequence[str], env: dict[str, str] | None = None) -> Timing:
    """Run a command to completion under GNU time: its wall time and its own peak RSS."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return Timing(seconds, int(result.stderr.strip().splitlines()[-1]) / 1024)


def make_image(path: Path, random_mib: int, zero_mib: int) -> None:
    """A disk image file: ``random_mib`` MiB of incompressible data, then a ``zero_mib`` MiB hole."""
    with open(path, "wb") as handle:
        block = os.urandom(MiB)
        for i in range(random_mib):
            handle.write(block[i % 7 :] + block[: i % 7])  # distinct blocks, cheap to make
        handle.truncate((random_mib + zero_mib) * MiB)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass
class Cloud:
    data_dir: Path
    proc: subprocess.Popen
    endpoints: dict
    credentials: dict[str, dict]

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def server_rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def swift_env(self, region: str) -> dict[str, str]:
        demo = self.credentials["demo"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
        env.update(
            OS_AUTH_URL=self.endpoints["identity"] + "/v3", OS_IDENTITY_API_VERSION="3", OS_USERNAME="demo",
            OS_PASSWORD=demo["password"], OS_PROJECT_ID=demo["tenant_id"], OS_USER_DOMAIN_NAME="Default",
            OS_PROJECT_DOMAIN_NAME="Default", OS_REGION_NAME=region,
        )  # fmt: skip
        return env

    def copy_env(self) -> dict[str, str]:
        """Environment for `imagehop copy`: the written clouds.yaml, cloud `imagehop`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), OS_CLOUD="imagehop")
        return env

    def rclone_env(self, *regions: str) -> dict[str, str]:
        demo = self.credentials["demo"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_", "RCLONE_"))}
        env["RCLONE_CONFIG"] = os.devnull
        for region in regions:
            prefix = f"RCLONE_CONFIG_{region}_"
            env.update({
                prefix + "TYPE": "swift", prefix + "AUTH": self.endpoints["identity"] + "/v3",
                prefix + "USER": "demo", prefix + "KEY": demo["password"], prefix + "DOMAIN": "Default",
                prefix + "TENANT_ID": demo["tenant_id"], prefix + "TENANT_DOMAIN": "Default",
                prefix + "REGION": region,
            })  # fmt: skip
        return env


def start_cloud(data_dir: Path, env: dict[str, str] | None = None) -> Cloud:
    """``imagehop serve`` on a fresh data dir; ``env`` adds ``IMAGEHOP_*`` settings (e.g. a blob store).

    The server runs in its own process group: if it does not come up, it and whatever it forked are
    killed before the error is raised, so a failed start leaves nothing running."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "endpoints.json").unlink(missing_ok=True)
    log = open(data_dir.parent / f"{data_dir.name}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "imagehop"), "serve", "--port", "0", "--data-dir", str(data_dir)], stdout=log, stderr=log,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (data_dir / "endpoints.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"imagehop serve did not start; see {log.name}")
            time.sleep(0.02)
        out = subprocess.run(
            [str(BIN / "imagehop"), "credentials", "--json", "--data-dir", str(data_dir)],
            check=True, capture_output=True, text=True, env={**os.environ, **(env or {})},
        ).stdout  # fmt: skip
    except BaseException:
        _kill_group(proc)
        raise
    credentials = {e["user"]: e for e in json.loads(out)}
    return Cloud(data_dir, proc, json.loads((data_dir / "endpoints.json").read_text()), credentials)


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop ``proc`` and its process group: SIGTERM, then SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
        os.killpg(proc.pid, signal.SIGKILL)


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


@dataclass
class Section:
    """One benchmark's part of docs/benchmarks.md."""

    title: str
    lines: list[str] = field(default_factory=list)

    def render(self) -> str:
        return f"## {self.title}\n\n" + "\n".join(self.lines) + "\n"
