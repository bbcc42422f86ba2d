"""The task worker of one region: claims pending tasks and runs them on a few threads.

One worker per region (``imagehop serve`` starts one for each). It runs up to ``[tasks]
concurrency`` tasks at once, keeps a heartbeat on the ones it holds, and deletes expired tasks.
At start-up, and every lease period, it recovers tasks left ``processing`` by a worker that is gone
(a process of this host that no longer runs, or a heartbeat older than the lease): ``import`` and
``export`` are resumed (put back to ``pending``; they are written to redo their work safely) up to
``MAX_ATTEMPTS`` runs, anything else ends in ``failure`` with "interrupted". No task stays stuck.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from imagehop import leases
from imagehop.compute.service import ComputeService
from imagehop.images import recovery
from imagehop.images.imports import Importer, ImportFailed
from imagehop.images.service import now
from imagehop.region import Region
from imagehop.tasks import export, import_, store
from imagehop.tasks.context import TaskContext
from imagehop.tasks.errors import TaskFailed
from imagehop.tasks.progress import Progress

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LEASE = timedelta(seconds=60)  # a heartbeat older than this means the worker is gone
HEARTBEAT_EVERY = 10.0
INTERRUPTED = "Task interrupted: the service stopped while it ran. Start it again."

Runner = Callable[[TaskContext, dict, Callable[[int, int], None]], dict]
# Recovery hook of a task type that cannot be resumed: called with the task before it is failed.
Recover = Callable[[dict], None]


def _importer(ctx: TaskContext) -> Importer:
    return Importer(ctx.images, ctx.region.identity, ctx.region.images.web_download_allow_private)


def run_api_image_import(ctx: TaskContext, task: dict, progress: Callable[[int, int], None]) -> dict:
    """Interoperable import (``POST /v2/images/{id}/import``): the images service does the work."""
    try:
        return _importer(ctx).run_task(task)
    except ImportFailed as exc:
        raise TaskFailed(str(exc)) from None


RUNNERS: dict[str, tuple[Runner, str]] = {
    "export": (export.run, "Exported"),
    "import": (import_.run, "Imported"),
    "api_image_import": (run_api_image_import, "Copied"),
}
RESUMABLE = ("export", "import", "compute_build", "compute_delete")


class TaskWorker:
    def __init__(self, region: Region, extra_runners: dict[str, tuple[Runner, str]] | None = None,
                 recoverers: dict[str, Recover] | None = None) -> None:  # fmt: skip
        self.region = region
        self.ctx = TaskContext.for_region(region)
        self.engine = region.engine
        self.settings = region.tasks
        compute = ComputeService(region)
        self.runners = {**RUNNERS, **compute.runners(), **(extra_runners or {})}
        self.recoverers = {"api_image_import": lambda task: _importer(self.ctx).recover(task),
                           "compute_snapshot": compute.recover_snapshot, **(recoverers or {})}  # fmt: skip
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._running: dict[str, dict] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix=f"tasks-{region.name}")
        self._thread: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"task-worker-{self.region.name}", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = False) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._running)

    def wake(self) -> None:
        """Look for pending tasks now (after a POST) rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        last_beat = time.monotonic()
        last_housekeeping = -float("inf")
        while not self._stop.is_set():
            try:
                moment = time.monotonic()
                if moment - last_housekeeping >= self.settings.housekeeping_interval:
                    last_housekeeping = moment
                    self.housekeeping()
                self._fill()
                if moment - last_beat >= HEARTBEAT_EVERY:
                    last_beat = moment
                    self.heartbeat()
            except Exception:  # the database may be away for a moment: keep going
                log.exception("task worker of region %s", self.region.name)
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()

    def _fill(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if len(self._running) >= self.settings.concurrency:
                    return
            task = store.claim(self.engine, self.worker_id, now(), tuple(self.runners))
            if task is None:
                return
            with self._lock:
                self._running[task["id"]] = task
            log.info("task %s (%s) claimed by %s, attempt %d", task["id"], task["type"], self.worker_id,
                     task["attempts"])  # fmt: skip
            self._pool.submit(self._run, task)

    def heartbeat(self) -> None:
        """Renew the lease of each running task; a task taken over by another worker is marked lost,
        and its runner stops at its next progress report."""
        with self._lock:
            held = list(self._running.values())
        for task in held:
            with self.engine.begin() as conn:
                if not store.update_held(conn, task, heartbeat_at=now()):
                    self._lost.add(task["id"])
                    log.warning("task %s: lease lost (another worker took it over)", task["id"])

    # --- running one task

    def _run(self, task: dict) -> None:
        runner, verb = self.runners[task["type"]]
        status, message, result = "success", "", None
        try:
            result = runner(self.ctx, task, Progress(self.engine, task, verb, lost=self._lost))
            message = result.pop("message", "") if isinstance(result, dict) else ""
        except TaskFailed as exc:
            status, message = "failure", exc.message
        except Exception as exc:  # a bug or an I/O error: the task fails with a readable message
            log.exception("task %s (%s) failed", task["id"], task["type"])
            # Its text may name internal accounts, paths or hosts: the owner gets the kind only.
            status, message = "failure", f"Error: {exc.__class__.__name__} inside the service; see the service log."
        finally:
            with self._lock:
                self._running.pop(task["id"], None)
        self.finish(task, status, message, result if status == "success" else None)
        self._lost.discard(task["id"])

    def finish(self, task: dict, status: str, message: str, result: dict | None) -> bool:
        """End ``task`` as this claim of it: a fenced update, so of two workers that ran one task
        after a lease ran out, only the one holding the current claim records an outcome."""
        moment = now()
        values: dict[str, Any] = {"status": status, "message": message, "result": result, "updated_at": moment,
                                  "expires_at": moment + timedelta(hours=self.settings.time_to_live)}  # fmt: skip
        if status == "success":
            with self.engine.connect() as conn:
                row = store.get(conn, task["id"])
            if row and row["progress_total"]:
                values["progress_done"] = row["progress_total"]
        with self.engine.begin() as conn:
            done = store.update_held(conn, task, **values)
        if done:
            log.info("task %s (%s) ended: %s", task["id"], task["type"], status)
        else:
            log.warning("task %s: outcome %s discarded, the task was taken over by another worker", task["id"], status)
        return done

    # --- housekeeping

    def housekeeping(self) -> bool:
        """Recovery, expiry and the object engine's clean-up, by whichever process holds the region's
        housekeeping lock (never as a start-up step: other processes may be working)."""
        ttl = max(30.0, 3 * self.settings.housekeeping_interval)
        if not leases.acquire(self.engine, "housekeeping", ttl):
            return False
        self.recover()
        self.expire()
        objects = getattr(self.region, "objects", None)
        if objects is not None:
            done = objects.housekeeping()
            if any(done.values()):
                log.info("region %s housekeeping: %s", self.region.name, done)
        return True

    def recover(self) -> None:
        """Resume or fail the tasks a gone worker left ``processing``; put back to ``queued`` the
        images whose upload or stage a gone process left unfinished."""
        try:
            recovery.sweep(self.engine, self.ctx.images.data)
        except Exception:
            log.exception("sweeping interrupted uploads of region %s", self.region.name)
        moment = now()
        with self.engine.begin() as conn:
            found = store.orphans(conn, self.worker_id)
        for task in found:
            if not self._gone(task) and task["heartbeat_at"] and task["heartbeat_at"] >= moment - LEASE:
                continue
            if task["type"] in RESUMABLE and task["attempts"] < MAX_ATTEMPTS:
                message = f"Resumed after an interruption (attempt {task['attempts'] + 1})."
                with self.engine.begin() as conn:
                    # Fenced on the claim we saw: if its worker renewed or finished meanwhile, nothing changes.
                    if not store.update_held(conn, task, status="pending", worker_id=None, updated_at=moment,
                                             message=message):  # fmt: skip
                        continue
                log.warning("task %s (%s) interrupted; resumed", task["id"], task["type"])
                continue
            hook = self.recoverers.get(task["type"])
            if hook is not None:
                try:
                    hook(task)
                except Exception:
                    log.exception("recovering task %s", task["id"])
            self.finish(task, "failure", INTERRUPTED, None)
            log.warning("task %s (%s) interrupted; failed", task["id"], task["type"])

    def _gone(self, task: dict) -> bool:
        """True when the worker that holds ``task`` was a process of this host that has ended."""
        holder = task.get("worker_id") or ""
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if not holder or host != socket.gethostname() or not pid_text.isdigit():
            return not holder
        pid = int(pid_text)
        if pid == os.getpid():
            return holder != self.worker_id and not any(w.worker_id == holder for w in _workers)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def expire(self) -> int:
        with self.engine.begin() as conn:
            return store.delete_expired(conn, now())


_workers: list[TaskWorker] = []


def wake(region_name: str) -> None:
    """A task of ``region_name`` was just committed: this process's worker of that region (if it runs
    one) looks for it now instead of at its next poll (``[tasks] poll_interval``). Workers in other
    processes of a scaled-out deployment find it at their next poll, as before."""
    for worker in _workers:
        if worker.region.name == region_name:
            worker.wake()


def start_worker(region: Region, **kwargs: Any) -> TaskWorker:
    worker = TaskWorker(region, **kwargs)
    _workers.append(worker)
    worker.start()
    return worker
