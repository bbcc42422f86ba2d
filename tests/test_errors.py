"""Errors a user can cause outside `imagehop copy`: one line saying what to do, a traceback only with --debug."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.cloud import PG_ADMIN_URL, make_cloud

PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]  # postgresql://postgres@127.0.0.1:5432
_pg = make_url(PG_ADMIN_URL)
PG_HOST_PORT_USER = (_pg.host, str(_pg.port or 5432), _pg.username)


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, user: int | None = None):  # type: ignore[no-untyped-def]
    command = [sys.executable, "-m", "imagehop", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=cwd, env={**os.environ, **(env or {})}
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single line a failed command printed, with the exit status checked and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_postgresql_database_that_does_not_exist(tmp_path: Path) -> None:
    name = f"imagehop_missing_{uuid.uuid4().hex[:8]}"
    config = tmp_path / "imagehop.toml"
    config.write_text(f'[identity]\ndatabase_url = "{PG_BASE}/{name}"\n')
    result = run("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "0")
    host, port, user = PG_HOST_PORT_USER
    assert one_line_error(result) == (
        f"Error: cannot use the database {PG_BASE}/{name}: it does not exist on the server. "
        f"Create it (createdb -h {host} -p {port} -U {user} {name}) or set [identity] database_url "
        "(or IMAGEHOP_IDENTITY_DATABASE_URL) to an existing database."
    )

    # A region's database, named by an environment variable: the message names that variable.
    env = {"IMAGEHOP_REGION_IAD_DATABASE_URL": f"{PG_BASE}/{name}"}
    result = run("serve", "--data-dir", str(tmp_path / "data2"), "--port", "0", env=env)
    assert one_line_error(result).endswith(
        "or set the database_url of region IAD (or IMAGEHOP_REGION_IAD_DATABASE_URL) to an existing database."
    )

    # --debug shows the whole story instead.
    result = run("--debug", "serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and f'database "{name}" does not exist' in result.stderr


def test_a_postgresql_server_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/imagehop"
    result = run("serve", "--data-dir", str(tmp_path / "data"), "--port", "0",
                 env={"IMAGEHOP_IDENTITY_DATABASE_URL": url})  # fmt: skip
    assert one_line_error(result) == (
        f"Error: cannot reach the database {url}: nothing accepts connections there. Start PostgreSQL, or fix "
        "[identity] database_url (or IMAGEHOP_IDENTITY_DATABASE_URL)."
    )


@pytest.fixture
def read_only_parent() -> Iterator[Path]:
    """A directory nobody but root may write to (755 above it, so another user can reach it)."""
    base = Path(tempfile.mkdtemp(prefix="imagehop-ro-"))
    base.chmod(0o755)
    parent = base / "read-only"
    parent.mkdir(mode=0o555)
    parent.chmod(0o555)
    yield parent
    shutil.rmtree(base)


def test_an_unwritable_data_dir(read_only_parent: Path) -> None:
    user = None
    if os.geteuid() == 0:  # root writes anywhere: run the command as nobody, as an ordinary user would be
        user = 65534
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                                "-c", "import imagehop"], capture_output=True)  # fmt: skip
        if probe.returncode != 0:
            pytest.skip("this checkout cannot be read by the nobody user")
    data = read_only_parent / "data"
    result = run("serve", "--data-dir", str(data), "--port", "0", user=user)
    assert one_line_error(result) == (
        f"Error: cannot write to {data}: Permission denied. Choose a data dir you can write to "
        "(--data-dir DIR or IMAGEHOP_DATA_DIR), or give this user write access to it."
    )


def test_a_data_dir_that_is_in_the_way_or_missing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a directory\n")
    result = run("serve", "--data-dir", "notes.txt/data", "--port", "0", cwd=tmp_path)
    assert one_line_error(result) == (
        "Error: cannot create the directory notes.txt/data: notes.txt is a file, not a directory. "
        "Choose another --data-dir."
    )
    # Commands that read a cloud's users do not create an empty one where the user mistyped the path.
    for args in (("user", "list"), ("user", "delete", "alt")):
        result = run(*args, "--data-dir", "imagehop-dat", cwd=tmp_path)
        assert one_line_error(result) == (
            "Error: no imagehop data in imagehop-dat: pass the --data-dir your cloud uses, or start one there "
            "with `imagehop serve --data-dir imagehop-dat`."
        )
    assert not (tmp_path / "imagehop-dat").exists()


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert one_line_error(result) == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; another program uses it (another "
        "imagehop serve?): stop it, or pick another --port (regions take the ports after it), or --port 0 for "
        "free ports."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'x'", "port must be a port number, got 'x'"),
        ("colour = 'red'", "{config}: unknown setting(s) ['colour']; known: "),
        ("[identity]\ndatabase_url = 'mysql://db/identity'",
         "[identity] database_url 'mysql://db/identity' must start with sqlite:/// or postgresql://"),
    ],
)  # fmt: skip
def test_a_bad_config(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "imagehop.toml"
    config.write_text(text)
    line = one_line_error(run("serve", "--config", str(config), "--data-dir", str(tmp_path / "d")))
    assert line.startswith("Error: configuration: " + message.format(config=config))
    assert line.endswith(". (Every setting: docs/configuration.md.)")


def test_a_config_file_that_does_not_exist(tmp_path: Path) -> None:
    missing = one_line_error(run("serve", "--config", str(tmp_path / "nope.toml")))
    assert missing == (
        f"Error: configuration: config file {tmp_path / 'nope.toml'} does not exist; pass an existing file to "
        "--config (or IMAGEHOP_CONFIG). (Every setting: docs/configuration.md.)"
    )


def test_a_second_server_on_the_same_data_dir(tmp_path: Path) -> None:

    with make_cloud(tmp_path) as cloud:
        result = run("serve", "--port", "0", "--data-dir", str(cloud.data_dir))
    assert one_line_error(result) == (
        f"Error: another imagehop serve is already using {cloud.data_dir}: stop it (Ctrl-C in its terminal, or "
        f"kill the pid in {cloud.data_dir / 'serve.lock'}), or pass another --data-dir."
    )
