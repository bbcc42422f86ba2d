"""A client that stops sending in the middle of a request gets ``408 Request Timeout`` after
``client_timeout`` seconds of silence, the connection closes and nothing it sent is kept (Swift's
proxy ``client_timeout``). A slow client that keeps sending is not cut off: the timeout is on
silence, not on the whole request. A client that stops reading a download is dropped after the same
time, and the server lets go of the object's file. Spoken to in raw HTTP against a real ``imagehop serve`` with
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
from tests.support.wait import wait_for

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


def test_an_idle_kept_alive_connection_outlives_a_client_pools_expiry(sqlite_cloud: Cloud) -> None:
    """An idle connection is kept for client_timeout (60 s, as Swift's proxy keeps it), not uvicorn's 5 s: a
    client pool that keeps idle connections for 5 s (httpx) never sends on one the server is closing that
    instant (a reset, which no client retries for a POST). The database plays no part."""
    sock, base, host = _open(storage_url(sqlite_cloud))
    with sock:
        for pause in (0, 6):
            time.sleep(pause)
            sock.sendall(_head("HEAD", base, host, sqlite_cloud.token(), {}))
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 204 "), (pause, answer[:200])


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


def test_a_request_that_begins_in_the_last_read_of_the_one_before_is_answered(cloud: Cloud) -> None:
    """The next request's head arrives in the same read as the end of the one before; its body
    comes later and is the body (not held as a request line that never ends, then 408)."""
    sock, base, host = _open(storage_url(cloud))
    token = cloud.token()
    with sock:
        first = _head("PUT", f"{base}/stall/one", host, token, {"Content-Length": "5"}) + b"first"
        second = _head("PUT", f"{base}/stall/two", host, token, {"Content-Length": "6"})
        sock.sendall(first + second)
        time.sleep(TIMEOUT * 0.3)  # the second body in a read of its own, with no line end in it
        sock.sendall(b"second")
        got = b""
        deadline = time.monotonic() + TIMEOUT * 5
        while got.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            got += chunk
    statuses = [line.split(b" ")[1] for line in got.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses == [b"201", b"201"], got[:400]
    read = httpx.get(f"{storage_url(cloud)}/stall/two", headers={"X-Auth-Token": cloud.token()})
    assert read.content == b"second"


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


def _open_blobs(cloud: Cloud) -> list[str]:
    """The object blob files the server process has open now (seen from outside, in /proc)."""
    assert cloud.proc is not None
    blobs = str(cloud.data_dir / "regions" / "ORD" / "objects" / "data")
    fds = f"/proc/{cloud.proc.pid}/fd"
    found = []
    for fd in os.listdir(fds):
        try:
            target = os.readlink(f"{fds}/{fd}")
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith(blobs):
            found.append(target)
    return found


def test_a_download_the_client_stops_reading_is_dropped_and_its_file_let_go(cloud: Cloud) -> None:
    """Sent from the file (sendfile): a client that takes no bytes for ``client_timeout`` no longer
    holds the object's file, a worker thread or the request: the connection is closed halfway."""
    size = 64 * MiB  # far more than the socket buffers on both sides hold
    piece = os.urandom(MiB)
    token = cloud.token()
    httpx.put(f"{storage_url(cloud)}/stall/big", headers={"X-Auth-Token": token}, content=piece * 64).raise_for_status()
    assert _open_blobs(cloud) == []
    url = urlsplit(storage_url(cloud))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.settimeout(30)
    with sock:
        sock.connect((url.hostname, url.port))
        sock.sendall(_head("GET", f"{url.path}/stall/big", f"{url.hostname}:{url.port}", token, {}))
        got = sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200 "), got[:200]
        wait_for(lambda: _open_blobs(cloud), "the server has the object's file open")
        # the client reads nothing more: the server lets the file go after client_timeout
        wait_for(lambda: _open_blobs(cloud) == [], "the server lets go of the stalled download's file", timeout=30)
        rest, _ = _answer_and_close(sock)  # what was in the buffers, then the end of the connection
    assert len(got) + len(rest) < size
    httpx.head(f"{storage_url(cloud)}/stall/big", headers={"X-Auth-Token": token}).raise_for_status()
