"""Issue 12, item 10 (roles: operator, reader, a user with no operator role), item 9 (X-Account-Access-Control)
and issue 10, item 6 (an anonymous caller cannot tell a private container that exists from one that does not)."""

from __future__ import annotations

import json

import pytest

from tests.objects.differential.sides import Side, Sides


def _setup(s: Side) -> None:
    s.req("PUT", f"/{s.c()}").raise_for_status()
    s.req("PUT", f"/{s.c()}/obj", body=b"data").raise_for_status()


def _user(s: Side, who: str) -> str:
    """How each server names a user in an ACL."""
    if s.name == "imagehop":
        tenant = s.accounts["B" if who == "other" else "A"].removeprefix("AUTH_")
        return f"{tenant}:{ {'other': 'alt', 'norole': 'norole', 'reader': 'reader'}[who] }"
    return {"other": "test2:tester2", "norole": "test:norole", "reader": "test:reader"}[who]


@pytest.mark.parametrize("who", ["owner", "reader", "norole", "other", "anon"])
def test_what_each_caller_may_do(sides: Sides, who: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        out = []
        for method, path, body in (
            ("HEAD", "", None),
            ("GET", f"?prefix={s.c()}", None),
            ("HEAD", f"/{s.c()}", None),
            ("GET", f"/{s.c()}", None),
            ("GET", f"/{s.c()}/obj", None),
            ("HEAD", f"/{s.c()}/obj", None),
            ("PUT", f"/{s.c()}/new", b"x"),
            ("POST", f"/{s.c()}/obj", None),
            ("POST", f"/{s.c()}", None),
            ("PUT", f"/{s.c('made')}", None),
            ("DELETE", f"/{s.c()}/new", None),
            ("COPY", f"/{s.c()}/obj", None),
        ):
            headers = {"Destination": f"{s.c()}/copy"} if method == "COPY" else {}
            out.append(s.obs(s.req(method, path, who=who, body=body, headers=headers), note=f"{method} {path[:20]}",
                             body="status"))  # fmt: skip
        return out

    sides.compare(case)


@pytest.mark.parametrize("who", ["norole", "other"])
def test_a_container_acl_lets_a_user_without_operator_role_in(sides: Sides, who: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        user = _user(s, who)
        s.req("POST", f"/{s.c()}", headers={"X-Container-Read": user, "X-Container-Write": user}).raise_for_status()
        out = [s.obs(s.req("GET", f"/{s.c()}/obj", who=who, account="A"), body="text")]
        out.append(s.obs(s.req("PUT", f"/{s.c()}/by-{who}", who=who, body=b"y"), body="status"))
        out.append(s.obs(s.req("GET", f"/{s.c()}", who=who), body="status"))
        out.append(s.obs(s.req("POST", f"/{s.c()}", who=who), body="status"))
        return out

    sides.compare(case)


@pytest.mark.parametrize("level", ["read-only", "read-write", "admin"])
def test_account_access_control(sides: Sides, level: str) -> None:
    def case(s: Side) -> list:
        _setup(s)
        grant = json.dumps({level: [_user(s, "other")]})
        out = [s.obs(s.req("POST", "", headers={"X-Account-Access-Control": grant}), body="status")]
        head = s.req("HEAD", "")
        out.append({"owner sees the ACL": json.loads(head.headers.get("x-account-access-control", "{}")).keys()
                    == {level}})  # fmt: skip
        for method, path, body in (
            ("HEAD", "", None),
            ("GET", f"/{s.c()}/obj", None),
            ("GET", f"/{s.c()}", None),
            ("PUT", f"/{s.c()}/by-other", b"z"),
            ("DELETE", f"/{s.c()}/by-other", None),
            ("PUT", f"/{s.c('made')}", None),
            ("POST", f"/{s.c()}", None),
            ("POST", "", None),
        ):
            response = s.req(method, path, who="other", body=body)
            out.append(s.obs(response, note=f"{method} {path[:16]}", body="error")
                       | {"sees ACL": "x-account-access-control" in response.headers})  # fmt: skip
        s.req("POST", "", headers={"X-Account-Access-Control": "{}"}).raise_for_status()
        out.append(s.obs(s.req("GET", f"/{s.c()}/obj", who="other"), body="status"))
        for bad in ("not json", "[]", '{"nope": []}', '{"admin": "x"}'):
            out.append(s.obs(s.req("POST", "", headers={"X-Account-Access-Control": bad}), body="error"))
        return out

    sides.compare(case)


def test_anonymous_head_of_private_containers(sides: Sides) -> None:
    def case(s: Side) -> list:
        _setup(s)
        out = []
        for path in (f"/{s.c()}", f"/{s.c('missing')}", f"/{s.c()}/obj", f"/{s.c('missing')}/obj", ""):
            for method in ("HEAD", "GET"):
                out.append(s.obs(s.req(method, path, who="anon"), "www-authenticate", body="status"))
        for path in (f"/{s.c()}", f"/{s.c('missing')}"):
            out.append(s.obs(s.req("HEAD", path, who="other"), body="status"))
        return out

    sides.compare(case)
