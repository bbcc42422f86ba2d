"""`imagehop copy` as a user runs it, and what a test looks at afterwards."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import yaml

from tests.support.cloud import Cloud, make_cloud
from tests.support.run import run
from tests.support.wait import wait_for


def copy_cli(
    env: dict[str, str], *args: str, state: Path, expect: int | None = 0, as_json: bool = True
) -> subprocess.CompletedProcess[str]:
    """``imagehop copy ARGS --state STATE [--json] --poll-interval 1``; exit status ``expect`` unless None."""
    command = [sys.executable, "-m", "imagehop", "copy", *args, "--state", str(state), "--poll-interval", "1"]
    return run([*command, *(["--json"] if as_json else [])], env=env, expect=expect)


def copy_process(env: dict[str, str], *args: str, state: Path) -> subprocess.Popen:
    """The same, started in the background (a crash test kills it)."""
    command = [sys.executable, "-m", "imagehop", "copy", *args, "--state", str(state), "--poll-interval", "1", "--json"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def copy_killed_when(env: dict[str, str], *args: str, state: Path, ready: Callable[[], object], what: str,
                     timeout: float = 120) -> object:  # fmt: skip
    """Start ``imagehop copy ARGS``, SIGKILL it once ``ready()`` is truthy (``what`` names that moment), return
    what ``ready()`` gave. The run must still be going when killed, or the crash test proves nothing."""
    proc = copy_process(env, *args, state=state)
    try:
        value = wait_for(ready, what, timeout=timeout)
        assert proc.poll() is None, f"the copy ended before it was killed ({what}): give it more to do"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
        proc.communicate()
    return value


def journal_rows(state: Path, query: str) -> list[tuple]:
    """Rows of the copy's journal (a SQLite file the copy writes as it goes); [] before it exists."""
    if not state.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute(query).fetchall()
    except sqlite3.OperationalError:  # not created yet (the tables come with the first job)
        return []


def journal_says(state: Path, step: str) -> bool:
    """Whether a job in the copy's journal has reached ``step`` (a key of its JSON state: "created", "delta")."""
    return any(f'"{step}"' in row[0] for row in journal_rows(state, "SELECT state FROM jobs"))


def images_with(cloud: Cloud, region: str, key_value: str, user: str = "demo") -> list[dict]:
    """``GET /v2/images?KEY=VALUE`` in ``region`` as ``user``: how the article finds the copy."""
    key, value = key_value.split("=", 1)
    response = httpx.get(
        cloud.regions[region] + "/image/v2/images", params={key: value}, headers={"X-Auth-Token": cloud.token(user)}
    )
    assert response.status_code == 200, response.text
    return response.json()["images"]


@contextlib.contextmanager
def two_clouds(base: Path, **target_env: str) -> Iterator[tuple[Cloud, Cloud, dict[str, str]]]:
    """Two separate deployments and a client environment whose clouds.yaml names both: ``imagehop``
    (demo in the first: ORD, on SQLite) and ``far`` (alt in the second: LON, on PostgreSQL, so a
    copy between clouds crosses both databases)."""
    one = make_cloud(base / "one", "sqlite", regions=("ORD",))
    two = make_cloud(base / "two", "postgresql", regions=("LON",), env=target_env)
    with one, two:
        clouds = yaml.safe_load(one.clouds_yaml.read_text())["clouds"]
        clouds["far"] = yaml.safe_load(two.clouds_yaml.read_text())["clouds"]["imagehop-alt"]
        config = base / "clouds.yaml"
        config.write_text(yaml.safe_dump({"clouds": clouds}))
        yield one, two, {**one.env(), "OS_CLIENT_CONFIG_FILE": str(config)}
