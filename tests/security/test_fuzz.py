"""A property-based fuzzer of every route (issue 10): no 5xx, no hang, the server's memory bounded.

Hypothesis draws requests against a real ``imagehop serve`` holding two tenants' data: a route of
identity, images, tasks, compute or object storage; path parameters that are the caller's own ids,
the other tenant's, made-up ones or hostile text; query strings, headers and bodies that are
either a valid body with one part replaced by something hostile, or anything at all. Every answer
must be below 500 and come within the timeout. Failures are collected, not shrunk, so one run
lists them all. Examples are derandomized (the same every run); ``IMAGEHOP_FUZZ_EXAMPLES`` scales
the count (default 150 per service and backend). Runs on both databases: PostgreSQL refuses what
SQLite stores (NUL, integers past 64 bits), and each gives its own 500s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Cloud, Glance, wait_for
from tests.support.hostile import server_memory

EXAMPLES = int(os.environ.get("IMAGEHOP_FUZZ_EXAMPLES", "150"))
TIMEOUT = 30.0

HOSTILE_TEXT = [
    "", " ", "%00", "%ff%fe", "..", "%2e%2e", "a" * 1100, "\U0010ffff", "\u202e", "9" * 5000, "-1", "1e400",
    "inf", "NaN", "null", "[]", "{}", "0x10", "2" * 25, "١٢", "²", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z",
    "gt:9999-12-31T23:59:59+00:00", "in:", 'in:"a,b', "eq:\U0001f600", "*", "bytes=0-", "bytes=-0", "bytes=9-1",
    "\x00", "a\x00b", "/etc/passwd", "AUTH_10000002", "../../AUTH_10000002/c/o", "c/o", "/c", "c%2Fo",
]  # fmt: skip

HEADERS = [
    "Range", "Content-Range", "X-Openstack-Image-Size", "Content-Type", "X-Delete-At", "X-Delete-After",
    "X-Object-Manifest", "X-Copy-From", "X-Copy-From-Account", "Destination", "Destination-Account",
    "If-None-Match", "If-Match", "If-Modified-Since", "X-Subject-Token", "OpenStack-API-Version",
    "X-OpenStack-Nova-API-Version", "X-Object-Meta-A", "X-Container-Meta-A", "X-Account-Meta-A",
    "X-Container-Read", "X-Container-Write", "X-Image-Meta-Store", "X-Versions-Location", "Etag",
    "Accept", "X-Static-Large-Object", "X-Detect-Content-Type", "Content-Disposition", "X-Newest",
    "X-Account-Meta-Temp-Url-Key", "X-Container-Meta-Temp-Url-Key", "X-Remove-Container-Meta-A",
]  # fmt: skip

QUERY_KEYS = [
    "limit", "marker", "end_marker", "prefix", "delimiter", "path", "format", "reverse", "sort", "sort_key",
    "sort_dir", "name", "status", "visibility", "member_status", "tag", "size_min", "size_max", "min_ram",
    "min_disk", "created_at", "updated_at", "os_hidden", "protected", "owner", "id", "disk_format", "type",
    "multipart-manifest", "temp_url_sig", "temp_url_expires", "temp_url_prefix", "filename", "nocatalog",
    "belongsTo", "all_tenants", "changes-since", "minDisk", "minRam", "flavor", "image", "ip", "deleted",
    "extract-archive", "bulk-delete", "symlink", "part-number", "heartbeat",
]  # fmt: skip


@dataclass
class World:
    """What exists before the fuzzer starts: ids a request can name, per tenant."""

    cloud: Cloud
    tokens: dict[str, str] = field(default_factory=dict)
    tenants: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)


def seed(cloud: Cloud) -> World:
    world = World(cloud)
    for user in ("demo", "alt", "admin"):
        world.tokens[user] = cloud.token(user)
        world.tenants[user] = cloud.tenant(user)
    for user in ("demo", "alt"):
        glance = Glance(cloud, user)
        queued = glance.create(name=f"{user}-queued", disk_format="raw", container_format="bare")
        active = glance.create(name=f"{user}-active", disk_format="raw", container_format="bare", tags=["t"])
        assert glance.upload(active["id"], b"\x01" * 4096 + b"\x00" * 4096).status_code == 204
        world.images += [queued["id"], active["id"]]
        swift = httpx.Client(base_url=f"{cloud.regions['ORD']}/v1/AUTH_{world.tenants[user]}",
                             headers={"X-Auth-Token": world.tokens[user]})  # fmt: skip
        swift.put("/c")
        swift.put("/c/o", content=b"hello")
        swift.put("/c/seg", content=b"segment")
        swift.put("/c/dlo", headers={"X-Object-Manifest": "c/seg"})
        manifest = [{"path": "/c/seg"}, {"path": "/c/o"}]
        swift.put("/c/slo?multipart-manifest=put", content=json.dumps(manifest))
        task = glance.post("/v2/tasks", json={"type": "import", "input": {"import_from": "c/o",
                           "import_from_format": "raw", "image_properties": {"name": "t"}}})  # fmt: skip
        world.tasks.append(task.json()["id"])
        compute = f"{cloud.regions['ORD']}/compute/v2.1/{world.tenants[user]}"
        body = {"server": {"name": f"{user}-vm", "imageRef": active["id"], "flavorRef": "1", "networks": "auto"}}
        server = httpx.post(compute + "/servers", json=body, headers={"X-Auth-Token": world.tokens[user]})
        assert server.status_code == 202, server.text
        world.servers.append(server.json()["server"]["id"])
    for server_id in world.servers:
        wait_for(lambda s=server_id: _server_settled(cloud, world, s), f"server {server_id} leaves BUILD")
    return world


def _server_settled(cloud: Cloud, world: World, server_id: str) -> bool:
    for user in ("demo", "alt"):
        url = f"{cloud.regions['ORD']}/compute/v2.1/servers/{server_id}"
        response = httpx.get(url, headers={"X-Auth-Token": world.tokens[user]})
        if response.status_code == 200:
            return response.json()["server"]["status"] != "BUILD"
    return False


# --- strategies ----------------------------------------------------------------------------------

printable = st.characters(codec="utf-8", exclude_categories=("Cs",))
hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(printable, max_size=30))
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 2**31, 2**63, 2**64]), st.floats()
)
leaves = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(hostile_text, st.sampled_from(QUERY_KEYS)), inner, max_size=4),
    ),
    max_leaves=12,
)


def header_values() -> st.SearchStrategy[bytes]:
    latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
    return st.one_of(
        st.sampled_from([t for t in HOSTILE_TEXT if t.isascii() and len(t) < 200]),
        numbers.map(str),
        latin1,
    ).map(lambda text: text.encode("latin-1", "replace").strip(b" \t"))


def path_segment(world: World, kind: str) -> st.SearchStrategy[str]:
    known: dict[str, list[str]] = {
        "image": world.images, "task": world.tasks, "server": world.servers,
        "token": list(world.tokens.values()), "tenant": list(world.tenants.values()),
        "account": [f"AUTH_{t}" for t in world.tenants.values()], "container": ["c"],
        "object": ["o", "seg", "dlo", "slo"], "member": list(world.tenants.values()), "tag": ["t"],
        "flavor": ["1", "2"], "key": ["k"], "name": ["image", "images", "task", "member", "members"],
    }  # fmt: skip
    made_up = st.one_of(st.uuids().map(str), hostile_text)
    return st.one_of(st.sampled_from(known.get(kind) or ["x"]), made_up).map(lambda s: quote(s, safe=""))


def mutate(body: Any) -> st.SearchStrategy[Any]:
    """``body`` with one value (anywhere in it) replaced by a hostile one, or a key added."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(body, ())

    def replace(choice: tuple[tuple[Any, ...], Any, bool]) -> Any:
        path, value, add = choice
        copy = json.loads(json.dumps(body))
        if not path:
            return value
        node = copy
        for step in path[:-1]:
            node = node[step]
        if add and isinstance(node, dict):
            node[str(value)[:20]] = value
        else:
            node[path[-1]] = value
        return copy

    return st.tuples(st.sampled_from(paths), json_values, st.booleans()).map(replace)


