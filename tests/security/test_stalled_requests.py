"""A client that stops sending in the middle of a request gets ``408 Request Timeout`` after
``client_timeout`` seconds of silence, the connection closes and nothing it sent is kept (Swift's
proxy ``client_timeout``). A slow client that keeps sending is not cut off: the timeout is on
silence, not on the whole request. Spoken to in raw HTTP against a real ``imagehop serve`` with
``IMAGEHOP_CLIENT_TIMEOUT=1``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.clients import Glance, storage_url
from tests.support.cloud import Cloud, make_cloud

TIMEOUT = 1.0
MiB = 1 << 20


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with make_cloud(tmp_path_factory.mktemp("stalled"), env={"IMAGEHOP_CLIENT_TIMEOUT": str(TIMEOUT)}) as running:
        token = running.token()
        httpx.put(f"{storage_url(running)}/stall", headers={"X-Auth-Token": token}).raise_for_status()
        yield running


def _open(url: str) -> tuple[socket.socket, str, str]:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    return sock, parts.path, f"{parts.hostname}:{parts.port}"


def _head(method: str, path: str, host: str, token: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"X-Auth-Token: {token}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer_and_close(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got, time.monotonic() - start


def _gone(cloud: Cloud, name: str) -> None:
    token = cloud.token()
    assert httpx.head(f"{storage_url(cloud)}/stall/{name}", headers={"X-Auth-Token": token}).status_code == 404
    deadline = time.monotonic() + 10
    while cloud.partial_files() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cloud.partial_files() == []


@pytest.mark.parametrize("size", [100_000, 6 * MiB], ids=["through-the-parser", "read-directly"])
def test_a_body_that_stops_coming_gets_408_and_leaves_nothing(cloud: Cloud, size: int) -> None:
    sock, base, host = _open(storage_url(cloud))
    with sock:
        sock.sendall(_head("PUT", f"{base}/stall/body-{size}", host, cloud.token(), {"Content-Length": str(size)}))
        sock.sendall(os.urandom(size // 2))
        answer, waited = _answer_and_close(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"Request Timeout" in answer
    assert TIMEOUT * 0.9 < waited < TIMEOUT + 10
    _gone(cloud, f"body-{size}")


def test_headers_that_stop_coming_get_408(cloud: Cloud) -> None:
    sock, base, host = _open(storage_url(cloud))
    with sock:
        sock.sendall(f"PUT {base}/stall/slowloris HTTP/1.1\r\nHost: {host}\r\nX-Obj".encode())
        answer, waited = _answer_and_close(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert TIMEOUT * 0.9 < waited < TIMEOUT + 10


def test_a_request_line_that_stops_coming_is_closed(cloud: Cloud) -> None:
    sock, base, _ = _open(storage_url(cloud))
    with sock:
        sock.sendall(f"GET {base}/stall/slow".encode())  # no line end yet
        answer, waited = _answer_and_close(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert waited < TIMEOUT + 10


@pytest.mark.parametrize("size", [200_000, 3 * MiB], ids=["through-the-parser", "read-directly"])
def test_a_slow_client_that_keeps_sending_is_not_cut_off(cloud: Cloud, size: int) -> None:
    body = os.urandom(size)
    pieces = 8  # one piece every 0.4 s: the whole upload takes about three timeouts
    step = -(-size // pieces)
    sock, base, host = _open(storage_url(cloud))
    with sock:
        sock.sendall(_head("PUT", f"{base}/stall/slow-{size}", host, cloud.token(), {"Content-Length": str(size)}))
        for at in range(0, size, step):
            time.sleep(TIMEOUT * 0.4)
            sock.sendall(body[at : at + step])
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 201 "), status_line
    got = httpx.get(f"{storage_url(cloud)}/stall/slow-{size}", headers={"X-Auth-Token": cloud.token()})
    assert hashlib.md5(got.content).hexdigest() == hashlib.md5(body).hexdigest()


def test_an_idle_connection_between_requests_is_not_answered_408(cloud: Cloud) -> None:
    """Between requests, the keep-alive timeout closes quietly: nothing was asked, nothing is answered."""
    sock, base, host = _open(storage_url(cloud))
    with sock:
        sock.sendall(_head("HEAD", f"{base}/stall", host, cloud.token(), {}))
        time.sleep(0.2)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 204 "), first[:200]
        rest, _ = _answer_and_close(sock)
    assert b"408" not in rest


def test_a_stalled_image_upload_gets_408_and_the_image_stays_queued(cloud: Cloud) -> None:
    glance = Glance(cloud)
    image_id = glance.create(name="stalled", disk_format="raw", container_format="bare")["id"]
    sock, base, host = _open(glance.url)
    with sock:
        headers = {"Content-Length": str(4 * MiB), "Content-Type": "application/octet-stream"}
        sock.sendall(_head("PUT", f"{base}/v2/images/{image_id}/file", host, glance.token, headers))
        sock.sendall(os.urandom(MiB))
        answer, _ = _answer_and_close(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    deadline = time.monotonic() + 10
    while (image := glance.image(image_id))["status"] == "saving" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
