"""Hostile-input helpers: a tenant's view of every API, raw HTTP where httpx would not send it, and
the server's memory."""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.support.cloud import Cloud


def server_memory(cloud: Cloud) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the server process, in bytes."""
    assert cloud.proc is not None
    fields = {}
    with open(f"/proc/{cloud.proc.pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def send_chunked(url: str, method: str, headers: dict[str, str], total: int, chunk: int = 1 << 20) -> tuple[int, int]:
    """Send up to ``total`` body bytes, chunked, until the server answers; (status, bytes sent).

    A server that stops reading at its limit answers early and closes; one that reads everything
    answers only after the last byte.
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    payload = f"{chunk:x}\r\n".encode() + b"[" * chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(payload)
            sent += chunk
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(30)
    deadline = time.monotonic() + 30
    data = b""
    while b"\r\n" not in data and time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, sent


class Tenant:
    """``httpx`` as one user of one cloud, with the URLs of every service of one region (for tests
    that walk all the APIs, such as the hostile-input ones)."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        self.cloud = cloud
        self.user = user
        self.region = cloud.regions[region]
        self.token = cloud.token(user)
        self.tenant = cloud.credentials()[user]["tenant_id"]
        self.http = httpx.Client(headers={"X-Auth-Token": self.token, "Accept": "application/json"}, timeout=60)

    @property
    def image(self) -> str:
        return self.region + "/image/v2"

    @property
    def compute(self) -> str:
        return self.region + "/compute/v2.1"

    @property
    def swift(self) -> str:
        return f"{self.region}/v1/AUTH_{self.tenant}"

    def new_image(self, **body) -> dict:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        response = self.http.post(self.image + "/images", json=body)
        assert response.status_code == 201, response.text
        return response.json()
