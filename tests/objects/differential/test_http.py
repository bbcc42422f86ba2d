"""Issue 12, item 8 (the HTTP layer: raw UTF-8 request lines, 412 for invalid UTF-8, 411, keep-alive echo,
WWW-Authenticate everywhere) and item 2 (header values are UTF-8 both ways)."""

from __future__ import annotations

import json

import pytest

from tests.objects.differential.sides import Side, Sides

RAW_HEADERS = ("content-length", "www-authenticate", "connection", "etag", "x-object-meta-name", "content-type")


def _raw(s: Side, request: bytes) -> dict:
    status, headers, _body = s.raw(request)
    seen = {"status": status}
    for name in RAW_HEADERS:
        value = headers.get(name)
        seen[name] = None if value is None else s.normalise(value.encode("latin-1").decode("utf-8", "replace"))
    return seen


@pytest.mark.parametrize(
    "line",
    [
        "PUT /v1/{A}/{c}/caf\u00e9 HTTP/1.1",
        "PUT /v1/{A}/{c}/\u65e5\u672c HTTP/1.1",
        "PUT /v1/{A}/{c}/bad\xff HTTP/1.1",
        "PUT /v1/{A}/{c}/nul%00x HTTP/1.1",
        "PUT /v1/{A}/{c}/bad%FFx HTTP/1.1",
    ],
)
def test_raw_request_lines(sides: Sides, line: str) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        raw = line.replace("{c}", s.c()).encode("utf-8" if "\xff" not in line else "latin-1")
        request = raw + b"\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        out = [_raw(s, request)]
        out.append(s.obs(s.req("GET", f"/{s.c()}?format=json")))
        return out

    sides.compare(case)


@pytest.mark.parametrize(
    "request_",
    [
        b"PUT /v1/{A}/{c}/nolength HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n",
        b"GET /v1/{A}/{c} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nConnection: keep-alive\r\n\r\n",
        b"PUT /v1/{A}/{c}/gz HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"\r\n2\r\nhi\r\n0\r\n\r\n",
        b"GET /v1/{A}/{c}/%0A HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        b"GET /v1/%0A HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        b"GET /v1/{A} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        b"GET /v1/{A}/{c}/x HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: bogus\r\nConnection: close\r\n\r\n",
    ],
)
def test_http_layer(sides: Sides, request_: bytes) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        return [_raw(s, request_.replace(b"{c}", s.c().encode()))]

    sides.compare(case)


def test_a_transfer_coding_other_than_chunked(sides: Sides) -> None:
    """Swift's 400 "Invalid Transfer-Encoding header value"; pinned difference (docs/api-coverage.md):
    imagehop closes the connection after it (``Connection: close``), as its parser cannot tell where
    such a body ends; Swift sends no Connection header."""
    request = (
        b"PUT /v1/{A}/{c}/gz HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nTransfer-Encoding: gzip\r\n\r\nhi"
    )

    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        status, headers, body = s.raw(request.replace(b"{c}", s.c().encode()))
        pinned = {"imagehop": "close", "swift": None}[s.name] == headers.get("connection")
        seen = {"status": status, "body": body, "type": headers.get("content-type"), "connection as documented": pinned}
        return [seen, s.obs(s.req("GET", f"/{s.c()}?format=json"))]

    sides.compare(case)


