"""The processes of a scaled-out deployment: identity, region API processes and task workers.

    imagehop serve --role identity                         # Keystone only; bootstraps users
    imagehop serve --role region --regions ORD [--workers N] [--port P]
    imagehop worker --regions ORD [--port P]               # tasks, compute jobs, housekeeping

All of them take ``--database-url`` (one PostgreSQL database, a schema per service) and ``--config``;
the catalog lists every region of the shared configuration whichever process answers. No process
assumes it is alone: nothing is cleaned up or resumed at start-up; housekeeping runs in whichever
worker holds a region's lock, and every task and server state change is a fenced, conditional
update (see ``tasks/worker.py``).

``--workers N`` binds the region sockets once, then forks N processes that accept on them (the
kernel spreads connections); the parent restarts a child that dies and stops them all on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable

from starlette.applications import Starlette

from imagehop import db, server
from imagehop.config import Settings
from imagehop.tasks.worker import TaskWorker, start_worker

log = logging.getLogger(__name__)
STOP_GRACE = 10.0  # seconds a stopping worker waits for its running tasks before it exits


def run_identity(settings: Settings, on_ready: Callable[[server.Deployment], None] | None = None) -> None:
    deployment = server.prepare_identity(settings)
    asyncio.run(server.serve(deployment, on_ready=on_ready))


def run_region(settings: Settings, names: list[str], port: int | None, workers: int) -> None:
    """Serve the APIs of ``names`` in ``workers`` processes on the same sockets."""
    sockets = server.region_sockets(settings, names, port)
    # Migrate once, before forking: the children then only open their engines.
    for engine in [db.open_database(settings.identity_db_url(), "identity", server.IDENTITY_DB_SETTING)] + [
        db.open_database(settings.region_db_url(r), "region", server.region_db_setting(r))
        for r in map(settings.region_settings, names)
    ]:
        engine.dispose()
    for sock in sockets:
        log.info("region role %s listening on %s", ",".join(names), sock.getsockname()[:2])

    def child() -> None:
        deployment = server.prepare_regions(settings, names, sockets)
        asyncio.run(server.serve(deployment))

    if workers <= 1:
        child()
    else:
        prefork(child, workers)


def prefork(target: Callable[[], None], count: int) -> None:
    """Run ``target`` in ``count`` forked processes; restart any that dies until SIGTERM/SIGINT."""
    children: dict[int, float] = {}
    stopping = False
    quick_deaths = 0

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                target()
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        started = children.pop(pid, time.monotonic())
        if stopping:
            continue
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < 10 else 0
        if quick_deaths >= 3:  # a process that cannot start: do not loop, stop and say so
            log.error("region processes keep ending at start-up (last status %d); stopping", status)
            stop(signal.SIGTERM, None)
            continue
        log.warning("region process %d ended (status %d); starting another", pid, status)
        time.sleep(1)
        spawn()
    if quick_deaths >= 3:
        raise SystemExit(1)


def run_worker(settings: Settings, names: list[str], port: int | None) -> None:
    """Task workers for ``names`` (tasks, compute jobs, housekeeping), with an optional health listener."""
    identity = server.open_identity(settings, server.shared_catalog(settings))
    indexes = {r.name: i for i, r in enumerate(settings.regions)}
    regions = [
        server.build_region(settings, settings.region_settings(n), settings.region_public_url(indexes[n]), identity)
        for n in names
    ]
    workers = [start_worker(region) for region in regions]
    log.info("worker for %s started (%s)", ",".join(names), workers[0].worker_id if workers else "")
    checks: list[Callable[[], None]] = [lambda: server._ping(identity.engine)]
    for region in regions:
        checks += [lambda r=region: server._ping(r.engine), region.objects.blobs.check]
    app = Starlette(routes=server.health_routes("worker " + ",".join(names), checks))
    sock = server.bind(settings.host, port) if port is not None else None
    try:
        asyncio.run(_serve_health(app, sock, workers))
    finally:
        _stop_workers(workers)


async def _serve_health(app: Starlette, sock: object, workers: list[TaskWorker]) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    health = None
    if sock is not None:
        health = server._uvicorn(app)
        serving = asyncio.create_task(health.serve(sockets=[sock]))
    await done.wait()
    if health is not None:
        health.should_exit = True
        await serving


def _stop_workers(workers: list[TaskWorker]) -> None:
    """Stop claiming, give running tasks a moment, then exit: what is left is resumed by another worker."""
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + STOP_GRACE
    while any(worker.busy() for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)
