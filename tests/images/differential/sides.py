"""Run one Glance v2 request sequence against imagehop and against a real Glance 33, and compare.

A case is a function of a :class:`Side`; it makes requests with ``side.req(...)`` and returns
observations made with ``side.obs(response, ...)``: the status code, the headers that matter (named by
the case) and the body, normalised so that what must differ between two servers does not count:

- ids: every UUID is replaced by ``<id-N>``, N counting the distinct UUIDs in the order the case sees
  them (so "the same image" and "another image" still count); project and user ids by the actor's
  name (``<project:owner>``, ``<user:owner>``); request ids by ``<req>``;
- times: digits become ``d`` (the shape, e.g. ``dddd-dd-ddTdd:dd:ddZ``, still counts);
- URLs: the server's own ``scheme://host:port`` becomes ``BASE``;
- ``imagehop.content_digest`` and ``imagehop.upload_kept``, imagehop's own read-only properties, and its own
  import methods (``imagehop-*`` in ``OpenStack-image-import-methods``) are left out (docs/api-coverage.md);
- an error's ``Content-Length`` is not compared (the wording differs);
- ``tags`` are sorted (a set in Glance, in no particular order); the ``Content-Type`` and
  ``Content-Length`` of a 202 or 204 without a body (webob's ``text/html`` and ``0``) are not compared;
- the identity service's URL (in ``WWW-Authenticate``) becomes ``IDENTITY``.

Error bodies are compared by status, media type and, for JSON, ``code`` and ``title`` (the wording of
``message`` differs); ``body="message"`` also compares the ``message`` (what glanceclient and openstacksdk
show the user: ``HTTP 400 Bad Request: <message>``), without webob's trailing ``<br /><br />`` and
whitespace; ``body="status"`` ignores the body.

:func:`Sides.compare` runs the case on both servers and asserts the two lists are equal, except the
documented differences it is given: each names one step and one key, and pins what each server
answers there (so a documented difference also fails the test when either server changes).

Actors, the same on both sides: ``owner`` (project A, role member), ``other`` (project B, member),
``reader`` (project A, role reader), ``admin`` (the admin project, role admin), ``anon`` (no token).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support import Cloud
from tests.support.differential import diff_report

PEER = "Glance 33"
ACTORS = ("owner", "other", "reader", "admin")
OURS_ONLY_PROPERTIES = frozenset({"imagehop.content_digest", "imagehop.upload_kept"})
OURS_ONLY_PREFIX = "imagehop-"  # imagehop's own import methods (imagehop-delta), beside Glance's
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REQ_RE = re.compile(r"req-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")
TIME_HEADERS = {"date", "last-modified"}
JSON = "application/json"
OCTET = "application/octet-stream"
PATCH21 = "application/openstack-images-v2.1-json-patch"
PATCH20 = "application/openstack-images-v2.0-json-patch"
DOCUMENTED: set[str] = set()  # node ids of the cases that passed with documented differences


@dataclass
class Side:
    """One image service under test: its ``.../image`` URL, and a token, project and user per actor."""

    name: str  # "imagehop" or "glance"
    base: str  # scheme://host:port/image
    tokens: dict[str, str]
    projects: dict[str, str]
    users: dict[str, str]
    identity: str  # the identity service's URL (in WWW-Authenticate)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))
    tag: str = ""  # per case: a property value that makes the case's images findable on this server
    regions: dict[str, str] = field(default_factory=dict)  # every region's ``.../image`` URL (glance-download)
    _ids: dict[str, str] = field(default_factory=dict)

    def start_case(self, tag: str) -> None:
        self.tag = tag
        self._ids = {}

    def req(
        self,
        method: str,
        path: str,
        *,
        who: str = "owner",
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: list[tuple[str, str]] | dict[str, str] | None = None,
        accept: str | None = JSON,
        region: str | None = None,
    ) -> httpx.Response:
        """``path`` is relative to ``.../image`` (``/v2/images``); ``json_body`` is sent as JSON with
        ``Content-Type: application/json`` unless ``headers`` name another; ``region``: another region of the
        same identity service than the side's own (ORD)."""
        sent: dict[str, str] = {}
        if accept is not None:
            sent["Accept"] = accept
        if who != "anon":
            sent["X-Auth-Token"] = self.tokens[who]
        content: bytes | str | None = body
        if json_body is not None:
            content = json.dumps(json_body)
            sent["Content-Type"] = JSON
        sent.update(headers or {})
        base = self.regions[region] if region else self.base
        url = httpx.URL(base + path, params=params) if params is not None else httpx.URL(base + path)
        return self.client.send(self.client.build_request(method, url, headers=sent, content=content))

    # --- helpers of many cases

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def create(self, who: str = "owner", region: str | None = None, **attrs: Any) -> str:
        """An image made with POST /v2/images (raw/bare, tagged with the case), which must answer 201."""
        body = {"disk_format": "raw", "container_format": "bare", "case": self.tag, **attrs}
        response = self.req("POST", "/v2/images", who=who, json_body=body, region=region)
        assert response.status_code == 201, f"{self.name}: {response.status_code} {response.text}"
        return response.json()["id"]

    def upload(self, image_id: str, data: bytes = b"x" * 1024, who: str = "owner",
               region: str | None = None) -> httpx.Response:  # fmt: skip
        response = self.req("PUT", f"/v2/images/{image_id}/file", who=who, body=data, headers={"Content-Type": OCTET},
                            region=region)  # fmt: skip
        assert response.status_code == 204, f"{self.name}: {response.status_code} {response.text}"
        return response

    def patch(self, image_id: str, ops: Any, who: str = "owner", media: str = PATCH21) -> httpx.Response:
        return self.req("PATCH", f"/v2/images/{image_id}", who=who, body=json.dumps(ops),
                        headers={"Content-Type": media})  # fmt: skip

    def show(self, image_id: str, who: str = "owner", region: str | None = None) -> dict:
        response = self.req("GET", f"/v2/images/{image_id}", who=who, region=region)
        assert response.status_code == 200, f"{self.name}: {response.status_code} {response.text}"
        return response.json()

    # --- observations

    def obs(self, response: httpx.Response, *headers: str, body: str | None = "auto", note: str = "") -> dict:
        """What counts of one answer: status, the named headers (absent: None) and the body.

        ``body``: "auto" compares JSON as data (errors by code and title) and anything else as text;
        "status" or None ignores it; "keys" compares only a JSON object's sorted keys.
        """
        seen: dict[str, Any] = {"status": response.status_code}
        if note:
            seen["note"] = note
        if response.status_code in (202, 204) and not response.content:
            # webob's "text/html" and "Content-Length: 0" on an answer without a body mean nothing
            headers = tuple(h for h in headers if h.lower() not in ("content-type", "content-length"))
        if response.status_code >= 400:  # error pages differ in wording, so in length
            headers = tuple(h for h in headers if h.lower() != "content-length")
        for name in headers:
            value = response.headers.get(name)
            if value is not None and name.lower() in TIME_HEADERS:
                value = re.sub(r"\d", "d", HTTP_DATE.sub("HTTP-DATE", value))
            if value is not None and name.lower() == "openstack-image-import-methods":
                value = ",".join(v for v in value.split(",") if not v.startswith(OURS_ONLY_PREFIX))
            if value is not None and name.lower() == "openstack-image-store-ids":
                # Glance adds its reserved stores (staging, tasks) once it has used them
                value = ",".join(v for v in value.split(",") if not v.startswith("os_glance_"))
            seen[name.lower()] = None if value is None else self.text(value)
        if body in ("auto", "keys", "message"):
            seen["body"] = self.body(response, keys_only=body == "keys")
            if body == "message" and response.status_code >= 400 and isinstance(seen["body"], dict):
                seen["body"]["message"] = self.message(response)
        return seen

    def body(self, response: httpx.Response, keys_only: bool = False) -> Any:
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if not response.content:
            return ""
        if response.status_code >= 400:
            if media == JSON:
                data = response.json()
                return {"error": media, "code": data.get("code"), "title": data.get("title"),
                        "keys": sorted(data)}  # fmt: skip
            return {"error": media}
        if media == JSON:
            data = self.value(response.json())
            return sorted(data) if keys_only and isinstance(data, dict) else data
        return self.text(response.content.decode("utf-8", errors="replace"))

    def message(self, response: httpx.Response) -> str:
        """An error's ``message`` as a client shows it: webob's ``<br /><br />`` and trailing whitespace cut."""
        try:
            text = str(response.json().get("message", ""))
        except ValueError:
            text = response.text
        return self.text(re.sub(r"(<br />)+\s*$", "", text.strip()).strip())

    def value(self, data: Any) -> Any:
        """JSON data normalised (see the module's doc)."""
        if isinstance(data, dict):
            out = {k: self.value(v) for k, v in data.items() if k not in OURS_ONLY_PROPERTIES}
            if isinstance(out.get("tags"), list) and all(isinstance(t, str) for t in out["tags"]):
                out["tags"] = sorted(out["tags"])  # a set in Glance: its order is arbitrary
            return out
        if isinstance(data, list):
            return [self.value(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        return data

    def text(self, text: str) -> str:
        parts = urlsplit(self.base)
        text = text.replace(self.identity, "IDENTITY")
        text = text.replace(f"{parts.scheme}://{parts.netloc}", "BASE")
        if self.tag:
            text = text.replace(self.tag, "<case>")
        for actor in ACTORS:
            if self.projects.get(actor):
                text = re.sub(rf"\b{re.escape(self.projects[actor])}\b", f"<project:{actor}>", text)
            if self.users.get(actor):
                text = re.sub(rf"\b{re.escape(self.users[actor])}\b", f"<user:{actor}>", text)
        text = REQ_RE.sub("<req>", text)
        text = UUID_RE.sub(lambda m: self._ids.setdefault(m.group(0).lower(), f"<id-{len(self._ids) + 1}>"), text)
        return ISO.sub(lambda m: re.sub(r"\d", "d", m.group(0)), text)


@dataclass(frozen=True)
class Differs:
    """A documented difference: at observation ``step``, ``key`` is ``ours`` on imagehop and ``theirs``
    on Glance (docs/api-coverage.md says why)."""

    step: int
    key: str
    ours: Any
    theirs: Any
    why: str
    whole_step: bool = False  # the rest of the step follows from ``key`` (e.g. an error page and an image)


@dataclass
class Sides:
    """imagehop and the real Glance, in that order."""

    ours: Side
    theirs: Side
    counter: int = 0
    documented: list[str] = field(default_factory=list)

    def compare(self, case: Callable[[Side], list], *differs: Differs, label: str = "") -> list:
        """Run ``case`` on both servers; assert equal observations but for the documented differences."""
        self.counter += 1
        results = []
        for side in (self.ours, self.theirs):
            side.start_case(f"d{self.counter:03d}-{uuid.uuid4().hex[:8]}")
            results.append(case(side))
        ours, theirs = results
        if differs:
            DOCUMENTED.add(os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0])
        for known in differs:
            assert known.step < min(len(ours), len(theirs)), f"no step {known.step}: {known.why}"
            mine, yours = ours[known.step].get(known.key), theirs[known.step].get(known.key)
            assert (mine, yours) == (known.ours, known.theirs), (
                f"documented difference ({known.why}) at step {known.step}, {known.key!r}: expected imagehop "
                f"{known.ours!r} and Glance {known.theirs!r}, got {mine!r} and {yours!r}"
            )
            if known.whole_step:
                ours[known.step] = theirs[known.step] = {"documented": known.key}
            else:
                ours[known.step] = {**ours[known.step], known.key: "<documented>"}
                theirs[known.step] = {**theirs[known.step], known.key: "<documented>"}
        assert ours == theirs, diff_report(PEER, label, ours, theirs)
        return ours


def password_token(identity_url: str, user: str, password: str, project: str) -> tuple[str, str]:
    """A project-scoped v3 token and the user's id."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"id": project}},
        }
    }
    response = httpx.post(f"{identity_url}/v3/auth/tokens", json=body, timeout=60)
    response.raise_for_status()
    return response.headers["X-Subject-Token"], response.json()["token"]["user"]["id"]


def imagehop_side(cloud: Cloud) -> Side:
    """ORD of a running imagehop as a side: demo (owner), alt (other), admin, and a new ``reader`` of demo's
    project."""
    tenant = cloud.tenant("demo")
    subprocess.run(
        [sys.executable, "-m", "imagehop", "user", "create", "--user", "reader", "--tenant-id", tenant, "--role",
         "reader", "--password", "reader-secret", "--data-dir", str(cloud.data_dir),
         *(["--config", str(cloud.config_file)] if cloud.config_file else [])],
        check=True, capture_output=True,
    )  # fmt: skip
    cloud._credentials = None
    creds = cloud.credentials()
    tokens, projects, users = {}, {}, {}
    for actor, user in (("owner", "demo"), ("other", "alt"), ("admin", "admin")):
        entry = creds[user]
        tokens[actor], users[actor] = password_token(cloud.identity_url, user, entry["password"], entry["tenant_id"])
        projects[actor] = entry["tenant_id"]
    tokens["reader"], users["reader"] = password_token(cloud.identity_url, "reader", "reader-secret", tenant)
    projects["reader"] = tenant
    return Side("imagehop", cloud.regions["ORD"] + "/image", tokens, projects, users, cloud.identity_url,
                regions={name: url + "/image" for name, url in cloud.regions.items()})  # fmt: skip


def glance_side(openstack: Any, region: str, suffix: str) -> Side:
    """A region of the real OpenStack as a side, with new projects (``suffix`` makes the names unique)."""
    owner = openstack.create_user(f"diff-owner-{suffix}")
    other = openstack.create_user(f"diff-other-{suffix}")
    reader = openstack.create_user(f"diff-reader-{suffix}", owner.project, roles=("reader",))
    actors = {"owner": owner, "other": other, "reader": reader, "admin": openstack.admin}
    return Side(
        "glance", openstack.glance_url(region),
        tokens={name: openstack.token(user) for name, user in actors.items()},
        projects={name: user.project_id for name, user in actors.items()},
        users={name: user.user_id for name, user in actors.items()}, identity=openstack.auth_url,
        regions={name: openstack.glance_url(name) for name in openstack.regions},
    )  # fmt: skip
