"""The segment mover between two regions of a real `imagehop serve`, over HTTP only."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from imagehop.transfer.clouds import connect
from imagehop.transfer.journal import Journal
from imagehop.transfer.mover import MoveError, move_object
from imagehop.transfer.swift import Segment, SwiftClient
from tests.support import Cloud, MiB
from tests.support import disk_bytes as make_disk


@pytest.fixture(scope="module")
def regions(cloud: Cloud):  # type: ignore[no-untyped-def]
    client_cloud = connect("imagehop", str(cloud.clouds_yaml))
    ord_, iad = SwiftClient(client_cloud, "ORD"), SwiftClient(client_cloud, "IAD")
    yield ord_, iad
    ord_.close()
    iad.close()


def disk_bytes(size: int, seed: int) -> bytes:
    """Random data with a run of zeros in the middle, like a disk image."""
    return make_disk(size, seed, layout=[(0, size // 3, "random"), (size // 2, size - size // 2, "random")])


def put_slo(client: SwiftClient, name: str, data: bytes, segment: int) -> None:
    """``exports/<name>`` as a Static Large Object of ``segment``-byte pieces in ``exports_segments``."""
    client.ensure_container("exports")
    client.ensure_container("exports_segments")
    pieces = []
    for i, offset in enumerate(range(0, len(data), segment)):
        chunk = data[offset : offset + segment]
        etag = client.put_object("exports_segments", f"{name}/{i:08d}", chunk, length=len(chunk))
        pieces.append(Segment("exports_segments", f"{name}/{i:08d}", len(chunk), etag))
    client.put_slo_manifest("exports", name, pieces, {})


def download(client: SwiftClient, container: str, name: str) -> bytes:
    head = client.head_object(container, name)
    assert head is not None
    out, buffer = bytearray(), memoryview(bytearray(1 << 20))
    with client.open_range(container, name, 0, 0) as read_into:
        while n := read_into(buffer):
            out += buffer[:n]
    return bytes(out)


def test_plain_object_moves_in_verified_segments(regions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ord_, iad = regions
    data = disk_bytes(21 * MiB + 123, seed=1)
    ord_.ensure_container("exports")
    ord_.put_object("exports", "plain.vhd", data, length=len(data), etag=hashlib.md5(data).hexdigest())

    moved: list[int] = []
    result = move_object(
        ord_, "exports", "plain.vhd", iad, "imports", "plain.vhd",
        journal=Journal(tmp_path / "j.db"), parallel=3, segment_size=4 * MiB, progress=moved.append,
    )  # fmt: skip
    assert result.segments == 6 and result.segments_sent == 6
    assert result.size == len(data) == sum(moved)
    assert "MD5" in result.verified_by
    head = iad.head_object("imports", "plain.vhd")
    assert head is not None and head.slo and head.size == len(data)
    assert hashlib.sha256(download(iad, "imports", "plain.vhd")).digest() == hashlib.sha256(data).digest()
    assert len(iad.list_objects("imports_segments", "plain.vhd/")) == 6


def test_slo_source_segments_are_sent_with_their_etags(regions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ord_, iad = regions
    data = disk_bytes(12 * MiB + 5, seed=2)
    put_slo(ord_, "big.raw", data, 5 * MiB)

    result = move_object(ord_, "exports", "big.raw", iad, "imports", "big.raw", journal=Journal(tmp_path / "j.db"))
    assert result.segments == 3
    assert "ETags checked by the target" in result.verified_by
    assert download(iad, "imports", "big.raw") == data
    # The target's SLO ETag is the MD5 of the segment ETags, as the source's is.
    assert result.etag == ord_.head_object("exports", "big.raw").etag


def test_source_segments_larger_than_a_piece_are_cut_and_moved_in_parallel(regions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # An export's segments are 1 GiB: moved whole, each would go down one connection. Segments larger
    # than the segment size are cut into ranges (checked by the MD5 sent against the target's ETag);
    # smaller ones keep their own ETags. Also the object's metadata travels with it.
    ord_, iad = regions
    data = disk_bytes(13 * MiB + 7, seed=12)
    put_slo(ord_, "cut.vhd", data, 6 * MiB)  # segments of 6, 6 and 1 MiB (+7 bytes)
    ord_.request("POST", ord_._url("exports", "cut.vhd"), headers={"X-Object-Meta-Kept": "yes"}, ok=(202,))

    result = move_object(ord_, "exports", "cut.vhd", iad, "imports", "cut.vhd", journal=Journal(tmp_path / "j.db"),
                         parallel=3, segment_size=2 * MiB)  # fmt: skip
    assert result.segments == 3 + 3 + 1
    assert "cut piece" in result.verified_by and "ETags checked by the target" in result.verified_by
    assert download(iad, "imports", "cut.vhd") == data
    sizes = [int(e["bytes"]) for e in iad.list_objects("imports_segments", "cut.vhd/")]
    assert sorted(sizes) == sorted([2 * MiB] * 6 + [MiB + 7])
    assert iad.head_object("imports", "cut.vhd").meta.get("x-object-meta-kept") == "yes"


def test_an_interrupted_move_resumes_without_resending(regions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ord_, iad = regions
    data = disk_bytes(16 * MiB, seed=3)
    ord_.ensure_container("exports")
    ord_.put_object("exports", "resume.vhd", data, length=len(data))
    journal = Journal(tmp_path / "j.db")

    class Interrupted(Exception):
        pass

    total = 0

    def stop_halfway(n: int) -> None:
        nonlocal total
        total += n
        if total > 9 * MiB:
            raise Interrupted

    with pytest.raises((Interrupted, MoveError)):
        move_object(ord_, "exports", "resume.vhd", iad, "imports", "resume.vhd",
                    journal=journal, parallel=1, segment_size=2 * MiB, progress=stop_halfway)  # fmt: skip
    assert iad.head_object("imports", "resume.vhd") is None  # nothing half-made is visible
    finished_before = len(journal.segments(next(iter(_jobs(journal)))))
    assert 3 <= finished_before < 8

    result = move_object(ord_, "exports", "resume.vhd", iad, "imports", "resume.vhd", journal=journal,
                         parallel=2, segment_size=2 * MiB)  # fmt: skip
    assert result.segments == 8
    assert result.segments_sent == 8 - finished_before
    assert result.bytes_sent == (8 - finished_before) * 2 * MiB
    assert download(iad, "imports", "resume.vhd") == data


def test_missing_source_is_a_clear_error(regions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ord_, iad = regions
    with pytest.raises(MoveError, match="does not exist in ORD"):
        move_object(ord_, "exports", "nope.vhd", iad, "imports", "nope.vhd", journal=Journal(tmp_path / "j.db"))


def _jobs(journal: Journal) -> list[str]:
    return [row[0] for row in journal._run("SELECT key FROM jobs")]


class _Listener:
    """A TCP listener on a free loopback port whose accept loop hands each client to :meth:`_connected`."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._connected(client)

    def _connected(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class CorruptingProxy(_Listener):
    """A TCP proxy in front of a region that flips one byte in every ``period`` bytes a client sends
    (deep inside request bodies, as a bad link would), ``budget`` times in all: what the target must
    catch."""

    def __init__(self, target: tuple[str, int], budget: int, period: int = 1 << 20) -> None:
        self.target, self.budget, self.period = target, budget, period
        self.flipped = 0
        self.lock = threading.Lock()
        super().__init__()

    def _connected(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        seen = 0
        try:
            while data := src.recv(65536):
                mark = (seen // self.period + 1) * self.period  # the next flip point of this stream
                if outbound and seen + len(data) > mark:
                    with self.lock:
                        if self.flipped < self.budget:
                            self.flipped += 1
                            at = mark - seen
                            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                seen += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def through(proxy: CorruptingProxy, client: SwiftClient) -> SwiftClient:
    """The same account, reached through the proxy."""
    parts = urlsplit(client.storage_url)
    client.storage_url = f"http://127.0.0.1:{proxy.port}{parts.path}"
    return client


def test_a_segment_corrupted_on_the_way_is_caught_and_sent_again(cloud: Cloud, tmp_path: Path) -> None:
    client_cloud = connect("imagehop", str(cloud.clouds_yaml))
    ord_, iad = SwiftClient(client_cloud, "ORD"), SwiftClient(client_cloud, "IAD")
    target = urlsplit(iad.storage_url)
    proxy = CorruptingProxy((target.hostname, target.port), budget=1)
    try:
        data = disk_bytes(8 * MiB, seed=4)
        ord_.ensure_container("exports")
        ord_.put_object("exports", "flaky.vhd", data, length=len(data))
        journal = Journal(tmp_path / "j.db")
        result = move_object(ord_, "exports", "flaky.vhd", through(proxy, iad), "imports", "flaky.vhd",
                             journal=journal, parallel=1, segment_size=2 * MiB)  # fmt: skip
        assert proxy.flipped == 1
        assert result.segments == result.segments_sent == 4
        assert download(SwiftClient(client_cloud, "IAD"), "imports", "flaky.vhd") == data
    finally:
        proxy.close()


def test_a_segment_that_never_arrives_intact_fails_with_the_422(cloud: Cloud, tmp_path: Path) -> None:
    client_cloud = connect("imagehop", str(cloud.clouds_yaml))
    ord_, iad = SwiftClient(client_cloud, "ORD"), SwiftClient(client_cloud, "IAD")
    data = disk_bytes(4 * MiB, seed=5)
    put_slo(ord_, "bad.vhd", data, 2 * MiB)
    target = urlsplit(iad.storage_url)
    proxy = CorruptingProxy((target.hostname, target.port), budget=1000)
    try:
        with pytest.raises(MoveError, match=r"failed after 3 attempt\(s\): the bytes did not match the ETag \(422\)"):
            move_object(ord_, "exports", "bad.vhd", through(proxy, iad), "imports", "bad.vhd",
                        journal=Journal(tmp_path / "j.db"), parallel=1)  # fmt: skip
    finally:
        proxy.close()
    assert SwiftClient(client_cloud, "IAD").head_object("imports", "bad.vhd") is None  # nothing half-made is visible


class ForwardProxy(_Listener):
    """A plain HTTP forward proxy (absolute-form request targets), request by request, keep-alive:
    what a client behind ``http_proxy`` talks to. Answers 407 to a request without ``credentials``
    (Basic); records each (method, path) it forwarded."""

    def __init__(self, credentials: str) -> None:
        self.expected = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.seen: list[tuple[str, str]] = []
        self.refused = 0
        super().__init__()

    def _connected(self, client: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        stream = client.makefile("rb")
        try:
            while line := stream.readline():
                method, target, _ = line.decode().split(" ", 2)
                headers: list[tuple[str, str]] = []
                while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers.append((name.strip(), value.strip()))
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                body = stream.read(length) if length else None
                url = urlsplit(target)
                if dict((k.lower(), v) for k, v in headers).get("proxy-authorization") != self.expected:
                    self.refused += 1
                    client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                    continue
                self.seen.append((method, url.path))
                upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                upstream.putrequest(method, url.path + (f"?{url.query}" if url.query else ""),
                                    skip_host=True, skip_accept_encoding=True)  # fmt: skip
                for name, value in headers:
                    if name.lower() not in ("proxy-connection", "connection"):
                        upstream.putheader(name, value)
                upstream.endheaders(body)
                response = upstream.getresponse()
                data = response.read()
                dropped = ("transfer-encoding", "connection") + (() if method == "HEAD" else ("content-length",))
                out = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
                out += [f"{k}: {v}\r\n" for k, v in response.getheaders() if k.lower() not in dropped]
                out.append("\r\n" if method == "HEAD" else f"Content-Length: {len(data)}\r\n\r\n")
                client.sendall("".join(out).encode() + (b"" if method == "HEAD" else data))
                upstream.close()
        except (OSError, ValueError):
            pass
        finally:
            client.close()


def test_a_move_goes_through_the_proxy_the_environment_names(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ForwardProxy("mover:p@ss")
    monkeypatch.setenv("http_proxy", f"http://mover:p%40ss@127.0.0.1:{proxy.port}")
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        client_cloud = connect("imagehop", str(cloud.clouds_yaml))
        ord_, iad = SwiftClient(client_cloud, "ORD"), SwiftClient(client_cloud, "IAD")
        data = disk_bytes(6 * MiB, seed=6)
        put_slo(ord_, "proxied.vhd", data, 2 * MiB)
        result = move_object(ord_, "exports", "proxied.vhd", iad, "imports", "proxied.vhd",
                             journal=Journal(tmp_path / "j.db"), parallel=2)  # fmt: skip
        assert result.segments_sent == 3
        assert download(iad, "imports", "proxied.vhd") == data
    finally:
        proxy.close()
    iad_path = urlsplit(iad.storage_url).path
    ord_path = urlsplit(ord_.storage_url).path
    sent = [path for method, path in proxy.seen if method == "PUT" and path.startswith(f"{iad_path}/imports_segments/")]
    fetched = [path for method, path in proxy.seen if method == "GET" and path == f"{ord_path}/exports/proxied.vhd"]
    assert len(sent) == 3 and len(fetched) >= 3  # every segment's GET and PUT went through the proxy
    assert proxy.refused == 0  # each with the credentials the proxy's URL holds


def test_no_plan_has_more_pieces_than_an_slo_may_hold() -> None:
    from imagehop.transfer.mover import MAX_SEGMENTS, plan_pieces
    from imagehop.transfer.swift import ObjectHead

    size = 300 << 30  # a plain 300 GiB object, 256 MiB pieces asked for: 1200 of them would be refused
    head = ObjectHead(size=size, etag="x", last_modified="", slo=False, dlo_prefix=None, content_type="")
    pieces = plan_pieces(head, None, 256 * MiB)
    assert len(pieces) <= MAX_SEGMENTS
    assert sum(p.size for p in pieces) == size and pieces[-1].offset + pieces[-1].size == size
    assert len(plan_pieces(head, None, 4 << 30)) == 75  # pieces bigger than needed are left as asked