IDENTITY_GETS = ("/", "/v3", "/v2.0", "/v2.0/tenants", "/v3/auth/catalog", "/v3/auth/projects", "/v3/auth/domains",
                 "/v3/{name}")  # fmt: skip
IMAGE_GETS = ("/schemas/{name}", "/info/import", "/info/stores", "/info/stores/detail", "/info/usage")
OBJECT_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "COPY")


@dataclass(frozen=True)
class Route:
    service: str  # identity, images, compute, objects
    method: str
    path: str  # with {kind} placeholders
    body: Any = None  # a valid JSON body to mutate; None: anything
    media: str = "application/json"


def routes_of(world: World) -> list[Route]:
    demo_image = world.images[1]
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain":
            {"id": "default"}, "password": "x"}}}, "scope": {"project": {"id": world.tenants["demo"]}}}}  # fmt: skip
    v2auth = {"auth": {"passwordCredentials": {"username": "demo", "password": "x"}, "tenantId": "1"}}
    image = {"name": "n", "disk_format": "raw", "container_format": "bare", "min_ram": 1, "tags": ["a"],
             "visibility": "private", "protected": False, "prop": "v"}  # fmt: skip
    patch = [{"op": "replace", "path": "/name", "value": "x"}, {"op": "add", "path": "/p", "value": "v"}]
    task = {"type": "import", "input": {"import_from": "c/o", "import_from_format": "vhd",
            "image_properties": {"name": "x", "min_disk": 1}}}  # fmt: skip
    export = {"type": "export", "input": {"image_uuid": demo_image, "receiving_swift_container": "c"}}
    web = {"method": {"name": "web-download", "uri": "http://example.com:8080/x"}, "stores": ["local"],
           "all_stores": False}  # fmt: skip
    server = {"server": {"name": "vm", "imageRef": demo_image, "flavorRef": "1", "networks": "auto",
              "metadata": {"a": "b"}}}  # fmt: skip
    action = {"createImage": {"name": "snap", "metadata": {"a": "b"}}}
    slo = [{"path": "/c/seg", "etag": None, "size_bytes": 7, "range": "0-3"}, {"path": "/c/o"}]
    img, octet, patch_media = "/image/v2", "application/octet-stream", "application/openstack-images-v2.1-json-patch"
    c, s = "/compute/v2.1/{tenant}", "/v1/{account}"
    return [
        Route("identity", "POST", "/v3/auth/tokens", auth),
        Route("identity", "POST", "/v2.0/tokens", v2auth),
        *(Route("identity", m, "/v3/auth/tokens") for m in ("GET", "HEAD", "DELETE")),
        *(Route("identity", m, "/v2.0/tokens/{token}") for m in ("GET", "HEAD", "DELETE")),
        Route("identity", "GET", "/v2.0/tokens/{token}/endpoints"),
        Route("identity", "DELETE", "/v2.0/tokens"),
        *(Route("identity", "GET", p) for p in IDENTITY_GETS),
        Route("images", "GET", img + "/images"),
        Route("images", "POST", img + "/images", image),
        Route("images", "GET", img + "/images/{image}"),
        Route("images", "PATCH", img + "/images/{image}", patch, patch_media),
        Route("images", "DELETE", img + "/images/{image}"),
        Route("images", "PUT", img + "/images/{image}/file", b"", octet),
        Route("images", "GET", img + "/images/{image}/file"),
        Route("images", "PUT", img + "/images/{image}/stage", b"", octet),
        Route("images", "POST", img + "/images/{image}/import", web),
        Route("images", "POST", img + "/images/{image}/actions/deactivate"),
        Route("images", "POST", img + "/images/{image}/actions/reactivate"),
        Route("images", "PUT", img + "/images/{image}/tags/{tag}"),
        Route("images", "DELETE", img + "/images/{image}/tags/{tag}"),
        Route("images", "GET", img + "/images/{image}/members"),
        Route("images", "POST", img + "/images/{image}/members", {"member": world.tenants["alt"]}),
        Route("images", "PUT", img + "/images/{image}/members/{member}", {"status": "accepted"}),
        Route("images", "GET", img + "/images/{image}/tasks"),
        Route("images", "GET", img + "/images/{image}/x-imagehop-extents"),
        Route("images", "GET", img + "/tasks"),
        Route("images", "POST", img + "/tasks", task),
        Route("images", "POST", img + "/tasks", export),
        Route("images", "GET", img + "/tasks/{task}"),
        Route("images", "DELETE", img + "/tasks/{task}"),
        *(Route("images", "GET", img + p) for p in IMAGE_GETS),
        Route("compute", "GET", c + "/servers"),
        Route("compute", "GET", c + "/servers/detail"),
        Route("compute", "POST", c + "/servers", server),
        Route("compute", "GET", c + "/servers/{server}"),
        Route("compute", "PUT", c + "/servers/{server}", {"server": {"name": "n"}}),
        Route("compute", "POST", c + "/servers/{server}/action", action),
        Route("compute", "PUT", c + "/servers/{server}/metadata", {"metadata": {"a": "b"}}),
        Route("compute", "POST", c + "/servers/{server}/metadata", {"metadata": {"a": "b"}}),
        Route("compute", "PUT", c + "/servers/{server}/metadata/{key}", {"meta": {"k": "v"}}),
        Route("compute", "GET", c + "/flavors/{flavor}"),
        Route("compute", "GET", c + "/images/detail"),
        Route("compute", "GET", c + "/images/{image}"),
        *(Route("objects", m, s) for m in ("GET", "HEAD", "POST")),
        *(Route("objects", m, s + "/{container}") for m in ("GET", "HEAD", "PUT", "POST", "DELETE")),
        *(Route("objects", m, s + "/{container}/{object}", b"", "text/plain") for m in OBJECT_METHODS),
        Route("objects", "PUT", s + "/{container}/{object}?multipart-manifest=put", slo),
        Route("objects", "GET", "/info"),
    ]


