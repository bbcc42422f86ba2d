"""The Swift API over HTTP (curl and httpx) against `imagehop serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from urllib.parse import quote, urlsplit

import httpx
import pytest

from imagehop.objects.tempurl import sign
from tests.support import Cloud, curl, storage_url, wait_for


@pytest.fixture(scope="module")
def demo(cloud: Cloud) -> tuple[str, str]:
    return storage_url(cloud), cloud.token("demo")


def test_container_lifecycle_with_curl(demo: tuple[str, str]) -> None:
    url, token = demo
    auth = ["-H", f"X-Auth-Token: {token}"]
    assert curl("-X", "PUT", *auth, "-H", "X-Container-Meta-Owner: ops", f"{url}/life").status == 201
    assert curl("-X", "PUT", *auth, f"{url}/life").status == 202
    r = curl("-I", *auth, f"{url}/life")
    assert r.status == 204
    assert r.headers["x-container-object-count"] == "0"
    assert r.headers["x-container-meta-owner"] == "ops"
    assert curl("-X", "POST", *auth, "-H", "X-Remove-Container-Meta-Owner: x", f"{url}/life").status == 204
    assert "x-container-meta-owner" not in curl("-I", *auth, f"{url}/life").headers

    r = curl("-X", "PUT", *auth, "--data-binary", "hello world", f"{url}/life/dir/hello.txt")
    assert r.status == 201
    assert r.headers["etag"] == hashlib.md5(b"hello world").hexdigest()
    assert curl("-X", "DELETE", *auth, f"{url}/life").status == 409
    r = curl(*auth, f"{url}/life")
    assert (r.status, r.body) == (200, b"dir/hello.txt\n")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-container-object-count"] == "1"
    assert r.headers["x-container-bytes-used"] == "11"
    assert curl("-X", "DELETE", *auth, f"{url}/life/dir/hello.txt").status == 204
    assert curl("-X", "DELETE", *auth, f"{url}/life/dir/hello.txt").status == 404
    assert curl(*auth, f"{url}/life").status == 204  # an empty text listing
    assert curl(*auth, f"{url}/life?format=json").body == b"[]"
    assert curl("-X", "DELETE", *auth, f"{url}/life").status == 204
    assert curl("-X", "DELETE", *auth, f"{url}/life").status == 404
    assert curl("-I", *auth, f"{url}/life").status == 404


def test_object_put_get_head_post(demo: tuple[str, str]) -> None:
    url, token = demo
    h = {"X-Auth-Token": token}
    httpx.put(f"{url}/objs", headers=h)
    data = bytes(range(256)) * 1000
    put = httpx.put(
        f"{url}/objs/data.bin",
        headers={
            **h,
            "X-Object-Meta-Kind": "bytes",
            "Content-Type": "app/x",
            "ETag": f'"{hashlib.md5(data).hexdigest()}"',
        },
        content=data,
    )
    assert put.status_code == 201
    got = httpx.get(f"{url}/objs/data.bin", headers=h)
    assert got.content == data
    assert got.headers["content-type"] == "app/x"
    assert got.headers["x-object-meta-kind"] == "bytes"
    assert got.headers["etag"] == hashlib.md5(data).hexdigest()
    assert got.headers["accept-ranges"] == "bytes"
    head = httpx.head(f"{url}/objs/data.bin", headers=h)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))

    post = httpx.post(f"{url}/objs/data.bin", headers={**h, "X-Object-Meta-Other": "1"})
    assert post.status_code == 202
    head = httpx.head(f"{url}/objs/data.bin", headers=h)
    assert head.headers["x-object-meta-other"] == "1"
    assert "x-object-meta-kind" not in head.headers  # POST replaces user metadata

    # chunked transfer-encoding (a generator body has no length)
    put = httpx.put(f"{url}/objs/chunked", headers=h, content=iter([b"abc"] * 1000))
    assert put.status_code == 201
    assert httpx.get(f"{url}/objs/chunked", headers=h).content == b"abc" * 1000

    # names are UTF-8 and may hold slashes; nothing reaches the filesystem
    name = "ünï/../../../etc/passwd %?#"
    assert httpx.put(f"{url}/objs/{quote(name, safe='')}", headers=h, content=b"x").status_code == 201
    assert httpx.get(f"{url}/objs/{quote(name, safe='')}", headers=h).content == b"x"
    names = [e["name"] for e in httpx.get(f"{url}/objs?format=json", headers=h).json()]
    assert name in names


def test_ranges_and_conditionals(demo: tuple[str, str]) -> None:
    url, token = demo
    h = {"X-Auth-Token": token}
    httpx.put(f"{url}/cond", headers=h)
    data = b"0123456789" * 10
    etag = httpx.put(f"{url}/cond/o", headers=h, content=data).headers["etag"]
    r = httpx.get(f"{url}/cond/o", headers={**h, "Range": "bytes=10-19"})
    assert (r.status_code, r.content, r.headers["content-range"]) == (206, data[10:20], "bytes 10-19/100")
    r = httpx.get(f"{url}/cond/o", headers={**h, "Range": "bytes=-5"})
    assert r.content == data[-5:]
    r = httpx.get(f"{url}/cond/o", headers={**h, "Range": "bytes=0-1,98-"})
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
    assert b"Content-Range: bytes 0-1/100\r\n\r\n01\r\n" in r.content
    assert b"Content-Range: bytes 98-99/100\r\n\r\n89\r\n" in r.content
    r = httpx.get(f"{url}/cond/o", headers={**h, "Range": "bytes=200-300"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */100"
    assert httpx.get(f"{url}/cond/o", headers={**h, "Range": "parsecs=8-12"}).status_code == 200

    assert httpx.get(f"{url}/cond/o", headers={**h, "If-Match": etag}).status_code == 200
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-Match": '"nope"'}).status_code == 412
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-None-Match": etag}).status_code == 304
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-None-Match": "other"}).status_code == 200
    future = "Fri, 01 Jan 2100 00:00:00 GMT"
    past = "Thu, 01 Jan 1970 00:00:00 GMT"
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-Modified-Since": future}).status_code == 304
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-Modified-Since": past}).status_code == 200
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-Unmodified-Since": past}).status_code == 412
    assert httpx.get(f"{url}/cond/o", headers={**h, "If-Unmodified-Since": future}).status_code == 200
    assert httpx.put(f"{url}/cond/o", headers={**h, "If-None-Match": "*"}, content=b"x").status_code == 412
    assert httpx.put(f"{url}/cond/o", headers={**h, "If-None-Match": "abc"}, content=b"x").status_code == 400


def test_error_statuses(demo: tuple[str, str], cloud: Cloud) -> None:
    url, token = demo
    auth = ["-H", f"X-Auth-Token: {token}"]
    curl("-X", "PUT", *auth, f"{url}/errs")
    # ETag mismatch → 422 and nothing stored
    r = curl(
        "-X", "PUT", *auth, "-H", "ETag: 0123456789abcdef0123456789abcdef", "--data-binary", "x", f"{url}/errs/bad"
    )
    assert r.status == 422
    assert curl("-I", *auth, f"{url}/errs/bad").status == 404
    # no length → 411; bad transfer-encoding → 501; bad content-length → 400
    assert raw_request(url, "PUT", "/errs/nolen", {"X-Auth-Token": token})[0] == 411
    assert raw_request(url, "PUT", "/errs/te", {"X-Auth-Token": token, "Transfer-Encoding": "gzip, chunked"})[0] == 501
    assert raw_request(url, "PUT", "/errs/cl", {"X-Auth-Token": token, "Content-Length": "abc"})[0] == 400
    # too large → 413 at once: the answer comes to a request head sent without its body
    status, _ = raw_request(url, "PUT", "/errs/huge", {"X-Auth-Token": token, "Content-Length": str(5368709123)})
    assert status == 413
    # missing container → 404; bad paths and limits → 412; long names and metadata → 400
    assert curl("-X", "PUT", *auth, "--data-binary", "x", f"{url}/nocontainer/o").status == 404
    assert curl(*auth, f"{url}/errs?limit=10001").status == 412
    assert curl(*auth, f"{url}/errs/%FF%FE").status == 412
    assert curl("-X", "PUT", *auth, urlsplit(url)._replace(path="/v1").geturl()).status == 412
    assert curl("-X", "PUT", *auth, f"{url}/{'c' * 257}").status == 400
    assert curl("-X", "PUT", *auth, "--data-binary", "x", f"{url}/errs/{'o' * 1025}").status == 400
    assert (
        curl("-X", "PUT", *auth, "-H", f"X-Object-Meta-{'n' * 129}: v", "--data-binary", "x", f"{url}/errs/m").status
        == 400
    )
    assert (
        curl("-X", "PUT", *auth, "-H", f"X-Object-Meta-N: {'v' * 257}", "--data-binary", "x", f"{url}/errs/m").status
        == 400
    )
    too_many = [arg for i in range(91) for arg in ("-H", f"X-Object-Meta-K{i}: v")]
    assert curl("-X", "PUT", *auth, *too_many, "--data-binary", "x", f"{url}/errs/m").status == 400
    assert curl("-X", "PUT", *auth, "-H", "X-Delete-At: 12", "--data-binary", "x", f"{url}/errs/m").status == 400
    # auth: no token → 401, bad token → 401, account listing limit
    assert curl(f"{url}/errs").status == 401
    assert curl("-H", "X-Auth-Token: nonsense", f"{url}/errs").status == 401
    # the account itself is not the user's to create or delete: 403, as a real Swift answers its admin
    assert curl("-X", "DELETE", *auth, url).status == 403
    assert curl("-X", "PUT", *auth, url).status == 403
    assert curl("-X", "PUT", url).status == 401
    assert curl("-I", *auth, url).status == 204


def raw_request(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send only a request head (no body) and read the answer: what curl cannot send."""
    parts = urlsplit(url)
    lines = [f"{method} {parts.path}{path} HTTP/1.1", f"Host: {parts.netloc}"] + [
        f"{k}: {v}" for k, v in headers.items()
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_account_listing_and_metadata(cloud: Cloud) -> None:
    url, h = storage_url(cloud, "alt"), {"X-Auth-Token": cloud.token("alt")}
    for name in ("l-a", "l-b", "l-c/x", "m"):
        httpx.put(f"{url}/{name.split('/')[0] if '/' in name else name}", headers=h)
    httpx.put(f"{url}/l-b/obj", headers=h, content=b"12345")
    listed = httpx.get(url, params={"format": "json", "prefix": "l-"}, headers=h).json()
    assert [e["name"] for e in listed] == ["l-a", "l-b", "l-c"]
    assert listed[1]["count"] == 1 and listed[1]["bytes"] == 5
    assert httpx.get(url, params={"prefix": "l-", "reverse": "on"}, headers=h).text == "l-c\nl-b\nl-a\n"
    assert httpx.get(url, params={"marker": "l-a", "end_marker": "l-c"}, headers=h).text == "l-b\n"
    assert httpx.get(url, params={"limit": "2"}, headers=h).text == "l-a\nl-b\n"
    xml = httpx.get(url, params={"format": "xml", "prefix": "l-b"}, headers=h)
    assert xml.headers["content-type"] == "application/xml; charset=utf-8"
    assert "<container><name>l-b</name><count>1</count><bytes>5</bytes>" in xml.text
    assert httpx.post(url, headers={**h, "X-Account-Meta-Team": "blue"}).status_code == 204
    head = httpx.head(url, headers=h)
    assert head.status_code == 204
    assert head.headers["x-account-meta-team"] == "blue"
    assert int(head.headers["x-account-container-count"]) >= 4
    assert int(head.headers["x-account-bytes-used"]) >= 5


def test_container_listing_parameters(cloud: Cloud) -> None:
    url, h = storage_url(cloud), {"X-Auth-Token": cloud.token()}
    httpx.put(f"{url}/lst", headers=h)
    names = ["a", "b/1", "b/2", "b/c/3", "c", "d/4", "é"]
    for name in names:
        httpx.put(f"{url}/lst/{name}", headers=h, content=name.encode())

    def names_of(**params: str) -> list[str]:
        entries = httpx.get(f"{url}/lst", params={"format": "json", **params}, headers=h).json()
        return [e.get("name", e.get("subdir")) for e in entries]

    assert names_of() == names
    assert names_of(delimiter="/") == ["a", "b/", "c", "d/", "é"]
    assert names_of(prefix="b/", delimiter="/") == ["b/1", "b/2", "b/c/"]
    assert names_of(delimiter="/", marker="b/") == ["c", "d/", "é"]
    assert names_of(delimiter="/", reverse="true") == ["é", "d/", "c", "b/", "a"]
    assert names_of(marker="b/1", end_marker="d/4") == ["b/2", "b/c/3", "c"]
    assert names_of(limit="2", marker="a") == ["b/1", "b/2"]
    assert names_of(path="b") == ["b/1", "b/2"]  # as Swift: deeper names are left out, no subdirs
    entry = httpx.get(f"{url}/lst", params={"format": "json", "prefix": "c"}, headers=h).json()[0]
    assert set(entry) == {"name", "hash", "bytes", "content_type", "last_modified"}
    assert entry["hash"] == hashlib.md5(b"c").hexdigest()
    xml = httpx.get(f"{url}/lst", params={"format": "xml", "delimiter": "/"}, headers=h).text
    assert '<subdir name="b/"><name>b/</name></subdir>' in xml
    assert httpx.get(f"{url}/lst", headers={**h, "Accept": "application/json"}).headers["content-type"] == (
        "application/json; charset=utf-8"
    )


def test_tenant_isolation_and_acls(cloud: Cloud) -> None:
    demo_url, alt_url = storage_url(cloud, "demo"), storage_url(cloud, "alt")
    demo, alt = {"X-Auth-Token": cloud.token("demo")}, {"X-Auth-Token": cloud.token("alt")}
    alt_id = cloud.credentials()["alt"]["tenant_id"]
    httpx.put(f"{demo_url}/private", headers=demo)
    httpx.put(f"{demo_url}/private/secret", headers=demo, content=b"s3cret")
    for method, path in (
        ("GET", ""),
        ("HEAD", ""),
        ("POST", ""),
        ("GET", "/private"),
        ("PUT", "/private"),
        ("DELETE", "/private"),
        ("GET", "/private/secret"),
        ("PUT", "/private/secret"),
        ("DELETE", "/private/secret"),
        ("POST", "/private/secret"),
    ):
        assert httpx.request(method, demo_url + path, headers=alt, content=b"x").status_code == 403, (method, path)
    assert httpx.get(f"{demo_url}/private/secret", headers=demo).content == b"s3cret"
    # the admin may reach any account
    admin = {"X-Auth-Token": cloud.token("admin")}
    assert httpx.get(f"{demo_url}/private/secret", headers=admin).content == b"s3cret"
    assert httpx.get(alt_url, headers=demo).status_code == 403

    # a read ACL for alt's project: list and read, not write
    assert httpx.post(f"{demo_url}/private", headers={**demo, "X-Container-Read": f"{alt_id}:*"}).status_code == 204
    assert httpx.get(f"{demo_url}/private", headers=alt).text == "secret\n"
    assert httpx.get(f"{demo_url}/private/secret", headers=alt).content == b"s3cret"
    assert httpx.put(f"{demo_url}/private/new", headers=alt, content=b"x").status_code == 403
    # a write ACL: alt may write objects, still not change the container
    httpx.post(f"{demo_url}/private", headers={**demo, "X-Container-Write": f"{alt_id}:*"})
    assert httpx.put(f"{demo_url}/private/new", headers=alt, content=b"x").status_code == 201
    assert httpx.delete(f"{demo_url}/private/new", headers=alt).status_code == 204
    assert httpx.post(f"{demo_url}/private", headers={**alt, "X-Container-Read": ""}).status_code == 403
    assert httpx.delete(f"{demo_url}/private", headers=alt).status_code == 403
    # anonymous: nothing, until .r:*
    assert httpx.get(f"{demo_url}/private/secret").status_code == 401
    httpx.post(f"{demo_url}/private", headers={**demo, "X-Container-Read": ".r:*"})
    assert httpx.get(f"{demo_url}/private/secret").content == b"s3cret"
    assert httpx.get(f"{demo_url}/private").status_code == 401
    assert httpx.get(f"{demo_url}/private", headers=alt).status_code == 403  # the ACL no longer names alt


def test_tempurl(cloud: Cloud) -> None:
    url, h = storage_url(cloud), {"X-Auth-Token": cloud.token()}
    httpx.put(f"{url}/temp", headers=h)
    httpx.put(f"{url}/temp/file", headers=h, content=b"temporary")
    httpx.post(url, headers={**h, "X-Account-Meta-Temp-URL-Key": "account-key"})
    httpx.post(f"{url}/temp", headers={**h, "X-Container-Meta-Temp-URL-Key": "container-key"})
    path = urlsplit(url).path + "/temp/file"
    expires = int(time.time()) + 300
    base = urlsplit(url)._replace(path=path).geturl()

    for key, digest in (("account-key", "sha256"), ("container-key", "sha512")):
        sig = sign(key, "GET", expires, path, digest)
        got = httpx.get(base, params={"temp_url_sig": sig, "temp_url_expires": expires})
        assert (got.status_code, got.content) == (200, b"temporary")
        assert httpx.head(base, params={"temp_url_sig": sig, "temp_url_expires": expires}).status_code == 200
    sig = sign("account-key", "GET", expires, path)
    wrong = sig[:-1] + ("1" if sig[-1] == "0" else "0")
    assert httpx.get(base, params={"temp_url_sig": wrong, "temp_url_expires": expires}).status_code == 401
    assert httpx.get(base, params={"temp_url_sig": sig, "temp_url_expires": expires + 1}).status_code == 401
    assert httpx.put(base, params={"temp_url_sig": sig, "temp_url_expires": expires}, content=b"x").status_code == 401
    assert httpx.delete(base, params={"temp_url_sig": sig, "temp_url_expires": expires}).status_code == 401
    past = int(time.time()) - 10
    old = sign("account-key", "GET", past, path)
    assert httpx.get(base, params={"temp_url_sig": old, "temp_url_expires": past}).status_code == 401
    wrong_key = sign("other-key", "GET", expires, path)
    assert httpx.get(base, params={"temp_url_sig": wrong_key, "temp_url_expires": expires}).status_code == 401
    put_sig = sign("account-key", "PUT", expires, path)
    assert (
        httpx.put(base, params={"temp_url_sig": put_sig, "temp_url_expires": expires}, content=b"replaced").status_code
        == 201
    )
    assert httpx.get(base, headers=h).content == b"replaced"


def test_bulk_delete_copy_and_expiry(cloud: Cloud) -> None:
    url, h = storage_url(cloud), {"X-Auth-Token": cloud.token()}
    httpx.put(f"{url}/bulk", headers=h)
    httpx.put(f"{url}/bulk2", headers=h)
    for i in range(5):
        httpx.put(f"{url}/bulk/o{i}", headers=h, content=b"x")
    copy = httpx.request(
        "COPY", f"{url}/bulk/o0", headers={**h, "Destination": "/bulk2/copy", "X-Object-Meta-New": "1"}
    )
    assert copy.status_code == 201 and copy.headers["x-copied-from"] == "bulk/o0"
    put_copy = httpx.put(f"{url}/bulk2/copy2", headers={**h, "X-Copy-From": "/bulk/o1", "Content-Length": "0"})
    assert put_copy.status_code == 201
    assert httpx.get(f"{url}/bulk2/copy2", headers=h).content == b"x"
    assert httpx.request("COPY", f"{url}/bulk/o0", headers=h).status_code == 412
    assert httpx.put(f"{url}/bulk2/c3", headers={**h, "X-Copy-From": "/bulk/none"}).status_code == 404

    body = "\n".join(["/bulk/o0", "/bulk/o1", "/bulk/missing", "/bulk2"]) + "\n"
    result = httpx.post(
        f"{url}?bulk-delete", headers={**h, "Accept": "application/json", "Content-Type": "text/plain"}, content=body
    )
    assert result.status_code == 200
    doc = result.json()
    assert doc["Number Deleted"] == 2 and doc["Number Not Found"] == 1
    assert doc["Errors"] == [["/bulk2", "409 Conflict"]]
    assert httpx.get(f"{url}/bulk", headers=h).text == "o2\no3\no4\n"

    # X-Delete-After becomes X-Delete-At on the server's clock: checked with a span no load outlasts
    before = time.time()
    put = httpx.put(f"{url}/bulk/short", headers={**h, "X-Delete-After": "600"}, content=b"x")
    assert put.status_code == 201
    delete_at = int(httpx.head(f"{url}/bulk/short", headers=h).headers["x-delete-at"])
    assert int(before) + 600 <= delete_at <= time.time() + 600
    # then it expires one second from whenever the server takes the POST, however late that is
    assert httpx.post(f"{url}/bulk/short", headers={**h, "X-Delete-After": "1"}).status_code == 202
    wait_for(lambda: httpx.get(f"{url}/bulk/short", headers=h).status_code == 404, "the object expires")
    assert "short" not in httpx.get(f"{url}/bulk", headers=h).text


def test_slo_manifest_api(cloud: Cloud) -> None:
    url, h = storage_url(cloud), {"X-Auth-Token": cloud.token()}
    httpx.put(f"{url}/slo", headers=h)
    segs = [b"a" * 1000, b"b" * 2000, b"c" * 10]
    etags = [httpx.put(f"{url}/slo/seg{i}", headers=h, content=s).headers["etag"] for i, s in enumerate(segs)]
    manifest = [{"path": f"/slo/seg{i}", "etag": etags[i], "size_bytes": len(s)} for i, s in enumerate(segs)]
    bad = [
        *manifest[:1],
        {"path": "/slo/nope", "etag": None},
        {"path": "/slo/seg1", "etag": "0" * 32},
        {"path": "/slo/seg2", "size_bytes": 3},
    ]
    r = httpx.put(f"{url}/slo/big?multipart-manifest=put", headers={**h, "Accept": "application/json"}, json=bad)
    assert r.status_code == 400
    assert r.json()["Errors"] == [
        ["/slo/nope", "404 Not Found"],
        ["/slo/seg1", "Etag Mismatch"],
        ["/slo/seg2", "Size Mismatch"],
    ]
    assert httpx.put(f"{url}/slo/big?multipart-manifest=put", headers=h, content=b"{not json").status_code == 400
    slo_etag = hashlib.md5("".join(etags).encode()).hexdigest()
    r = httpx.put(f"{url}/slo/big?multipart-manifest=put", headers={**h, "Etag": "0" * 32}, json=manifest)
    assert r.status_code == 422
    r = httpx.put(f"{url}/slo/big?multipart-manifest=put", headers=h, json=manifest)
    assert r.status_code == 201 and r.headers["etag"] == f'"{slo_etag}"'
    whole = b"".join(segs)
    got = httpx.get(f"{url}/slo/big", headers=h)
    assert got.content == whole and got.headers["etag"] == f'"{slo_etag}"'
    assert got.headers["x-static-large-object"] == "True"
    ranged = httpx.get(f"{url}/slo/big", headers={**h, "Range": "bytes=990-1010"})
    assert ranged.status_code == 206 and ranged.content == whole[990:1011]
    listed = next(e for e in httpx.get(f"{url}/slo?format=json", headers=h).json() if e["name"] == "big")
    assert listed["bytes"] == len(whole) and listed["slo_etag"] == f'"{slo_etag}"'
    stored = httpx.get(f"{url}/slo/big?multipart-manifest=get", headers=h).json()
    assert [(e["name"], e["hash"], e["bytes"]) for e in stored] == [
        (m["path"], m["etag"], m["size_bytes"]) for m in manifest
    ]
    deleted = httpx.delete(f"{url}/slo/big?multipart-manifest=delete", headers={**h, "Accept": "application/json"})
    assert deleted.status_code == 200 and json.loads(deleted.content)["Number Deleted"] == 4
    assert httpx.get(f"{url}/slo", headers=h).status_code == 204


def test_dlo_manifest_api(cloud: Cloud) -> None:
    url, h = storage_url(cloud), {"X-Auth-Token": cloud.token()}
    httpx.put(f"{url}/dlo", headers=h)
    parts = [b"1" * 100, b"2" * 50, b"3" * 7]
    for i, part in enumerate(parts):
        httpx.put(f"{url}/dlo/segs/{i:04d}", headers=h, content=part)
    r = httpx.put(f"{url}/dlo/manifest", headers={**h, "X-Object-Manifest": "dlo/segs/"}, content=b"")
    assert r.status_code == 201 and r.headers["etag"] == hashlib.md5(b"").hexdigest()
    got = httpx.get(f"{url}/dlo/manifest", headers=h)
    assert got.content == b"".join(parts)
    assert got.headers["x-object-manifest"] == "dlo/segs/"
    etags = "".join(hashlib.md5(p).hexdigest() for p in parts)
    assert got.headers["etag"] == f'"{hashlib.md5(etags.encode()).hexdigest()}"'
    ranged = httpx.get(f"{url}/dlo/manifest", headers={**h, "Range": "bytes=95-155"})
    assert ranged.content == b"".join(parts)[95:156]
    assert httpx.put(f"{url}/dlo/bad", headers={**h, "X-Object-Manifest": "noslash"}, content=b"").status_code == 400


def test_options_v1_0_bulk_delete_by_delete_and_absolute_delete_at(cloud: Cloud) -> None:
    url, h = storage_url(cloud), {"X-Auth-Token": cloud.token()}
    assert httpx.put(f"{url}/more", headers=h).status_code == 201
    for i in range(3):
        assert httpx.put(f"{url}/more/o{i}", headers=h, content=b"x").status_code == 201

    # OPTIONS: 200 and the methods of that level, with or without a token (as a real Swift 2.38 answers)
    levels = (url, f"{url}/more", f"{url}/more/o0")
    for path, allowed in zip(levels, ("GET, POST, PUT, DELETE, OPTIONS, HEAD",) * 2 + ("GET, POST, PUT, DELETE, "
                                      "OPTIONS, HEAD, COPY",), strict=True):  # fmt: skip
        for headers in (h, {}):
            response = httpx.options(path, headers=headers)
            assert (response.status_code, response.headers["allow"]) == (200, allowed), (path, headers)

    # /v1.0/ is the same API as /v1/
    v10 = url.replace("/v1/", "/v1.0/")
    assert httpx.put(f"{v10}/more/via-v1.0", headers=h, content=b"old path").status_code == 201
    assert httpx.get(f"{url}/more/via-v1.0", headers=h).content == b"old path"
    assert httpx.get(f"{v10}/more", headers=h).text == "o0\no1\no2\nvia-v1.0\n"
    assert httpx.get(f"{v10}/more").status_code == 401

    # bulk delete with DELETE ?bulk-delete, as with POST
    body = b"/more/o0\n/more/o1\n/more/missing\n"
    deleted = httpx.request("DELETE", f"{url}?bulk-delete", content=body,
                            headers={**h, "Accept": "application/json", "Content-Type": "text/plain"})  # fmt: skip
    assert deleted.status_code == 200
    doc = deleted.json()
    assert (doc["Number Deleted"], doc["Number Not Found"], doc["Errors"]) == (2, 1, [])
    assert httpx.get(f"{url}/more", headers=h).text == "o2\nvia-v1.0\n"
    alt = {"X-Auth-Token": cloud.token("alt"), "Accept": "application/json", "Content-Type": "text/plain"}
    refused = httpx.request("DELETE", f"{url}?bulk-delete", content=b"/more/o2\n", headers=alt)
    assert refused.status_code == 403
    assert httpx.get(f"{url}/more/o2", headers=h).status_code == 200

    # an absolute X-Delete-At: kept, shown, and the object is gone from then on
    soon = int(time.time()) + 8  # room for a loaded machine: the PUT must arrive before it
    assert httpx.put(f"{url}/more/soon", headers={**h, "X-Delete-At": str(soon)}, content=b"x").status_code == 201
    assert httpx.head(f"{url}/more/soon", headers=h).headers["x-delete-at"] == str(soon)
    wait_for(lambda: httpx.get(f"{url}/more/soon", headers=h).status_code == 404, "the object expires")
    for value, message in ((str(int(time.time()) - 10), "X-Delete-At in past"), ("abc", "Non-integer X-Delete-At")):
        response = httpx.put(f"{url}/more/bad", headers={**h, "X-Delete-At": value}, content=b"x")
        assert (response.status_code, response.text) == (400, message), value
        post = httpx.post(f"{url}/more/o2", headers={**h, "X-Delete-At": value})
        assert post.status_code == 400, value
    assert httpx.head(f"{url}/more/bad", headers=h).status_code == 404
    assert "x-delete-at" not in httpx.head(f"{url}/more/o2", headers=h).headers
