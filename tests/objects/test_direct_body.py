"""Large object bodies read straight from the socket (``streams.receive_body``) and sent from the file
(``sendfile``, the zero-copy send of ``http_protocol``), spoken to in raw HTTP.

A ``Content-Length`` body of more than 256 KiB skips the HTTP parser: a worker thread reads it into
reused buffers. These tests send such bodies the ways a client may (in odd pieces with pauses, with
the next request right behind the body on the same connection, after ``Expect: 100-continue``, cut
off halfway) to a real ``imagehop serve`` and check what is stored and that the connection goes on
(or closes) as HTTP says.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.clients import storage_url
from tests.support.cloud import Cloud, make_cloud

MiB = 1 << 20


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One cloud on SQLite and local files: the HTTP side does not depend on the store."""
    with make_cloud(tmp_path_factory.mktemp("direct-body"), "sqlite") as running:
        yield running


def _body() -> bytes:
    """5.5 MiB that do not fall on 1 MiB offsets: data, a run of zeros (a hole), data, zeros, data."""
    return os.urandom(700_000) + bytes(2 * MiB + 123) + os.urandom(MiB + 5) + bytes(MiB) + os.urandom(300_001)


def _connect(cloud: Cloud) -> tuple[socket.socket, BinaryIO, str, str]:
    url = urlsplit(storage_url(cloud))
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    return sock, sock.makefile("rb"), url.path, f"{url.hostname}:{url.port}"


