"""The one CLI runner and the one curl runner: real client programs as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # the venv's bin: swift, glance, openstack, ...


def run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300,
    expect: int | None = 0, input: str | None = None,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run a program; unless ``expect`` is None, its exit status must be ``expect`` (the failure
    message shows the command, stdout and stderr)."""
    result = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input
    )
    if expect is not None:
        assert result.returncode == expect, (
            f"{' '.join(map(str, args))} exited {result.returncode}, not {expect}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def imagehop(*args: str, env: dict[str, str] | None = None, expect: int | None = 0, timeout: float = 300):  # type: ignore[no-untyped-def]
    """``imagehop ARGS`` (this checkout's, by ``python -m imagehop``)."""
    return run([sys.executable, "-m", "imagehop", *args], env=env, expect=expect, timeout=timeout)


def tool(name: str) -> str:
    """A client program installed in this venv (``swift``, ``glance``, ``openstack``)."""
    return str(BIN / name)


def openstack(env: dict[str, str], *args: str, json_out: bool = True, expect: int | None = 0) -> Any:
    """``openstack ARGS`` (python-openstackclient); its parsed ``-f json`` output unless ``json_out`` is False."""
    result = run([tool("openstack"), *args, *(["-f", "json"] if json_out else [])], env=env, expect=expect)
    return json.loads(result.stdout) if json_out and result.returncode == 0 else result


@dataclass
class CurlResponse:
    status: int
    headers: dict[str, str]  # of the final response, names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl(*args: str, timeout: float = 120) -> CurlResponse:
    """``curl -s -i ARGS`` over HTTP/1.1, as the article types it; the final response's status,
    headers and (binary) body. curl itself must succeed (exit 0)."""
    command = ["curl", "-sS", "-i", "--http1.1", *args]
    result = subprocess.run(command, capture_output=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}: {result.stderr.decode()}"
    return parse_http_response(result.stdout)


def parse_http_response(raw: bytes) -> CurlResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    while head.split(b" ", 2)[1:2] == [b"100"]:  # "100 Continue" before the real answer
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return CurlResponse(int(lines[0].split()[1]), headers, body)