def _answers_on_one_connection(s: Side, requests: list[bytes]) -> list[dict]:
    """Each request sent after the previous answer, on one connection; what came back for each
    (``{"status": 0}`` once the server has closed it)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(s.base)
    seen = []
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for request in requests:
            request = request.replace(b"{A}", s.accounts["A"].encode()).replace(b"{c}", s.c().encode())
            request = request.replace(b"{token}", s.tokens["owner"].encode()).replace(b"{host}", parts.netloc.encode())
            try:
                sock.sendall(request)
                line = stream.readline()
            except OSError:
                line = b""
            if not line:
                seen.append({"status": 0})
                continue
            headers: dict[str, list[str]] = {}
            while (header := stream.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip().lower())
            length = int(headers.get("content-length", ["0"])[0])
            stream.read(length if not request.startswith(b"HEAD") else 0)
            seen.append({"status": int(line.split()[1]), "connection": headers.get("connection"),
                         "content-length": length})  # fmt: skip
    return seen


@pytest.mark.parametrize("connection", ["keep-alive", "close", None])
def test_http10_keep_alive(sides: Sides, connection: str | None) -> None:
    """HTTP/1.0 asking for keep-alive keeps the connection for the next request; without it, or with
    close, the connection closes after the answer."""
    extra = f"Connection: {connection}\r\n".encode() if connection else b""
    get = b"GET /v1/{A}/{c}/o HTTP/1.0\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n" + extra + b"\r\n"
    head = b"HEAD /v1/{A}/{c} HTTP/1.0\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n" + extra + b"\r\n"

    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/o", body=b"hello").raise_for_status()
        return _answers_on_one_connection(s, [get, head, get])

    sides.compare(case)


def test_utf8_header_values(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c('sé')}").raise_for_status()
        name = "caf\u00e9 \u65e5\u672c".encode()
        out = []
        ctype = "text/plain; name=\u00e9".encode()
        put = s.req("PUT", f"/{s.c()}/obj", body=b"data", headers={"X-Object-Meta-Name": name, "Content-Type": ctype})
        out.append(s.obs(put, body="status"))
        got = s.req("GET", f"/{s.c()}/obj")
        out.append({"meta": got.headers.get_list("x-object-meta-name"), "raw": got.headers.raw[0:0],
                    "type": got.headers.get("content-type")})  # fmt: skip
        out.append({"meta bytes": [v for k, v in got.headers.raw if k.lower() == b"x-object-meta-name"]})
        copy = s.req("PUT", f"/{s.c('sé')}/\u00e9", body=b"", headers={"X-Copy-From": f"{s.c()}/obj".encode()})
        out.append(s.obs(copy, body="status"))
        # (COPY of an object whose Content-Type has raw UTF-8 parameters: Swift 2.38 answers 400; not compared.)
        s.req("PUT", f"/{s.c()}/plain", body=b"data").raise_for_status()
        back = s.req("COPY", f"/{s.c()}/plain", headers={"Destination": f"{s.c('sé')}/d\u00e9st".encode()})
        out.append(s.obs(back, body="status"))
        dlo = s.req("PUT", f"/{s.c()}/dlo", body=b"",
                    headers={"X-Object-Manifest": f"{s.c('sé')}/d\u00e9".encode()})  # fmt: skip
        out.append(s.obs(dlo, body="status"))
        out.append(s.obs(s.req("GET", f"/{s.c()}/dlo"), "content-length", "x-object-manifest"))
        out.append(s.obs(s.req("GET", f"/{s.c('sé')}?format=json"), body=None)
                   | {"names": [e["name"] for e in s.req("GET", f"/{s.c('sé')}?format=json").json()]})  # fmt: skip
        s.req("POST", f"/{s.c()}", headers={"X-Container-Meta-Temp-URL-Key": "k\u00e9y".encode()})
        out.append({"key": [v for k, v in s.req("HEAD", f"/{s.c()}").headers.raw
                            if k.lower() == b"x-container-meta-temp-url-key"]})  # fmt: skip
        return out

    sides.compare(case)


def test_utf8_tempurl_key(sides: Sides) -> None:
    import hashlib
    import hmac

    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}", headers={"X-Container-Meta-Temp-URL-Key": "cl\u00e9".encode()}).raise_for_status()
        s.req("PUT", f"/{s.c()}/o", body=b"x").raise_for_status()
        path = f"/v1/{s.accounts['A']}/{s.c()}/o"
        sig = hmac.new("cl\u00e9".encode(), f"GET\n2000000000\n{path}".encode(), hashlib.sha256).hexdigest()
        return [s.obs(s.req("GET", f"/{s.c()}/o?temp_url_sig={sig}&temp_url_expires=2000000000", who="anon"))]

    sides.compare(case)


__all__ = ["json"]
