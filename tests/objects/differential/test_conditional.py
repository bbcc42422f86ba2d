"""Issue 12, item 6: conditional and range answers (304, 412, 416, multi-range) of plain and large objects;
issue 10, item 10: non-ASCII and huge ``Range`` headers."""

from __future__ import annotations

import json

import pytest

from tests.objects.differential.sides import Side, Sides

HEADERS = ("etag", "last-modified", "accept-ranges", "content-length", "content-range", "x-object-meta-color",
           "content-type", "x-static-large-object", "x-object-manifest")  # fmt: skip
BODY = bytes(range(256)) * 40


def _objects(s: Side) -> None:
    s.req("PUT", f"/{s.c()}").raise_for_status()
    s.req("PUT", f"/{s.c()}/plain", body=BODY, headers={"X-Object-Meta-Color": "red"}).raise_for_status()
    s.req("PUT", f"/{s.c()}/seg/1", body=BODY[:5000]).raise_for_status()
    s.req("PUT", f"/{s.c()}/seg/2", body=BODY[5000:]).raise_for_status()
    manifest = [{"path": f"/{s.c()}/seg/1"}, {"path": f"/{s.c()}/seg/2"}]
    s.req("PUT", f"/{s.c()}/slo?multipart-manifest=put", body=json.dumps(manifest),
          headers={"X-Object-Meta-Color": "blue"}).raise_for_status()  # fmt: skip
    s.req("PUT", f"/{s.c()}/dlo", body=b"", headers={"X-Object-Manifest": f"{s.c()}/seg/",
          "X-Object-Meta-Color": "green"}).raise_for_status()  # fmt: skip


def _multipart(s: Side, response) -> object:
    """A multipart/byteranges body without its random boundary."""
    ctype = response.headers.get("content-type", "")
    if not ctype.startswith("multipart/byteranges"):
        return s.obs(response, *HEADERS)
    boundary = ctype.split("boundary=")[1].encode()
    seen = s.obs(response, "etag", "accept-ranges", body=None)
    seen["parts"] = [part.replace(b"\r\n", b"|") for part in response.content.split(b"--" + boundary)]
    return seen


@pytest.mark.parametrize("name", ["plain", "slo", "dlo"])
def test_conditional_requests(sides: Sides, name: str) -> None:
    def case(s: Side) -> list:
        _objects(s)
        head = s.req("HEAD", f"/{s.c()}/{name}")
        etag, modified = head.headers["etag"], head.headers["last-modified"]
        out = []
        matching = [] if name == "dlo" else [{"If-Match": etag}, {"If-Match": "*"}]
        # (A DLO with If-Match of its own ETag: Swift 2.38 answers 200 with Content-Type text/html, because the
        # manifest object's own ETag fails the object server's check; imagehop answers as for any object.)
        for headers in (
            {"If-None-Match": etag},
            {"If-None-Match": "*"},
            {"If-None-Match": '"nope"'},
            {"If-Match": '"nope"'},
            *matching,
            {"If-Modified-Since": modified},
            {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
            {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
            {"If-Unmodified-Since": "not a date"},
        ):
            for method in ("GET", "HEAD"):
                out.append(s.obs(s.req(method, f"/{s.c()}/{name}", headers=headers), *HEADERS, body="status"))
        return out

    sides.compare(case)


# Left out, where Swift 2.38 itself fails: "bytes=-0" of a DLO answers 500.
@pytest.mark.parametrize("name", ["plain", "slo", "dlo"])
@pytest.mark.parametrize(
    "spec",
    ["bytes=0-9", "bytes=-5", "bytes=10235-", "bytes=20000-", "bytes=5-2", "bytes=0-1,5-6", "bytes=0-1,20000-30000",
     "bytes=-0", "items=0-1", "bytes=a-b", "bytes=0-4999,5000-5001", "bytes=" + "9" * 5000 + "-",
     "bytes=0-1," * 60 + "0-1", "bytes=\u00e9-1"],
)  # fmt: skip
def test_ranges(sides: Sides, name: str, spec: str) -> None:
    def case(s: Side) -> list:
        _objects(s)
        headers = {"Range": spec.encode("utf-8")}
        return [_multipart(s, s.req("GET", f"/{s.c()}/{name}", headers=headers))]

    if (name, spec) == ("dlo", "bytes=-0"):
        # A documented difference (docs/api-coverage.md), pinned on both sides: Swift 2.38 fails (500, "An
        # error occurred") on an empty suffix of a DLO; imagehop answers 416 as for every other object.
        [ours], [theirs] = sides.run(case)
        assert (ours["status"], theirs["status"]) == (416, 500), (ours, theirs)
        return
    sides.compare(case)
