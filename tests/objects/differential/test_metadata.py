"""Issue 12, item 9 (POST moves Last-Modified, expired objects, DELETE checks paths as PUT) and issue 10,
item 10's object inputs (X-Delete-At/After, metadata limits over many POSTs, listing prefix U+10FFFF)."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from tests.objects.differential.sides import Side, Sides


def test_post_moves_last_modified(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/obj", body=b"x").raise_for_status()
        before = (s.req("HEAD", f"/{s.c()}/obj").headers["last-modified"],
                  s.req("HEAD", f"/{s.c()}").headers.get("last-modified"))  # fmt: skip
        time.sleep(1.1)
        s.req("POST", f"/{s.c()}/obj", headers={"X-Object-Meta-A": "1"}).raise_for_status()
        s.req("POST", f"/{s.c()}", headers={"X-Container-Meta-A": "1"}).raise_for_status()
        after = (s.req("HEAD", f"/{s.c()}/obj").headers["last-modified"],
                 s.req("HEAD", f"/{s.c()}").headers.get("last-modified"))  # fmt: skip
        listing = s.req("GET", f"/{s.c()}?format=json").json()[0]["last_modified"]
        head = time.strptime(s.req("HEAD", f"/{s.c()}/obj").headers["last-modified"], "%a, %d %b %Y %H:%M:%S %Z")
        return [
            {
                "object moved": before[0] != after[0],
                "container moved": before[1] != after[1],
                "listing is the post time": listing[:19] == time.strftime("%Y-%m-%dT%H:%M:%S", head),
            }
        ]

    sides.compare(case)


@pytest.mark.parametrize(
    "headers",
    [{"X-Delete-At": "inf"}, {"X-Delete-At": "1e400"}, {"X-Delete-At": "1.5"}, {"X-Delete-At": "-1"},
     {"X-Delete-At": "9" * 5000}, {"X-Delete-At": "99999999999"}, {"X-Delete-After": "9" * 30},
     {"X-Delete-After": "9" * 5000}, {"X-Delete-After": "0"}, {"X-Delete-After": "-5"}, {"X-Delete-After": "nan"},
     {"X-Delete-After": "3600"}],
)  # fmt: skip
def test_expiry_headers(sides: Sides, headers: dict) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        out = [s.obs(s.req("PUT", f"/{s.c()}/obj", body=b"x", headers=headers), body="text")]
        s.req("PUT", f"/{s.c()}/obj2", body=b"x").raise_for_status()
        out.append(s.obs(s.req("POST", f"/{s.c()}/obj2", headers=headers), body="status"))
        at = s.req("HEAD", f"/{s.c()}/obj").headers.get("x-delete-at")
        out.append({"x-delete-at digits": None if at is None else len(at), "capped": at == "9999999999"})
        return out

    sides.compare(case)


def test_expired_objects_disappear(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/soon", body=b"x", headers={"X-Delete-After": "1"}).raise_for_status()
        time.sleep(2.2)
        return [s.obs(s.req(m, f"/{s.c()}/soon"), body="status") for m in ("GET", "HEAD", "POST", "DELETE")] + [
            s.obs(s.req("GET", f"/{s.c()}?format=json"))
        ]

    sides.compare(case)


def test_metadata_limits_across_posts(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/obj", body=b"x").raise_for_status()
        out = []
        # 30 items a POST: more would not fit the real Swift's xattrs on this file system (ext4: 507).
        for round_ in range(4):  # an object POST replaces the metadata; a container POST adds to it
            headers = {f"X-Object-Meta-R{round_}-{i}": "v" * 10 for i in range(30)}
            out.append(s.obs(s.req("POST", f"/{s.c()}/obj", headers=headers), body="status"))
            headers = {f"X-Container-Meta-R{round_}-{i}": "v" * 10 for i in range(30)}
            out.append(s.obs(s.req("POST", f"/{s.c()}", headers=headers), body="text"))
            headers = {f"X-Account-Meta-{s.c()}-R{round_}-{i}": "v" for i in range(30)}
            out.append(s.obs(s.req("POST", "", headers=headers), body="status"))
        out.append({"object meta": sum(k.startswith("x-object-meta-") for k in s.req("HEAD", f"/{s.c()}/obj").headers)})
        out.append(
            {"container meta": sum(k.startswith("x-container-meta-") for k in s.req("HEAD", f"/{s.c()}").headers)}
        )
        out.append(s.obs(s.req("HEAD", f"/{s.c()}"), body="status"))
        # Leave the shared account as it was: the cases after this one set account metadata too.
        for round_ in range(4):
            names = {f"X-Remove-Account-Meta-{s.c()}-R{round_}-{i}": "x" for i in range(30)}
            s.req("POST", "", headers=names).raise_for_status()
        return out

    sides.compare(case)


# A prefix ending in U+10FFFF or U+D7FF: Swift 2.38's container server fails (503); imagehop lists what matches
# (tests/objects/test_hostile_inputs.py). Compared here: the other parameters with those values.
# (NUL in prefix/marker/end_marker/delimiter: Swift 2.38 answers 200; imagehop answers 400, since PostgreSQL
# cannot compare text holding NUL; see docs/api-coverage.md.)
@pytest.mark.parametrize("prefix", ["\U0010ffff", "\U0010ffffa", "\ud7ff"])
def test_odd_listing_prefixes(sides: Sides, prefix: str) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/a", body=b"x").raise_for_status()
        out = []
        queries = [f"marker={prefix}", f"end_marker={prefix}", f"delimiter={prefix}"]
        if prefix[-1] not in "\U0010ffff\ud7ff":
            queries.append(f"prefix={prefix}")
        for query in queries:
            encoded = query.split("=")[0] + "=" + quote(prefix.encode("utf-8", "surrogatepass"))
            out.append(s.obs(s.req("GET", f"/{s.c()}?format=json&{encoded}")))
            out.append(s.obs(s.req("GET", f"?format=json&{encoded}"), body="status"))
        return out

    sides.compare(case)


# (A name over 1024 bytes: PUT answers 400, and Swift answers DELETE/POST/GET/HEAD of it with 404, as imagehop.)
@pytest.mark.parametrize("name", ["x" * 1025, "a%00b", "%FF"])
def test_delete_checks_paths_as_put(sides: Sides, name: str) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        return [s.obs(s.req(m, f"/{s.c()}/{name}", body=b"" if m == "PUT" else None), body="status")
                for m in ("PUT", "DELETE", "POST", "GET", "HEAD")]  # fmt: skip

    sides.compare(case)