@st.composite
def requests(draw: st.DrawFn, world: World, routes: list[Route]) -> dict[str, Any]:
    route = draw(st.sampled_from(routes))
    path = route.path
    while "{" in path:
        start = path.index("{")
        kind = path[start + 1 : path.index("}", start)]
        path = path[:start] + draw(path_segment(world, kind)) + path[path.index("}", start) + 1 :]
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), hostile_text), hostile_text), max_size=3))
    if pairs:
        path += ("&" if "?" in path else "?") + urlencode(pairs)
    user = draw(st.sampled_from(["demo", "demo", "demo", "alt", "admin", None]))
    headers: dict[str, str | bytes] = {"Accept": "application/json"}
    if user is not None:
        headers["X-Auth-Token"] = world.tokens[user]
    headers.update(draw(st.dictionaries(st.sampled_from(HEADERS), header_values(), max_size=3)))
    if "Content-Type" not in headers:
        headers["Content-Type"] = route.media
    content: bytes | None = None
    if route.method in ("POST", "PUT", "PATCH"):
        if isinstance(route.body, bytes):
            content = draw(st.binary(max_size=2048))
        else:
            choice = draw(st.integers(0, 3))
            if choice == 0:
                document = draw(json_values)
            elif route.body is not None and choice < 3:
                document = draw(mutate(route.body))
            else:
                document = route.body if route.body is not None else draw(json_values)
            content = json.dumps(document).encode() if choice != 3 else draw(st.binary(max_size=256))
    return {"method": route.method, "path": path, "headers": headers, "content": content, "service": route.service}


