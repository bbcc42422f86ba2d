"""Compose the identity app and one app per region, and run them: one listener each.

``prepare()`` binds every socket first (so ``--port 0`` knows its ports before any URL is
written), migrates the databases and creates the built-in users; ``serve()`` runs all listeners in
one event loop, writes ``endpoints.json`` and ``clouds.yaml`` once they accept connections, and
stops them together on Ctrl-C or SIGTERM.

The same parts run as roles (``roles.py``): ``prepare_identity()`` (identity only, the one role that
bootstraps users), ``prepare_regions()`` (region APIs, no task worker) and the task workers. Every
listener answers ``/healthz`` (the process runs) and ``/readyz`` (its databases and blob stores
answer).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import functools
import json
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from imagehop import db
from imagehop.compute.routes import compute_routes
from imagehop.config import RegionSettings, Settings
from imagehop.console import build_console_app
from imagehop.console.session import load_secret
from imagehop.explain import Explained
from imagehop.http_protocol import Utf8RequestLineProtocol
from imagehop.identity.bootstrap import bootstrap, read_credentials
from imagehop.identity.catalog import Catalog, RegionEndpoint
from imagehop.identity.routes import build_identity_app
from imagehop.identity.service import IdentityError, IdentityService
from imagehop.images.routes import image_routes, not_found_route
from imagehop.logs import AccessLog
from imagehop.objects import acl as object_acl
from imagehop.objects.blobs import open_blob_store
from imagehop.objects.routes import object_routes
from imagehop.objects.store import ObjectStore
from imagehop.region import Region
from imagehop.tasks import sealed
from imagehop.tasks.routes import task_routes
from imagehop.tasks.worker import TaskWorker, start_worker

CLOUDS = (("imagehop", "demo"), ("imagehop-alt", "alt"), ("imagehop-admin", "admin"))
IDENTITY_DB_SETTING = "[identity] database_url (or IMAGEHOP_IDENTITY_DATABASE_URL)"


def region_db_setting(region: RegionSettings) -> str:
    env = f"IMAGEHOP_REGION_{region.name.upper().replace('-', '_')}_DATABASE_URL"
    return f"the database_url of region {region.name} (or {env})"


@dataclass
class Deployment:
    settings: Settings
    identity: IdentityService
    identity_url: str
    identity_app: Starlette | None
    identity_socket: socket.socket | None
    regions: list[tuple[Region, Starlette, socket.socket]] = field(default_factory=list)
    run_tasks: bool = True  # the one-process default runs the task workers; a region role does not

    def endpoints(self) -> dict[str, Any]:
        regions = {r.name: r.public_url for r, _, _ in self.regions}
        return {
            "identity": self.identity_url,
            "console": console_url(self.identity_url),
            "regions": regions or {r.name: r.url for r in self.identity.catalog.regions},
        }


def prepare(settings: Settings) -> Deployment:
    """Bind, migrate, bootstrap and build the apps; nothing is served yet."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    identity_socket = bind(settings.host, settings.port)
    region_sockets = [bind(settings.host, settings.region_port(i)) for i in range(len(settings.regions))]
    identity_url = (settings.identity_public_url or _local_url(identity_socket)).rstrip("/")
    region_urls = [
        (region.public_url or _local_url(sock)).rstrip("/")
        for region, sock in zip(settings.regions, region_sockets, strict=True)
    ]

    catalog = Catalog(
        identity_url,
        tuple(RegionEndpoint(r.name, url) for r, url in zip(settings.regions, region_urls, strict=True)),
    )
    identity = open_identity(settings, catalog)
    bootstrap(identity, settings.data_dir, settings.users)

    app = identity_app(identity, identity_url, settings)
    mount_console(app, identity_url, settings)
    deployment = Deployment(settings, identity, identity_url, app, identity_socket)
    object_acl.configure(settings.objects.operator_roles, settings.objects.reader_roles)
    for region_settings, url, sock in zip(settings.regions, region_urls, region_sockets, strict=True):
        region = build_region(settings, region_settings, url, identity)
        deployment.regions.append((region, build_region_app(region), sock))
    return deployment


