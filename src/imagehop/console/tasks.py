"""Tasks: the region's export, import and interoperable-import tasks, with status, message and result."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from starlette.responses import Response

from imagehop.console.web import Ctx, page

TYPES = ("import", "export", "api_image_import")
STATUSES = ("pending", "processing", "success", "failure")


@page
async def list_tasks(ctx: Ctx) -> Response:
    params = {"limit": 50}
    kind, status = ctx.query("type"), ctx.query("status")
    if kind in TYPES:
        params["type"] = kind
    if status in STATUSES:
        params["status"] = status
    if ctx.query("marker"):
        params["marker"] = ctx.query("marker")
    body = await ctx.api.json("image", "GET", "/tasks", params=params)
    next_marker = parse_qs(urlsplit(body["next"]).query).get("marker", [""])[0] if body.get("next") else ""
    tasks = body.get("tasks", [])
    running = any(t.get("status") in ("pending", "processing") for t in tasks)
    return ctx.render("tasks.html", section="tasks", tasks=tasks, types=TYPES, statuses=STATUSES, kind=kind,
                      status_filter=status, next_marker=next_marker, running=running)  # fmt: skip


@page
async def show_task(ctx: Ctx) -> Response:
    task = await ctx.api.json("image", "GET", f"/tasks/{ctx.param('task_id')}")
    pretty = {k: json.dumps(task.get(k), indent=2, sort_keys=True) for k in ("input", "result")}
    running = task.get("status") in ("pending", "processing")
    image_id = task.get("image_id") or ((task.get("result") or {}).get("image_id") if task.get("result") else "")
    return ctx.render("task.html", section="tasks", task=task, pretty=pretty, running=running, image_id=image_id or "")
