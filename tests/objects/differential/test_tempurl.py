"""Issue 12, item 3 (TempURL prefix, ISO 8601, ip_range, digests, container keys and segments) and issue 10,
item 3 (a TempURL touches exactly what it was signed for)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from tests.objects.differential.sides import Side, Sides

HEADERS = ("content-length", "content-disposition", "expires", "x-object-meta-secret", "x-object-meta-public-a")
EXPIRES = 2000000000  # 2033-05-18: fixed, so both servers sign the same thing


def _sign(key: str, method: str, expires: int, path: str, digest: str = "sha256", ip: str = "") -> str:
    body = f"{method}\n{expires}\n{path}"
    if ip:
        body = f"ip={ip}\n{body}"
    return hmac.new(key.encode(), body.encode(), getattr(hashlib, digest)).hexdigest()


def _setup(s: Side) -> None:
    s.req("POST", "", headers={"X-Account-Meta-Temp-URL-Key": "acct-key"}).raise_for_status()
    for name in ("c", "other"):
        s.req("PUT", f"/{s.c(name)}", headers={"X-Container-Meta-Temp-URL-Key": f"{name}-key"}).raise_for_status()
    s.req("PUT", f"/{s.c()}/dir/file", body=b"hello",
          headers={"X-Object-Meta-Secret": "s", "X-Object-Meta-Public-A": "p"}).raise_for_status()  # fmt: skip
    s.req("PUT", f"/{s.c('other')}/private", body=b"private data").raise_for_status()


def _path(s: Side, container: str, obj: str) -> str:
    return f"/v1/{s.accounts['A']}/{s.c(container)}/{obj}"


def _get(s: Side, method: str, container: str, obj: str, params: dict, **headers: str):
    return s.req(method, f"/{s.c(container)}/{obj}?{urlencode(params)}", who="anon", headers=headers)


@pytest.mark.parametrize(
    "how",
    [
        "sha256-hex",
        "sha512-hex",
        "sha1-hex",
        "sha256-b64",
        "sha512-b64url",
        "sha512-wrong",
        "md5-b64",
        "iso",
        "iso-bad",
    ],
)
def test_signatures(sides: Sides, how: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        path = _path(s, "c", "dir/file")
        digest = how.split("-")[0] if how[0] in "sm" else "sha256"
        digest_fn = "md5" if digest == "md5" else digest
        raw = hmac.new(b"acct-key", f"GET\n{EXPIRES}\n{path}".encode(), getattr(hashlib, digest_fn)).digest()
        sig = raw.hex()
        if how.endswith("b64"):
            sig = f"{digest}:{base64.b64encode(raw).decode()}"
        if how.endswith("b64url"):
            sig = f"{digest}:{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"
        if how.endswith("wrong"):
            sig = sig[:-1] + ("1" if sig[-1] == "0" else "0")
        expires = str(EXPIRES)
        if how == "iso":
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EXPIRES))
        if how == "iso-bad":
            expires = "2033-05-18T03:33:20"
        params = {"temp_url_sig": sig, "temp_url_expires": expires}
        return [s.obs(_get(s, m, "c", "dir/file", params), *HEADERS) for m in ("GET", "HEAD")]

    sides.compare(case)


@pytest.mark.parametrize("obj", ["dir/file", "dir/", "dirx/file", "other/x"])
def test_prefix(sides: Sides, obj: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        out = []
        for prefix in ("dir/", "", "d"):
            sig = _sign("c-key", "GET", EXPIRES, f"prefix:{_path(s, 'c', prefix)}")
            params = {"temp_url_sig": sig, "temp_url_expires": EXPIRES, "temp_url_prefix": prefix}
            out.append(s.obs(_get(s, "GET", "c", obj, params), *HEADERS))
        # An object signature used with a prefix, and a prefix signature used without one.
        obj_sig = _sign("c-key", "GET", EXPIRES, _path(s, "c", "dir/file"))
        params = {"temp_url_sig": obj_sig, "temp_url_expires": EXPIRES, "temp_url_prefix": "dir/"}
        out.append(s.obs(_get(s, "GET", "c", "dir/file", params), *HEADERS))
        pre_sig = _sign("c-key", "GET", EXPIRES, f"prefix:{_path(s, 'c', 'dir/')}")
        out.append(s.obs(_get(s, "GET", "c", "dir/file", {"temp_url_sig": pre_sig, "temp_url_expires": EXPIRES})))
        return out

    sides.compare(case)


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.0.0.0/8", "10.0.0.0/8", "::1", "not-an-ip"])
def test_ip_range(sides: Sides, ip: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        sig = _sign("acct-key", "GET", EXPIRES, _path(s, "c", "dir/file"), ip=ip)
        params = {"temp_url_sig": sig, "temp_url_expires": EXPIRES, "temp_url_ip_range": ip}
        return [s.obs(_get(s, "GET", "c", "dir/file", params), *HEADERS)]

    sides.compare(case)


def test_filename_inline_and_methods(sides: Sides) -> None:
    def case(s: Side) -> list:
        _setup(s)
        path = _path(s, "c", "dir/file")
        out = []
        get = {"temp_url_sig": _sign("acct-key", "GET", EXPIRES, path), "temp_url_expires": EXPIRES}
        for extra in ({"filename": "x y.txt"}, {"inline": ""}, {"inline": "", "filename": "é.txt"}):
            out.append(s.obs(_get(s, "GET", "c", "dir/file", {**get, **extra}), *HEADERS))
        for method in ("PUT", "POST", "DELETE"):
            params = {"temp_url_sig": _sign("acct-key", method, EXPIRES, path), "temp_url_expires": EXPIRES}
            out.append(s.obs(s.req(method, f"/{s.c()}/dir/file?{urlencode(params)}", who="anon", body=b"new"),
                             body="status"))  # fmt: skip
        out.append(s.obs(_get(s, "GET", "c", "dir/file", get), body="status"))  # deleted by the DELETE one
        expired = {"temp_url_sig": _sign("acct-key", "GET", 1000, path), "temp_url_expires": 1000}
        out.append(s.obs(_get(s, "GET", "c", "dir/file", expired)))
        out.append(s.obs(s.req("GET", f"/{s.c()}?{urlencode(get)}", who="anon")))
        return out

    sides.compare(case)


@pytest.mark.parametrize("header", ["X-Copy-From", "X-Object-Manifest"])
def test_put_tempurl_cannot_point_elsewhere(sides: Sides, header: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        path = _path(s, "c", "dir/upload")
        out = []
        for method in ("PUT", "POST"):
            params = {"temp_url_sig": _sign("c-key", method, EXPIRES, path), "temp_url_expires": EXPIRES}
            response = s.req(method, f"/{s.c()}/dir/upload?{urlencode(params)}", who="anon", body=b"",
                             headers={header: f"{s.c('other')}/private"})  # fmt: skip
            out.append(s.obs(response))
        out.append(s.obs(s.req("GET", f"/{s.c()}/dir/upload"), "content-length", body="status"))
        return out

    sides.compare(case)


@pytest.mark.parametrize("kind", ["slo", "dlo"])
def test_container_key_does_not_reach_segments_elsewhere(sides: Sides, kind: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        if kind == "slo":
            etag = s.req("HEAD", f"/{s.c('other')}/private").headers["etag"]
            manifest = [{"path": f"/{s.c('other')}/private", "etag": etag}]
            s.req("PUT", f"/{s.c()}/big?multipart-manifest=put", body=json.dumps(manifest)).raise_for_status()
        else:
            s.req("PUT", f"/{s.c()}/big", body=b"", headers={"X-Object-Manifest": f"{s.c('other')}/priv"})
        out = []
        for key in ("c-key", "acct-key"):
            sig = _sign(key, "GET", EXPIRES, _path(s, "c", "big"))
            response = _get(s, "GET", "c", "big", {"temp_url_sig": sig, "temp_url_expires": EXPIRES})
            out.append(s.obs(response, "content-length", body="status") | {"leaked": b"private" in response.content})
        return out

    sides.compare(case)