def shared_catalog(settings: Settings) -> Catalog:
    """Every region of the shared configuration, at its public URL (for split roles)."""
    return Catalog(
        settings.identity_url(),
        tuple(RegionEndpoint(r.name, settings.region_public_url(i)) for i, r in enumerate(settings.regions)),
    )


def open_identity(settings: Settings, catalog: Catalog) -> IdentityService:
    engine = db.open_database(settings.identity_db_url(), "identity", IDENTITY_DB_SETTING)
    return IdentityService(engine, catalog, settings.token_lifetime)


def identity_app(identity: IdentityService, url: str, settings: Settings) -> Starlette:
    app = build_identity_app(identity, url, settings.auth)
    app.router.routes[0:0] = health_routes("identity", [lambda: _ping(identity.engine)])
    return app


def build_region(settings: Settings, region_settings: RegionSettings, url: str, identity: IdentityService) -> Region:
    """A region's services on its database and blob store (migrated, nothing served)."""
    engine = db.open_database(settings.region_db_url(region_settings), "region", region_db_setting(region_settings))
    region_dir = settings.region_dir(region_settings)
    region_dir.mkdir(parents=True, exist_ok=True)
    objects = ObjectStore(engine, region_dir, open_blob_store(region_settings.blob, region_dir))
    # One key for every region of the deployment, from the secret its processes already share.
    key = sealed.derive_key(load_secret(settings.data_dir, settings.console_secret_key))
    return Region(region_settings.name, url, engine, region_dir, identity, objects,
                  tasks=settings.tasks, images=settings.images, integrity_key=key)  # fmt: skip


def prepare_identity(settings: Settings) -> Deployment:
    """The identity role: Keystone only, on ``settings.port``; the one role that bootstraps users
    (creating those that are missing, never changing an existing user's secrets)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sock = bind(settings.host, settings.port)
    url = (settings.identity_public_url or _local_url(sock)).rstrip("/")
    catalog = shared_catalog(settings)
    catalog = Catalog(url, catalog.regions)
    identity = open_identity(settings, catalog)
    bootstrap(identity, settings.data_dir, settings.users)
    app = identity_app(identity, url, settings)
    mount_console(app, url, settings)
    return Deployment(settings, identity, url, app, sock, run_tasks=False)


def region_sockets(settings: Settings, names: list[str], port: int | None) -> list[socket.socket]:
    """Listening sockets of the region role, bound before any process forks: ``port`` when one region
    is served, else each region's configured port."""
    if port is not None and len(names) != 1:
        raise RegionRoleError("--port applies to one region; give each region its port in the configuration")
    sockets = []
    for name in names:
        index = [r.name for r in settings.regions].index(settings.region_settings(name).name)
        sockets.append(bind(settings.host, port if port is not None else settings.region_port(index)))
    return sockets


def prepare_regions(settings: Settings, names: list[str], sockets: list[socket.socket]) -> Deployment:
    """The region role: the APIs of the named regions, on already-bound sockets; tasks run elsewhere."""
    identity = open_identity(settings, shared_catalog(settings))
    object_acl.configure(settings.objects.operator_roles, settings.objects.reader_roles)
    deployment = Deployment(settings, identity, settings.identity_url(), None, None, run_tasks=False)
    for name, sock in zip(names, sockets, strict=True):
        index = [r.name for r in settings.regions].index(name)
        region = build_region(settings, settings.regions[index], settings.region_public_url(index), identity)
        deployment.regions.append((region, build_region_app(region), sock))
    return deployment


class RegionRoleError(Explained):
    """The region role cannot start as asked."""


