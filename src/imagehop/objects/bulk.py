"""Bulk delete (``?bulk-delete``) and the bulk-style result body SLO deletes share.

The request always answers 200; the real outcome is in the body, in the format ``Accept`` asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote
from xml.sax.saxutils import escape

from imagehop.objects.constraints import BULK_MAX_DELETES, BULK_MAX_FAILED, STATUS_TEXT, SwiftError
from imagehop.objects.store import ContainerNotEmpty, NoSuchContainer, NoSuchObject, ObjectStore


@dataclass
class BulkResult:
    deleted: int = 0
    not_found: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200
    body: str = ""

    def fail(self, name: str, status: int) -> None:
        self.errors.append((name, f"{status} {STATUS_TEXT[status]}"))
        if self.status == 200:
            self.status = status


def parse_paths(body: bytes) -> list[str]:
    lines = [line.strip() for line in body.decode("utf-8", "replace").splitlines() if line.strip()]
    if len(lines) > BULK_MAX_DELETES:
        raise SwiftError(413, f"Maximum Bulk Deletes: {BULK_MAX_DELETES} per request")
    return [unquote(line) for line in lines]


def bulk_delete(store: ObjectStore, account: str, paths: list[str]) -> BulkResult:
    """Delete ``/container/object`` and ``/container`` entries in order, objects first."""
    result = BulkResult()
    for path in paths:
        container, _, name = path.lstrip("/").partition("/")
        if not container:
            result.fail(path, 400)
            continue
        try:
            if name:
                store.delete_object(account, container, name)
            else:
                store.delete_container(account, container)
            result.deleted += 1
        except (NoSuchObject, NoSuchContainer):
            result.not_found += 1
        except ContainerNotEmpty:
            result.fail(path, 409)
        if len(result.errors) >= BULK_MAX_FAILED:
            break
    if result.errors and result.status == 200:
        result.status = 400
    return result


def render(result: BulkResult, fmt: str) -> tuple[str, bytes]:
    status = f"{result.status} {STATUS_TEXT[result.status]}"
    if fmt == "json":
        body = {
            "Number Deleted": result.deleted,
            "Number Not Found": result.not_found,
            "Response Status": status,
            "Response Body": result.body,
            "Errors": [list(e) for e in result.errors],
        }
        return "application/json; charset=utf-8", json.dumps(body).encode()
    if fmt == "xml":
        errors = "".join(
            f"<object><name>{escape(n)}</name><status>{escape(s)}</status></object>" for n, s in result.errors
        )
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<delete><number_deleted>{result.deleted}</number_deleted>'
            f"<number_not_found>{result.not_found}</number_not_found><response_status>{status}</response_status>"
            f"<response_body>{escape(result.body)}</response_body><errors>{errors}</errors></delete>"
        )
        return "application/xml; charset=utf-8", body.encode()
    lines = [
        f"Number Deleted: {result.deleted}",
        f"Number Not Found: {result.not_found}",
        f"Response Body: {result.body}",
        f"Response Status: {status}",
        "Errors:",
        *(f"{n}, {s}" for n, s in result.errors),
    ]
    return "text/plain; charset=utf-8", ("\n".join(lines) + "\n").encode()


def heartbeat_body(fmt: str, report: dict[str, str], errors: list[tuple[str, str]], root: str = "upload") -> bytes:
    """Swift's ``get_heartbeat_response_body``: the report and the errors as JSON, XML (no declaration) or text."""
    if fmt == "json":
        return json.dumps({**report, "Errors": [list(e) for e in errors]}).encode("ascii")
    if fmt == "xml":
        out = [f"<{root}>\n"]
        for key in sorted(report):
            tag = key.replace(" ", "_").lower()
            out.append(f"<{tag}>{escape(str(report[key]))}</{tag}>\n")
        out.append("<errors>\n")
        out += [f"<object><name>{escape(n)}</name><status>{escape(s)}</status></object>\n" for n, s in errors]
        out.append(f"</errors>\n</{root}>\n")
        return "".join(out).encode()
    lines = [f"{key}: {report[key]}\n" for key in sorted(report)]
    lines.append("Errors:\n")
    lines += [f"{n}, {s}\n" for n, s in errors]
    return "".join(lines).encode()
