"""web-download's address filter (issue 10, item 5): every resolved address is checked, the fetch
connects to a checked address only, no redirects; bad URLs are a 400 that changes nothing.

Refusals run against a real server with the default settings, on both databases (a refused import
must leave the image and the task table as they were). What needs a web server on loopback runs
against a server whose operator set ``web_download_allow_private``, as the tests and labs do.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from imagehop.images import web
from imagehop.images.errors import BadRequest, ImageError
from tests.support import Cloud, Glance, wait_for

REFUSED_HOSTS = [
    "127.0.0.1", "localhost", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "100.127.255.254",
    "169.254.169.254", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1",
    "192.0.2.1", "192.0.0.8", "[::1]", "[::]", "[::127.0.0.1]", "[::ffff:127.0.0.1]", "[::ffff:8.8.8.8]",
    "[64:ff9b::7f00:1]", "[64:ff9b::808:808]", "[64:ff9b:1::a00:1]", "[2002:7f00:1::1]", "[2002:808:808::1]",
    "[2001::1]", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[fec0::1]", "[ff02::1]", "[ff0e::1]", "[2001:db8::1]",
    "2130706433", "0x7f.1", "017700000001",
]  # fmt: skip
BAD_URLS = [
    "http://example.com:99999/x", "http://example.com:-1/x", "http://example.com:abc/x", "http://example.com:0/x",
    "http://[::1/x", "http://[zz]/x", "http://::1]/x", "http://[127.0.0.1]/x", "ftp://example.com/x",
    "file:///etc/passwd", "http:///x", "http://user:secret@example.com/x", "http://exa mple.com/x",
    "http://example.com/\u00e9", "http://" + "a" * 3000 + ".com/",
]  # fmt: skip


def import_status(glance: Glance, uri: object) -> tuple[int, dict]:
    image = glance.create(name="web", disk_format="raw", container_format="bare")
    response = glance.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "web-download", "uri": uri}})
    return response.status_code, glance.image(image["id"])


@pytest.fixture(scope="module")
def glance(cloud: Cloud) -> Glance:
    return Glance(cloud)


def test_non_public_addresses_are_refused(glance: Glance) -> None:
    for host in REFUSED_HOSTS:
        status, image = import_status(glance, f"http://{host}:8080/disk.raw")
        assert status == 400, host
        assert image["status"] == "queued" and "os_glance_import_task" not in image
        assert glance.get(f"/v2/images/{image['id']}/tasks").json()["tasks"] == []


def test_bad_urls_are_a_400(glance: Glance) -> None:
    for uri in [*BAD_URLS, None, 42, {"a": 1}]:
        status, image = import_status(glance, uri)
        assert status == 400, uri
        assert image["status"] == "queued"


def test_every_listed_range_is_refused_and_public_ones_pass() -> None:
    for host in REFUSED_HOSTS:
        text = host.strip("[]")
        if text.replace(".", "").replace(":", "").isalnum() and not text.isalpha() and not text.startswith("0"):
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            assert not web.is_public(address), host
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::1"):
        assert web.is_public(ipaddress.ip_address(public)), public


def fake_resolver(monkeypatch: pytest.MonkeyPatch, answers: Callable[[], list[str]]) -> None:
    """The resolver is the environment here, not the code under test: answer ``answers()``."""

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            found = [str(ipaddress.ip_address(host))]  # a literal address resolves to itself
        except ValueError:
            found = answers()
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in found]  # fmt: skip

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_one_private_address_among_public_ones_is_enough_to_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(monkeypatch, lambda: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(BadRequest, match=r"10\.0\.0\.5"):
        web.check("http://mixed.example/disk.raw", allow_private=False)
    fake_resolver(monkeypatch, lambda: ["93.184.216.34", "::ffff:10.0.0.5"])
    with pytest.raises(BadRequest):
        web.check("http://mixed.example/disk.raw", allow_private=False)


@pytest.fixture(scope="module")
def web_server() -> Iterator[str]:
    """Serves ``/disk.raw`` (64 KiB) and ``/redirect`` (302 to it) on 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/disk.raw")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"\x01" * 65536
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_fetch_connects_to_the_checked_address_only(monkeypatch: pytest.MonkeyPatch, web_server: str) -> None:
    """DNS rebinding: the name resolves to the loopback server once, then to an address where nothing
    listens; the fetch uses the first, checked, answer and never resolves again."""
    port = int(web_server.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"]] + [["127.0.0.2"]] * 10)
    fake_resolver(monkeypatch, lambda: next(answers))
    data = b"".join(web.fetch(f"http://rebind.example:{port}/disk.raw", allow_private=True))
    assert data == b"\x01" * 65536
    assert next(answers) == ["127.0.0.2"]  # resolved exactly once


def test_redirects_are_not_followed(web_server: str) -> None:
    with pytest.raises(ImageError, match="302"):
        b"".join(web.fetch(f"http://{web_server}/redirect", allow_private=True))


def test_loopback_works_when_the_operator_allows_it(cloud_factory: Callable[..., Cloud], web_server: str) -> None:
    """``web_download_allow_private`` is how tests and labs reach a local web server; a redirect fails
    the import and leaves the image queued."""
    cloud = cloud_factory("lab", config="[images]\nweb_download_allow_private = true\n")
    cloud.start()
    glance = Glance(cloud)
    image = glance.create(name="lab", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": f"http://{web_server}/disk.raw"}}
    assert glance.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
    done = wait_for(lambda: (i := glance.image(image["id"]))["status"] == "active" and i, "the import ends")
    assert done["size"] == 65536
    moved = glance.create(name="moved", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": f"http://{web_server}/redirect"}}
    assert glance.post(f"/v2/images/{moved['id']}/import", json=body).status_code == 202
    task = wait_for(
        lambda: (
            (t := glance.get(f"/v2/images/{moved['id']}/tasks").json()["tasks"])
            and t[0]["status"] == "failure"
            and t[0]
        ),
        "the import fails",
    )
    assert "redirect" in task["message"]
    assert glance.image(moved["id"])["status"] == "queued"