def health_routes(role: str, checks: list[Callable[[], None]]) -> list[Route]:
    """``/healthz``: the process answers. ``/readyz``: each check (database, blob store) passes."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "role": role, "pid": os.getpid()})

    async def readyz(_request: Request) -> Response:
        problems = []
        for check in checks:
            try:
                await asyncio.to_thread(check)
            except Exception as exc:
                problems.append(f"{exc.__class__.__name__}: {exc}"[:300])
        if problems:
            return JSONResponse({"status": "unready", "role": role, "problems": problems}, 503)
        return JSONResponse({"status": "ready", "role": role, "pid": os.getpid()})

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]), Route("/readyz", readyz, methods=["GET", "HEAD"])]


def _ping(engine: Any) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def mount_console(app: Starlette, identity_url: str, settings: Settings) -> None:
    """The web console at ``<identity URL>/console/``, on whatever app serves identity.

    It reaches identity at ``identity_url`` and the regions through the user's catalog, so any
    process that serves identity (``serve``, or ``serve --role identity``) can mount it; they all
    need the same cookie secret (``[console] secret_key``, else ``<data-dir>/console.key``).
    """
    console = build_console_app(identity_url, settings.data_dir, settings.console_secret_key)
    app.router.routes.append(Mount("/console", app=console))


def console_url(identity_url: str) -> str:
    return identity_url.rstrip("/") + "/console/"


def build_region_app(region: Region) -> Starlette:
    """One region's base URL: ``/image`` now; ``/v1``, ``/info`` and ``/compute`` as they land."""
    checks = [lambda: _ping(region.engine), lambda: _ping(region.identity.engine), region.objects.blobs.check]
    routes = [
        *health_routes(f"region {region.name}", checks),
        Mount("/image", routes=[*image_routes(region), *task_routes(region), not_found_route()]),
        Mount("/compute", routes=compute_routes(region)),
        *object_routes(region),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={IdentityError: _region_identity_error, 404: _region_not_found},
    )
    app.state.identity = region.identity
    app.state.region = region
    return app


async def _region_identity_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdentityError)
    headers = {"WWW-Authenticate": "X-Auth-Token"} if exc.status == 401 else None
    body = {"error": {"code": exc.status, "title": exc.title, "message": exc.message}}
    return JSONResponse(body, exc.status, headers=headers)