# --- the fuzzer ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(cloud: Cloud) -> World:
    return seed(cloud)


def fuzz(world: World, service: str) -> list[str]:
    """Send ``EXAMPLES`` generated requests to ``service``; the ones answered 5xx or not at all."""
    cloud = world.cloud
    routes = [r for r in routes_of(world) if r.service == service]
    failures: list[str] = []
    client = httpx.Client(timeout=TIMEOUT)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(requests(world, routes))
    def one(request: dict[str, Any]) -> None:
        base = cloud.identity_url if request["service"] == "identity" else cloud.regions["ORD"]
        described = f"{request['method']} {request['path'][:200]} headers={_short(request['headers'])}"
        described += f" body={(request['content'] or b'')[:1000]!r}"
        try:
            response = client.request(request["method"], base + request["path"], headers=request["headers"],
                                      content=request["content"])  # fmt: skip
        except httpx.LocalProtocolError:
            return  # nothing a client can send (h11 refuses it before it leaves)
        except httpx.TimeoutException:
            failures.append(f"no answer in {TIMEOUT} s: {described}")
            return
        except httpx.TransportError as exc:
            failures.append(f"connection dropped ({exc!r}): {described}")
            return
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {response.text[:120]!r}: {described}")

    one()
    client.close()
    assert cloud.running, cloud.log()
    return failures


def _short(headers: dict[str, Any]) -> str:
    return str({k: v for k, v in headers.items() if k not in ("X-Auth-Token", "Accept")})[:300]


@pytest.mark.parametrize("service", ["identity", "images", "compute", "objects"])
def test_no_route_answers_5xx_or_hangs(world: World, service: str) -> None:
    failures = fuzz(world, service)
    assert not failures, f"{len(failures)} requests failed:\n" + "\n".join(failures[:40])


def test_memory_stays_bounded_after_the_fuzzing(world: World) -> None:
    _, peak = server_memory(world.cloud)
    assert peak < 300 << 20
