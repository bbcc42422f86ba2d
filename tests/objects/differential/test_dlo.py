"""Issue 12, item 7 (DLO manifest body, POST making a DLO), issue 10, item 2 (DLO segments with the caller's
rights) and the self-including DLO of issue 10, item 10."""

from __future__ import annotations

from tests.objects.differential.sides import Side, Sides

HEADERS = ("etag", "content-length", "content-type", "x-object-manifest", "content-range")


def _segments(s: Side, container: str = "segs") -> None:
    s.req("PUT", f"/{s.c(container)}").raise_for_status()
    for index in range(3):
        s.req("PUT", f"/{s.c(container)}/p/{index}", body=bytes([97 + index]) * (100 + index)).raise_for_status()


def _grant(s: Side) -> str:
    return f"{s.accounts['B'].removeprefix('AUTH_')}:*" if s.name == "imagehop" else "test2:tester2"


def test_manifest_body_and_views(sides: Sides) -> None:
    def case(s: Side) -> list:
        _segments(s)
        s.req("PUT", f"/{s.c()}").raise_for_status()
        put = s.req("PUT", f"/{s.c()}/dlo", body=b"my own body",
                    headers={"X-Object-Manifest": f"{s.c('segs')}/p/", "Content-Type": "text/x-dlo"})  # fmt: skip
        out = [s.obs(put, "etag", body="status")]
        for query in ("", "?multipart-manifest=get"):
            out.append(s.obs(s.req("GET", f"/{s.c()}/dlo{query}"), *HEADERS))
            out.append(s.obs(s.req("HEAD", f"/{s.c()}/dlo{query}"), *HEADERS))
        out.append(s.obs(s.req("GET", f"/{s.c()}/dlo", headers={"Range": "bytes=95-105"}), *HEADERS))
        out.append(s.obs(s.req("GET", f"/{s.c()}?format=json")))
        return out

    sides.compare(case)


def test_post_makes_and_unmakes_a_dlo(sides: Sides) -> None:
    def case(s: Side) -> list:
        _segments(s)
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/obj", body=b"plain body").raise_for_status()
        out = [s.obs(s.req("POST", f"/{s.c()}/obj", headers={"X-Object-Manifest": f"{s.c('segs')}/p/"}), body="status")]
        out.append(s.obs(s.req("GET", f"/{s.c()}/obj"), *HEADERS))
        out.append(s.obs(s.req("GET", f"/{s.c()}/obj?multipart-manifest=get"), *HEADERS))
        out.append(s.obs(s.req("POST", f"/{s.c()}/obj", headers={"X-Object-Meta-A": "b"}), body="status"))
        out.append(s.obs(s.req("GET", f"/{s.c()}/obj"), *HEADERS, "x-object-meta-a"))
        for bad in ("nocontainer", "/x", "c/p?x", ""):
            out.append(s.obs(s.req("POST", f"/{s.c()}/obj", headers={"X-Object-Manifest": bad}), *HEADERS))
        return out

    sides.compare(case)


def test_dlo_that_includes_itself(sides: Sides) -> None:
    def case(s: Side) -> list:
        s.req("PUT", f"/{s.c()}").raise_for_status()
        s.req("PUT", f"/{s.c()}/a-1", body=b"one").raise_for_status()
        put = s.req("PUT", f"/{s.c()}/a-self", body=b"", headers={"X-Object-Manifest": f"{s.c()}/a-"})
        s.req("PUT", f"/{s.c()}/a-z", body=b"zed").raise_for_status()
        out = [s.obs(put, body="status")]
        out.append(s.obs(s.req("GET", f"/{s.c()}/a-self"), *HEADERS))
        out.append(s.obs(s.req("HEAD", f"/{s.c()}/a-self"), *HEADERS))
        # Two DLOs that list each other.
        s.req("PUT", f"/{s.c()}/b-x", body=b"", headers={"X-Object-Manifest": f"{s.c()}/c-"})
        s.req("PUT", f"/{s.c()}/c-x", body=b"", headers={"X-Object-Manifest": f"{s.c()}/b-"})
        out.append(s.obs(s.req("GET", f"/{s.c()}/b-x"), *HEADERS, body="status"))
        return out

    sides.compare(case)


def test_dlo_segments_are_read_with_the_callers_rights(sides: Sides) -> None:
    def case(s: Side) -> list:
        _segments(s, "private")
        s.req("PUT", f"/{s.c('shared')}", headers={"X-Container-Write": _grant(s), "X-Container-Read": _grant(s)})
        # The other tenant may write the shared container; it points a DLO at the owner's private container.
        put = s.req("PUT", f"/{s.c('shared')}/steal", who="other", body=b"",
                    headers={"X-Object-Manifest": f"{s.c('private')}/p/"})  # fmt: skip
        out = [s.obs(put, body="status")]
        out.append(s.obs(s.req("GET", f"/{s.c('shared')}/steal", who="other"), "content-length", body="status"))
        out.append(s.obs(s.req("HEAD", f"/{s.c('shared')}/steal", who="other"), "content-length", "etag"))
        # The owner can read it (its own segments).
        out.append(s.obs(s.req("GET", f"/{s.c('shared')}/steal"), *HEADERS))
        return out

    sides.compare(case)
