"""The rules of the Tasks API: who may create and see which task, and what a task's input must be.

Validation of the work itself is asynchronous, as Rackspace had it: a POST with a well-formed body
answers 201 and a bad image or container ends the task in ``failure``. Only what makes no task at
all is refused at once: a missing ``type``/``input``, an unknown type, a bad list query, and too many
active tasks for one tenant (413, ``Retry-After``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.engine import Engine

from imagehop.config import TaskSettings
from imagehop.identity.caller import Caller
from imagehop.images.errors import BadRequest, Forbidden, NotFound, TooLarge
from imagehop.images.service import now
from imagehop.tasks import store

Record = dict[str, Any]
CREATABLE = ("import", "export")
TYPES = ("import", "export", "api_image_import")
STATUSES = ("pending", "processing", "success", "failure")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 25
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class TaskService:
    def __init__(self, engine: Engine, settings: TaskSettings) -> None:
        self.engine = engine
        self.settings = settings

    def create(self, caller: Caller, body: Any, request_id: str | None) -> Record:
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object with 'type' and 'input'.")
        task_type, task_input = body.get("type"), body.get("input")
        if task_type is None:
            raise BadRequest("Task 'type' is required")
        if task_input is None:
            raise BadRequest("Task 'input' is required")
        if task_type not in CREATABLE:
            raise BadRequest(f"Invalid type value: {task_type}. Tasks of type import or export can be created.")
        if not isinstance(task_input, dict):
            raise BadRequest("Task 'input' must be an object.")
        extra = set(body) - {"type", "input"}
        if extra:
            raise BadRequest(f"Unknown task attribute(s): {', '.join(sorted(extra))}.")
        if not caller.can_write:
            raise Forbidden("You are not authorized to create tasks (read-only role).")
        moment = now()
        row: Record = {
            "id": str(uuid.uuid4()), "image_id": None, "type": task_type, "status": "pending",
            "owner": caller.tenant_id, "user_id": caller.user_id, "request_id": request_id, "input": task_input,
            "result": None, "message": "", "created_at": moment, "updated_at": moment, "expires_at": None,
        }  # fmt: skip
        with self.engine.begin() as conn:
            active = store.count_active(conn, caller.tenant_id)
            if active >= self.settings.max_active_per_tenant:
                raise TooLarge(
                    f"Over Limit: {active} tasks of this tenant are pending or processing; at most "
                    f"{self.settings.max_active_per_tenant} may be. Retry when one has finished.",
                    headers={"Retry-After": str(self.settings.retry_after)},
                )
            store.insert(conn, row)
            return store.get(conn, row["id"])  # type: ignore[return-value]

    def get(self, caller: Caller, task_id: str) -> Record:
        with self.engine.connect() as conn:
            task = store.get(conn, task_id) if _UUID.match(task_id) else None
        hidden = task is not None and (task["type"] not in TYPES or _expired(task))
        if task is None or hidden or (task["owner"] != caller.tenant_id and not caller.is_admin):
            raise NotFound(f"Task with the given id {task_id} not found")
        return task

    def list(self, caller: Caller, params: list[tuple[str, str]]) -> tuple[list[Record], bool]:
        """One page of the caller's tasks and whether it is full (a ``next`` link is due)."""
        query: dict[str, str] = {}
        for key, value in params:
            if key not in ("limit", "marker", "sort_key", "sort_dir", "status", "type"):
                raise BadRequest(f"Invalid query parameter {key!r}.")
            query[key] = value
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
        limit = min(limit, MAX_LIMIT)
        sort_key = query.get("sort_key", "created_at")
        if sort_key not in store.SORT_KEYS:
            raise BadRequest(f"Invalid sort_key value: {sort_key}. It must be one of {', '.join(store.SORT_KEYS)}.")
        sort_dir = query.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {sort_dir}")
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"Invalid status value: {status}")
        task_type = query.get("type")
        if task_type is not None and task_type not in TYPES:
            raise BadRequest(f"Invalid type value: {task_type}")
        with self.engine.connect() as conn:
            marker = None
            if "marker" in query:
                marker = store.get(conn, query["marker"]) if _UUID.match(query["marker"]) else None
                if marker is None or marker["owner"] != caller.tenant_id:
                    raise BadRequest(f"Invalid marker. Task {query['marker']} could not be found.")
            if limit == 0:
                return [], False
            rows = store.page(conn, caller.tenant_id, status=status, type_=task_type, sort_key=sort_key,
                              sort_dir=sort_dir, marker=marker, limit=limit, alive_at=now())  # fmt: skip
        return rows, len(rows) == limit


POLL_HEADER = "X-Imagehop-Poll-After"
FIRST_POLL = 0.1  # seconds: how soon a client may look at a task that has just started


def poll_after(tasks: list[Record], retry_after: float) -> str:
    """Seconds (a decimal) until a client should look again at running ``tasks``: a quarter of the
    age of the youngest, from :data:`FIRST_POLL` up to ``retry_after``. ``Retry-After`` is whole
    seconds by its definition; this finer hint lets a short task (an incremental copy's) be seen
    done a fraction of a second after it is, while a long one is polled as rarely as before: a client
    that follows it polls about as many times in a task's life as the doubling steps of its age."""
    ages = [(now() - t["created_at"]).total_seconds() for t in tasks if t.get("created_at") is not None]
    wait = max(FIRST_POLL, min(ages, default=4 * retry_after) / 4)
    return f"{min(retry_after, wait):.2f}"


def _expired(task: Record) -> bool:
    """A finished task is gone at its ``expires_at``, even before the worker deletes its row."""
    return task["expires_at"] is not None and task["expires_at"] <= now()
