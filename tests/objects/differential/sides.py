"""Run one request sequence against imagehop and against a real Swift 2.38, and compare what came back.

A case is a function of a :class:`Side`; it makes requests with ``side.req(...)`` and returns
observations made with ``side.obs(response, ...)``: the status code, the headers that matter (named
by the case) and the body, normalised so that what must differ between two servers (account names,
ports, transaction ids, times) does not count. :func:`Sides.compare` runs the case on both servers,
each in its own fresh containers, and asserts the two lists are equal.

Actors, the same on both sides:

- ``owner``: operator of account A (imagehop ``demo``, role member; Swift ``test:tester``, ``.admin``);
- ``other``: operator of account B (imagehop ``alt``; Swift ``test2:tester2``);
- ``reader``: of account A, reads only (imagehop role ``reader``; Swift ``test:reader`` with the
  account's read-only grant in ``X-Account-Access-Control``, as Keystone's reader role would be);
- ``norole``: of account A with no operator role (imagehop role ``creator``; Swift ``test:norole``);
- ``anon``: no token.

With keystoneauth (``keystone_sides``, ``test_keystoneauth.py``), each identity service has the actors of
Keystone's roles: ``owner`` (project A, member), ``reader`` (A, reader), ``norole`` (A, creator), ``other``
(project B, member), ``reseller`` (B, ResellerAdmin), ``admin`` (the admin project); ``Side.identities``
says who each is (ids and names, for ACLs), and they are normalised in observations.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support.differential import diff_report

PEER = "Swift 2.38"
ACTORS = ("owner", "other", "reader", "norole", "anon")

# Headers whose values carry times: compared by shape only.
TIME_HEADERS = {"last-modified", "x-timestamp", "date", "x-copied-from-last-modified", "x-put-timestamp"}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?")
HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")


@dataclass(frozen=True)
class Identity:
    """Who a token says its caller is (what keystoneauth ACLs name)."""

    project_id: str
    project_name: str
    user_id: str
    user_name: str


@dataclass
class Side:
    """One server under test: its storage URLs and a token per actor."""

    name: str  # "imagehop" or "swift"
    accounts: dict[str, str]  # "A"/"B" -> account name (AUTH_...)
    base: str  # scheme://host:port
    tokens: dict[str, str]
    identities: dict[str, Identity] = field(default_factory=dict)  # actor -> who (Keystone-backed sides)
    identity_url: str = ""  # the identity service's URL (in WWW-Authenticate), when there is one
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    prefix: str = ""  # per case: makes container names unique on this server

    def url(self, account: str = "A") -> str:
        return f"{self.base}/v1/{self.accounts[account]}"

    def c(self, name: str = "c") -> str:
        """A container name unique to the running case (the same on both servers)."""
        return f"{self.prefix}{name}"

    def req(
        self,
        method: str,
        path: str = "",
        *,
        who: str = "owner",
        headers: dict[str, str | bytes] | None = None,
        body: bytes | str | Iterable[bytes] | None = None,
        account: str = "A",
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """``path`` is already URL-encoded, relative to the account (``/c/o``) or absolute (``//info``)."""
        url = self.base + path[1:] if path.startswith("//") else self.url(account) + path
        sent = dict(headers or {})
        if who != "anon" and "X-Auth-Token" not in sent:
            sent["X-Auth-Token"] = self.tokens[who]
        for key, value in list(sent.items()):
            sent[key] = self.fill(value) if isinstance(value, str) else value  # bytes: sent as they are (UTF-8)
        content = self.fill(body) if isinstance(body, str) else body
        target = httpx.URL(url) if params is None else httpx.URL(url, params=params)
        request = self.client.build_request(method, target, headers=sent, content=content)
        return self.client.send(request)

    def fill(self, text: str) -> str:
        """``{A}``/``{B}`` in a header or body become this server's account names; ``{c:x}`` a container."""
        text = text.replace("{A}", self.accounts["A"]).replace("{B}", self.accounts["B"])
        return re.sub(r"\{c:([^}]*)\}", lambda m: self.c(m.group(1)), text)

    def raw(self, request: bytes, read_limit: int = 1 << 20) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are (for request lines no client library would send); status, headers, body."""
        parts = urlsplit(self.base)
        request = request.replace(b"{A}", self.accounts["A"].encode()).replace(b"{B}", self.accounts["B"].encode())
        request = request.replace(b"{token}", self.tokens["owner"].encode())
        request = request.replace(b"{host}", parts.netloc.encode())
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
            headers = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < min(length, read_limit):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        return status, headers, rest

    # --- observations

    def normalise(self, text: str) -> str:
        text = text.replace(self.accounts["A"], "AUTH_A").replace(self.accounts["B"], "AUTH_B")
        if self.identity_url:
            text = text.replace(self.identity_url, "IDENTITY")
        for actor, who in self.identities.items():
            text = re.sub(rf"\b{re.escape(who.user_id)}\b", f"<user-id:{actor}>", text)
            text = re.sub(rf"\b{re.escape(who.project_id)}\b", f"<project-id:{actor}>", text)
        text = text.replace(self.base, "BASE").replace(urlsplit(self.base).netloc, "HOST")
        text = re.sub(r"tx[0-9a-f]{21}-[0-9a-f]{10}", "TXID", text)
        text = ISO.sub(lambda m: re.sub(r"\d", "d", m.group(0)), text)  # the shape (precision) still counts
        return HTTP_DATE.sub("HTTP-DATE", text)

    def obs(self, response: httpx.Response, *headers: str, body: str | None = "auto", note: str = "") -> dict:
        """What counts of one answer: status, the named headers (absent is ``None``) and the body.

        ``body``: "auto" compares JSON as data and anything else as text, "status" ignores the body
        (error pages differ in wording between servers), "json"/"text"/"xml"; None ignores it too;
        "error" compares the body of an error answer only (4xx, 5xx: the text the swift CLI and
        swiftclient's ``ClientException`` show the user) and ignores a success's.
        """
        seen: dict[str, Any] = {"status": response.status_code}
        if note:
            seen["note"] = note
        for name in headers:
            value = response.headers.get(name)
            if value is not None and name.lower() in TIME_HEADERS:
                value = re.sub(r"\d", "d", HTTP_DATE.sub("HTTP-DATE", value))
            seen[name.lower()] = None if value is None else self.normalise(value)
        if body in ("auto", "json", "text", "xml"):
            seen["body"] = self.body(response.content, response.headers.get("content-type", ""), body)
        if body == "error" and response.status_code >= 400:
            seen["body"] = self.normalise(response.content.decode("utf-8", errors="replace"))
        return seen

    def body(self, content: bytes, content_type: str, how: str = "auto") -> Any:
        if how in ("auto", "json") and ("json" in content_type or how == "json") and content:
            try:
                return json.loads(self.normalise(content.decode("utf-8")))
            except ValueError:
                pass
        text = content.decode("utf-8", errors="replace")
        return self.normalise(text)


@dataclass
class Sides:
    """imagehop and the real Swift, in that order."""

    ours: Side
    theirs: Side
    counter: int = 0
    tag: str = "d"  # container names start with it: two Sides on one imagehop must not share names

    def run(self, case: Callable[[Side], Any]) -> tuple[Any, Any]:
        """Run ``case`` on both servers (fresh containers each time): (imagehop's, Swift's) observations."""
        self.counter += 1
        results = []
        for side in (self.ours, self.theirs):
            side.prefix = f"{self.tag}{self.counter:03d}-"
            results.append(case(side))
        ours, theirs = results
        return ours, theirs

    def compare(self, case: Callable[[Side], Any], label: str = "") -> Any:
        """Run ``case`` on both servers; assert the observations are equal."""
        ours, theirs = self.run(case)
        assert ours == theirs, diff_report(PEER, label, ours, theirs)
        return ours