def _request(method: str, path: str, host: str, token: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"X-Auth-Token: {token}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(stream: BinaryIO, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    status = int(stream.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:
        return status, headers, b""
    length = 0 if head or status in (204, 304) else int(headers.get("content-length", "0"))
    return status, headers, stream.read(length)


def test_a_large_body_sent_in_odd_pieces_is_stored_whole(cloud: Cloud) -> None:
    token = cloud.token()
    body = _body()
    httpx.put(f"{storage_url(cloud)}/direct", headers={"X-Auth-Token": token}).raise_for_status()
    sock, stream, base, host = _connect(cloud)
    with sock, stream:
        sock.sendall(_request("PUT", f"{base}/direct/odd", host, token, {"Content-Length": str(len(body))}))
        sizes = [1, 4095, 65_537, 300_000, 1_048_577, 7]
        pos = 0
        for i in range(10_000):
            if pos >= len(body):
                break
            n = sizes[i % len(sizes)]
            sock.sendall(body[pos : pos + n])
            pos += n
            if i % 3 == 0:
                time.sleep(0.02)  # the server runs dry and waits for the socket
        status, headers, _ = _response(stream)
        assert status == 201
        assert headers["etag"] == hashlib.md5(body).hexdigest()
        # the same connection goes on: a GET answers the stored bytes
        sock.sendall(_request("GET", f"{base}/direct/odd", host, token))
        status, headers, got = _response(stream)
        assert status == 200
        assert got == body


def test_the_next_request_right_behind_a_body_is_answered(plain: Cloud) -> None:
    token = plain.token()
    first, second = _body(), os.urandom(MiB + 17)
    httpx.put(f"{storage_url(plain)}/direct", headers={"X-Auth-Token": token}).raise_for_status()
    sock, stream, base, host = _connect(plain)
    with sock, stream:
        # two PUTs and a HEAD in one send: the bytes after the first body belong to the parser again
        sock.sendall(
            _request("PUT", f"{base}/direct/one", host, token, {"Content-Length": str(len(first))})
            + first
            + _request("PUT", f"{base}/direct/two", host, token, {"Content-Length": str(len(second))})
            + second
            + _request("HEAD", f"{base}/direct/one", host, token)
        )
        status, headers, _ = _response(stream)
        assert (status, headers["etag"]) == (201, hashlib.md5(first).hexdigest())
        status, headers, _ = _response(stream)
        assert (status, headers["etag"]) == (201, hashlib.md5(second).hexdigest())
        status, headers, _ = _response(stream, head=True)
        assert (status, headers["content-length"]) == (200, str(len(first)))
    got = httpx.get(f"{storage_url(plain)}/direct/two", headers={"X-Auth-Token": token})
    assert got.content == second


def test_expect_100_continue_before_a_large_body(plain: Cloud) -> None:
    token = plain.token()
    body = _body()
    httpx.put(f"{storage_url(plain)}/direct", headers={"X-Auth-Token": token}).raise_for_status()
    sock, stream, base, host = _connect(plain)
    with sock, stream:
        headers = {"Content-Length": str(len(body)), "Expect": "100-continue"}
        sock.sendall(_request("PUT", f"{base}/direct/expect", host, token, headers))
        assert _response(stream)[0] == 100
        sock.sendall(body)
        status, answered, _ = _response(stream)
        assert (status, answered["etag"]) == (201, hashlib.md5(body).hexdigest())


def test_a_wrong_etag_on_a_large_body_refuses_it_and_the_connection_goes_on(plain: Cloud) -> None:
    token = plain.token()
    body = _body()
    httpx.put(f"{storage_url(plain)}/direct", headers={"X-Auth-Token": token}).raise_for_status()
    sock, stream, base, host = _connect(plain)
    with sock, stream:
        headers = {"Content-Length": str(len(body)), "Etag": hashlib.md5(b"other").hexdigest()}
        sock.sendall(_request("PUT", f"{base}/direct/wrong", host, token, headers) + body)
        assert _response(stream)[0] == 422
        sock.sendall(_request("HEAD", f"{base}/direct/wrong", host, token))
        assert _response(stream, head=True)[0] == 404


def test_a_body_cut_off_halfway_leaves_nothing(plain: Cloud) -> None:
    token = plain.token()
    body = _body()
    httpx.put(f"{storage_url(plain)}/direct", headers={"X-Auth-Token": token}).raise_for_status()
    sock, stream, base, host = _connect(plain)
    with sock, stream:
        sock.sendall(_request("PUT", f"{base}/direct/cut", host, token, {"Content-Length": str(len(body))}))
        sock.sendall(body[: 3 * MiB])
        time.sleep(0.3)  # the server is reading the body directly by now
    url = f"{storage_url(plain)}/direct/cut"
    deadline = time.monotonic() + 10
    while plain.partial_files() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert plain.partial_files() == []
    assert httpx.head(url, headers={"X-Auth-Token": token}).status_code == 404
    # and the server still takes a whole one
    stored = httpx.put(url, headers={"X-Auth-Token": token}, content=body)
    assert (stored.status_code, stored.headers["etag"]) == (201, hashlib.md5(body).hexdigest())


def _big_sparse() -> bytes:
    """24 MiB, more than the socket buffers hold: data, a hole, data off the 1 MiB offsets, a hole."""
    return os.urandom(9 * MiB + 11) + bytes(5 * MiB) + os.urandom(7 * MiB - 11) + bytes(3 * MiB)


def test_downloads_sent_from_the_file_to_a_slow_reader_keep_the_connection(plain: Cloud) -> None:
    """A whole GET, a range GET and a HEAD in one send to a client that reads slowly: each answer is
    the stored bytes (holes as zeros), in order, on one connection."""
    token = plain.token()
    body = _big_sparse()
    url = f"{storage_url(plain)}/direct"
    httpx.put(url, headers={"X-Auth-Token": token}).raise_for_status()
    httpx.put(f"{url}/big", headers={"X-Auth-Token": token}, content=body).raise_for_status()
    sock, stream, base, host = _connect(plain)
    with sock, stream:
        sock.sendall(
            _request("GET", f"{base}/direct/big", host, token)
            + _request("GET", f"{base}/direct/big", host, token, {"Range": "bytes=9437180-16777300"})
            + _request("HEAD", f"{base}/direct/big", host, token)
        )
        time.sleep(0.5)  # the server finds the socket full and waits for room
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert (status, headers["content-length"]) == (200, str(len(body)))
        got = bytearray()
        while len(got) < len(body):
            got += stream.read(min(MiB, len(body) - len(got)))
            if len(got) < 4 * MiB:
                time.sleep(0.05)
        assert got == body
        status, headers, got = _response(stream)
        assert (status, headers["content-range"]) == (206, f"bytes 9437180-16777300/{len(body)}")
        assert got == body[9437180:16777301]
        status, headers, _ = _response(stream, head=True)
        assert (status, headers["content-length"]) == (200, str(len(body)))


def test_a_download_dropped_halfway_leaves_the_server_answering(plain: Cloud) -> None:
    token = plain.token()
    body = _big_sparse()
    url = f"{storage_url(plain)}/direct"
    httpx.put(url, headers={"X-Auth-Token": token}).raise_for_status()
    httpx.put(f"{url}/dropped", headers={"X-Auth-Token": token}, content=body).raise_for_status()
    for _ in range(3):
        sock, stream, base, host = _connect(plain)
        with sock, stream:
            sock.sendall(_request("GET", f"{base}/direct/dropped", host, token))
            stream.read(MiB)
    got = httpx.get(f"{url}/dropped", headers={"X-Auth-Token": token})
    assert (got.status_code, got.content == body) == (200, True)
