"""Issue 12, item 1 (SLO corners) and issue 10, item 1 (segments read and deleted with the caller's own rights)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.objects.differential.sides import Side, Sides

OBJECT_HEADERS = ("etag", "content-length", "content-type", "content-range", "x-static-large-object", "x-parts-count")


def _segments(s: Side, container: str = "segs") -> list[dict]:
    s.req("PUT", f"/{s.c(container)}").raise_for_status()
    entries = []
    for index, size in enumerate((1 << 20, 1 << 20, 1000)):
        data = bytes([65 + index]) * size
        response = s.req("PUT", f"/{s.c(container)}/part{index}", body=data)
        response.raise_for_status()
        entries.append({"path": f"/{s.c(container)}/part{index}", "etag": response.headers["etag"], "size_bytes": size})
    return entries


def _manifest(s: Side, entries: list, name: str = "big", query: str = "", **headers: str):
    s.req("PUT", f"/{s.c()}").raise_for_status()
    return s.req("PUT", f"/{s.c()}/{name}?multipart-manifest=put{query}", body=json.dumps(entries), headers=headers)


MANIFEST_HEADERS = ("content-length", "content-type", "x-static-large-object")


def _manifest_obs(s: Side, response, manifest_etag: str | None = None) -> dict:
    """A manifest view: its ETag is the MD5 of the body (the segments' times differ between servers)."""
    seen = s.obs(response, *MANIFEST_HEADERS)
    seen["etag is md5 of body"] = response.headers.get("etag") == hashlib.md5(response.content).hexdigest()
    return seen


def test_manifest_put_get_head_and_views(sides: Sides) -> None:
    def case(s: Side) -> list:
        entries = _segments(s)
        out = [s.obs(_manifest(s, entries, **{"Content-Type": "application/x-thing"}), "etag", body="status")]
        out.append(s.obs(s.req("HEAD", f"/{s.c()}/big"), *OBJECT_HEADERS))
        got = s.req("GET", f"/{s.c()}/big")
        out.append(s.obs(got, *OBJECT_HEADERS, body=None) | {"md5-of-body": hashlib.md5(got.content).hexdigest()})
        manifest = s.req("GET", f"/{s.c()}/big?multipart-manifest=get")
        out.append(_manifest_obs(s, manifest))
        out.append({"seconds only": all(e["last_modified"].endswith(".000000") for e in manifest.json())})
        out.append(s.obs(s.req("HEAD", f"/{s.c()}/big?multipart-manifest=get"), *MANIFEST_HEADERS))
        out.append(_manifest_obs(s, s.req("GET", f"/{s.c()}/big?multipart-manifest=get&format=raw")))
        # (HEAD ?multipart-manifest=get&format=raw: Swift 2.38 answers 500; imagehop answers as GET without a body.)
        listing = s.req("GET", f"/{s.c()}?format=json").json()[0]
        out.append({"listing hash is the manifest's etag": listing.pop("hash") == manifest.headers["etag"]})
        out.append(s.body(json.dumps(listing).encode(), "application/json"))
        return out

    sides.compare(case)


@pytest.mark.parametrize("part", ["1", "2", "3", "4", "0", "x", "-1"])
def test_part_number(sides: Sides, part: str) -> None:
    def case(s: Side) -> list:
        _manifest(s, _segments(s)).raise_for_status()
        out = []
        for method in ("GET", "HEAD"):
            response = s.req(method, f"/{s.c()}/big?part-number={part}")
            out.append(s.obs(response, *OBJECT_HEADERS, "accept-ranges", body="text" if method == "HEAD" else None))
            if method == "GET" and response.status_code == 206:
                out.append({"body-start": response.content[:4], "len": len(response.content)})
        plain = s.req("PUT", f"/{s.c()}/plain", body=b"0123456789")
        plain.raise_for_status()
        out.append(s.obs(s.req("GET", f"/{s.c()}/plain?part-number={part}"), *OBJECT_HEADERS, body="status"))
        out.append(s.obs(s.req("GET", f"/{s.c()}/big?part-number={part}", headers={"Range": "bytes=0-1"}),
                         *OBJECT_HEADERS, body="status"))  # fmt: skip
        return out

    sides.compare(case)


def test_inline_data_segments(sides: Sides) -> None:
    def case(s: Side) -> list:
        entries = _segments(s)[:1]
        head, tail = base64.b64encode(b"head-").decode(), base64.b64encode(b"-tail").decode()
        entries = [{"data": head}, *entries, {"data": tail}]
        out = [s.obs(_manifest(s, entries), "etag", body="status")]
        got = s.req("GET", f"/{s.c()}/big")
        out.append(s.obs(got, *OBJECT_HEADERS, body=None) | {"head": got.content[:5], "tail": got.content[-5:]})
        out.append(_manifest_obs(s, s.req("GET", f"/{s.c()}/big?multipart-manifest=get")))
        out.append(_manifest_obs(s, s.req("GET", f"/{s.c()}/big?multipart-manifest=get&format=raw")))
        out.append(s.obs(s.req("GET", f"/{s.c()}/big", headers={"Range": "bytes=2-7"}), *OBJECT_HEADERS))
        # Bad inline data: not base64, empty, with other keys.
        for bad in ([{"data": "!!!"}], [{"data": ""}], [{"data": "YQ==", "path": entries[1]["path"]}], [{"data": 5}]):
            out.append(s.obs(_manifest(s, bad, name="bad"), body="status"))
        return out

    sides.compare(case)


def test_heartbeat(sides: Sides) -> None:
    def case(s: Side) -> list:
        entries = _segments(s)
        good = _manifest(s, entries, query="&heartbeat=on", Accept="application/json")
        bad = _manifest(s, [{**entries[0], "etag": "0" * 32}], name="bad", query="&heartbeat=on",
                        Accept="application/json")  # fmt: skip
        return [s.obs(good, "content-type"), s.obs(bad, "content-type")]

    sides.compare(case)


def test_copy_of_a_manifest(sides: Sides) -> None:
    def case(s: Side) -> list:
        _manifest(s, _segments(s)).raise_for_status()
        out = []
        copied = s.req("COPY", f"/{s.c()}/big", headers={"Destination": f"{s.c()}/flat"})
        out.append(s.obs(copied, "etag", body="status"))
        out.append(s.obs(s.req("HEAD", f"/{s.c()}/flat"), *OBJECT_HEADERS))
        kept = s.req("COPY", f"/{s.c()}/big?multipart-manifest=get", headers={"Destination": f"{s.c()}/man"})
        out.append(s.obs(kept, "etag", body="status"))
        out.append(s.obs(s.req("HEAD", f"/{s.c()}/man"), *OBJECT_HEADERS))
        listing = s.req("GET", f"/{s.c()}?format=json").json()
        manifest_etag = s.req("HEAD", f"/{s.c()}/big?multipart-manifest=get").headers["etag"]
        out.append([(e["name"], e["hash"] == manifest_etag, "slo_etag" in e) for e in listing])
        return out

    sides.compare(case)


def test_manifest_errors(sides: Sides) -> None:
    def case(s: Side) -> list:
        entries = _segments(s)
        out = []
        for bad in (
            [{**entries[0], "etag": "0" * 32}],
            [{**entries[0], "size_bytes": 5}],
            [{"path": f"/{s.c()}/missing"}],
            [{**entries[0], "range": "10-5"}],
            [],
            {"path": "x"},
        ):
            out.append(s.obs(_manifest(s, bad, name="bad", Accept="application/json")))
        return out

    sides.compare(case)


# --- issue 10, item 1: segments with the caller's own authorisation ---------------------------------


def _grant(s: Side) -> str:
    return f"{s.accounts['B'].removeprefix('AUTH_')}:*" if s.name == "imagehop" else "test2:tester2"


def test_manifest_put_cannot_name_segments_the_caller_cannot_read(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c('private')}").raise_for_status()
        secret = s.req("PUT", f"/{s.c('private')}/secret", body=b"S" * 2000)
        s.req("PUT", f"/{s.c('shared')}", headers={"X-Container-Write": _grant(s), "X-Container-Read": _grant(s)})
        entry = [{"path": f"/{s.c('private')}/secret", "etag": secret.headers["etag"], "size_bytes": 2000}]
        put = s.req("PUT", f"/{s.c('shared')}/steal?multipart-manifest=put", who="other", body=json.dumps(entry),
                    headers={"Accept": "application/json"})  # fmt: skip
        out = [s.obs(put)]
        out.append(s.obs(s.req("GET", f"/{s.c('shared')}/steal", who="other"), body="status"))
        return out

    sides.compare(case)


def test_manifest_get_and_delete_check_segments_again(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c('private')}").raise_for_status()
        secret = s.req("PUT", f"/{s.c('private')}/secret", body=b"S" * 2000)
        s.req("PUT", f"/{s.c('shared')}", headers={"X-Container-Write": _grant(s), "X-Container-Read": _grant(s)})
        entry = [{"path": f"/{s.c('private')}/secret", "etag": secret.headers["etag"], "size_bytes": 2000}]
        # The owner makes the manifest; the other tenant may read and write the shared container only.
        s.req("PUT", f"/{s.c('shared')}/big?multipart-manifest=put", body=json.dumps(entry)).raise_for_status()
        out = [s.obs(s.req("GET", f"/{s.c('shared')}/big", who="other"), "content-length", body="status")]
        out.append(s.obs(s.req("HEAD", f"/{s.c('shared')}/big", who="other"), "content-length"))
        out.append(s.obs(s.req("GET", f"/{s.c('shared')}/big?multipart-manifest=get", who="other")))
        deleted = s.req("DELETE", f"/{s.c('shared')}/big?multipart-manifest=delete", who="other",
                        headers={"Accept": "application/json"})  # fmt: skip
        out.append(s.obs(deleted))
        out.append(s.obs(s.req("HEAD", f"/{s.c('private')}/secret"), "content-length"))
        out.append(s.obs(s.req("HEAD", f"/{s.c('shared')}/big"), "content-length"))
        return out

    sides.compare(case)
