"""Tasks API routes under ``<region URL>/image``: ``/v2/tasks`` and ``/v2/tasks/{id}``.

Mounted beside the image routes and sharing their plumbing (405 with ``Allow``, Glance's error
bodies, request ids). A task body has exactly the fields Rackspace's examples show, plus
``image_id``/``request_id``/``user_id`` for interoperable-import tasks as Glance shows them. While a
task is pending or processing its GET carries ``Retry-After`` (seconds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from imagehop.identity.caller import Caller
from imagehop.images.imports import public_input
from imagehop.images.routes import read_json, resource, takes_body
from imagehop.region import Region
from imagehop.tasks import worker
from imagehop.tasks.service import POLL_HEADER, TaskService, poll_after

DELETE_MESSAGE = ("This operation is currently not permitted on Glance Tasks. They are auto deleted after "
                  "reaching the time based on their expires_at property.")  # fmt: skip


def task_routes(region: Region) -> list[BaseRoute]:
    service = TaskService(region.engine, region.tasks)
    retry_after = str(region.tasks.retry_after)

    @takes_body
    async def create_task(request: Request, caller: Caller) -> Response:
        body = await read_json(request)
        task = await run_in_threadpool(service.create, caller, body, request.state.request_id)
        worker.wake(region.name)
        return JSONResponse(task_view(task), status_code=201, headers={"Location": f"/v2/tasks/{task['id']}"})

    @takes_body
    async def list_tasks(request: Request, caller: Caller) -> Response:
        params = list(request.query_params.multi_items())
        page, full = await run_in_threadpool(service.list, caller, params)
        return JSONResponse(list_view(params, page, full))

    async def show_task(request: Request, caller: Caller) -> Response:
        task = await run_in_threadpool(service.get, caller, request.path_params["task_id"])
        headers = None
        if task["status"] in ("pending", "processing"):
            headers = {"Retry-After": retry_after, POLL_HEADER: poll_after([task], region.tasks.retry_after)}
        return JSONResponse(task_view(task), headers=headers)

    async def delete_task(request: Request, caller: Caller) -> Response:
        await run_in_threadpool(service.get, caller, request.path_params["task_id"])
        body = {"message": DELETE_MESSAGE, "code": "405 Method Not Allowed", "title": "Method Not Allowed"}
        return JSONResponse(body, status_code=405, headers={"Allow": "GET"})

    return [
        resource("/v2/tasks", GET=list_tasks, POST=create_task),
        resource("/v2/tasks/{task_id}", GET=show_task, DELETE=delete_task),
    ]


def timestamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def task_view(task: dict[str, Any], full: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": task["id"],
        "type": task["type"],
        "status": task["status"],
        "owner": task["owner"],
        "expires_at": timestamp(task["expires_at"]),
        "created_at": timestamp(task["created_at"]),
        "updated_at": timestamp(task["updated_at"]),
        "self": f"/v2/tasks/{task['id']}",
        "schema": "/v2/schemas/task",
    }
    if full:
        view["input"] = public_input(task["input"])
        view["result"] = task["result"]
        view["message"] = task["message"] or ""
    if task["type"] == "api_image_import":
        view.update(image_id=task["image_id"], request_id=task["request_id"], user_id=task["user_id"])
    return view


def list_view(params: list[tuple[str, str]], page: list[dict[str, Any]], full: bool) -> dict[str, Any]:
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"tasks": [task_view(t, full=False) for t in page]}
    body["first"] = "/v2/tasks" + (f"?{urlencode(kept)}" if kept else "")
    body["schema"] = "/v2/schemas/tasks"
    if full and page:
        body["next"] = "/v2/tasks?" + urlencode([*kept, ("marker", page[-1]["id"])])
    return body