async def _region_not_found(request: Request, _exc: Exception) -> Response:
    region: Region = request.app.state.region
    message = (
        f"Region {region.name} has no resource at {request.url.path}. "
        f"This region serves the image API at {region.public_url}/image/."
    )
    return JSONResponse({"error": {"code": 404, "title": "Not Found", "message": message}}, 404)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, a response written as headers then body waits
    # ~40 ms for the client's delayed ACK on every kept-alive request (Nagle's algorithm).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        advice = "pick another --port (regions take the ports after it), or --port 0 for free ports"
        if exc.errno == errno.EADDRINUSE:
            advice = f"another program uses it (another imagehop serve?): stop it, or {advice}"
        raise Explained(f"cannot listen on {host}:{port}: {exc.strerror}; {advice}.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _local_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (which stops all of them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(deployment: Deployment, on_ready: Callable[[Deployment], None] | None = None) -> None:
    """Serve until Ctrl-C / SIGTERM; write the endpoint files and call ``on_ready`` once listening."""
    apps = [(deployment.identity_app, deployment.identity_socket)] if deployment.identity_app is not None else []
    apps += [(app, sock) for _, app, sock in deployment.regions]
    servers = [_uvicorn(app, deployment.settings.client_timeout) for app, _ in apps]
    sockets = [sock for _, sock in apps]

    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)

    # Identity gets its own thread and event loop: a flood of token requests then queues behind
    # itself, not in front of the regions' requests (which validate tokens in-process).
    first = 0
    tasks = []
    if deployment.identity_app is not None:
        tasks.append(_in_thread(servers[0].serve(sockets=[sockets[0]]), "identity"))
        first = 1
    tasks += [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers[first:], sockets[first:], strict=True)
    ]
    purge = asyncio.create_task(_purge_tokens(deployment.identity)) if deployment.identity_app is not None else None
    regions = [region for region, _, _ in deployment.regions]
    reaper = asyncio.create_task(_reap_objects(regions, deployment.settings.objects.reap_interval)) if regions else None
    workers: list[TaskWorker] = [start_worker(region) for region in regions if deployment.run_tasks]
    try:
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                stop()
                break
            await asyncio.sleep(0.01)
        else:
            if deployment.identity_app is not None:
                write_endpoint_files(deployment)
            if on_ready is not None:
                on_ready(deployment)
        await asyncio.gather(*tasks)
    finally:
        for pending in (purge, reaper):
            if pending is not None:
                pending.cancel()
        for worker in workers:
            worker.stop()
        for region in regions:  # the blob intents committed ahead and not used (else housekeeping's)
            with contextlib.suppress(Exception):
                region.objects.release_intents()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _in_thread(coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Future[None]:
    """Run ``coroutine`` in its own thread and event loop; a future of the running loop for its end."""
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def run() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return asyncio.wrap_future(done)


def _uvicorn(app: Starlette, client_timeout: float = 60.0) -> _Server:
    config = uvicorn.Config(
        AccessLog(app),
        log_level=None,
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=5,
        # an idle kept-alive connection stays open as long as Swift's proxy keeps one (client_timeout), not
        # uvicorn's 5 s: a client pool that drops its idle connections after 5 s (httpx) would otherwise now
        # and then send a request on one the server is closing that instant, and get a reset, unretried
        timeout_keep_alive=client_timeout,
        log_config=None,
        # raw UTF-8 request lines as Swift accepts them, 408 for a stalled request
        http=functools.partial(Utf8RequestLineProtocol, body_timeout=client_timeout),
    )
    return _Server(config)


async def _purge_tokens(identity: IdentityService, every: float = 3600) -> None:
    while True:
        await asyncio.to_thread(identity.purge_expired_tokens)
        await asyncio.sleep(every)


async def _reap_objects(regions: list[Any], every: float) -> None:
    """Expired objects' rows and bytes go for good, every ``every`` seconds (never at start-up): Swift's
    object-expirer. Each row goes by a conditional delete, so several processes may run this at once."""
    while True:
        await asyncio.sleep(every)
        for region in regions:
            with contextlib.suppress(Exception):  # a failed pass is retried at the next one
                await asyncio.to_thread(region.objects.reap_expired)


def write_endpoint_files(deployment: Deployment) -> None:
    """``endpoints.json`` and ``clouds.yaml`` in the data dir, written atomically."""
    data_dir = deployment.settings.data_dir
    _atomic_write(data_dir / "clouds.yaml", yaml.safe_dump(clouds_config(deployment), sort_keys=False), mode=0o600)
    # Written last: its appearance tells scripts and tests that everything is ready.
    _atomic_write(data_dir / "endpoints.json", json.dumps(deployment.endpoints(), indent=2) + "\n")


def clouds_config(deployment: Deployment) -> dict[str, Any]:
    credentials = {entry.user: entry for entry in read_credentials(deployment.settings.data_dir)}
    names = [region.name for region, _, _ in deployment.regions] or [
        r.name for r in deployment.identity.catalog.regions
    ]
    clouds: dict[str, Any] = {}
    for cloud, user in CLOUDS:
        entry = credentials.get(user)
        if entry is None:  # the user exists with credentials this data dir does not know
            continue
        clouds[cloud] = {
            "auth": {
                "auth_url": deployment.identity_url,
                "username": entry.user,
                "password": entry.password,
                "project_id": entry.tenant_id,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "identity_api_version": 3,
            "region_name": names[0],
            "regions": names,
            "interface": "public",
        }
    return {"clouds": clouds}


def _atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One ``imagehop serve`` per data dir: a second one fails at once with a clear message."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "serve.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Explained(
                f"another imagehop serve is already using {data_dir}: stop it (Ctrl-C in its terminal, or kill "
                f"the pid in {data_dir / 'serve.lock'}), or pass another --data-dir."
            ) from None
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
