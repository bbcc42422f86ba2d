"""Progress of a copy on a terminal: one line per phase, a byte bar with rate and ETA for the move."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class CopyProgress:
    """Receives ``(phase, info)`` events from :func:`imagehop.transfer.copy.copy_image`."""

    def __init__(self, enabled: bool, console: Console) -> None:
        self.enabled = enabled
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=console, disable=not enabled,
        )  # fmt: skip
        self.move_task: TaskID | None = None
        self.last_message: dict[str, str] = {}

    def __enter__(self) -> CopyProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def stop(self) -> None:
        self.progress.stop()

    def update(self, phase: str, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if phase in ("export", "import", "pull"):
            message = info.get("message") or ""
            line = f"{phase}: task {info.get('task') or info.get('id')} {info.get('status')}"
            line += f" - {message}" if message else ""
            if self.last_message.get(phase) != line:
                self.last_message[phase] = line
                self.progress.console.print(line)
        elif phase == "move":
            self.move_task = self.progress.add_task(f"move {info['object']}", total=None)
        elif phase == "bytes" and self.move_task is not None:
            self.progress.advance(self.move_task, info["n"])
        elif phase == "boot":
            line = f"boot: server {info.get('id') or info.get('name')} {info.get('status') or 'requested'}"
            if self.last_message.get(phase) != line:
                self.last_message[phase] = line
                self.progress.console.print(line)
        elif phase == "note":
            self.progress.console.print(f"note: {info['message']}")
        elif phase == "warning":
            self.progress.console.print(f"[yellow]warning:[/] {info['message']}")
        elif phase == "done" and self.move_task is not None:
            self.progress.update(self.move_task, total=self.progress.tasks[self.move_task].completed)


class BatchProgress:
    """Progress of several copies at once: one line per phase change, prefixed by the image."""

    def __init__(self, enabled: bool, console: Console) -> None:
        self.enabled = enabled
        self.console = console
        self.last: dict[tuple[str, str], str] = {}

    def for_image(self, ref: str):  # type: ignore[no-untyped-def]
        def update(phase: str, info: dict[str, Any]) -> None:
            if not self.enabled or phase == "bytes":
                return
            if phase in ("export", "import", "pull", "boot"):
                line = f"{phase}: {info.get('status') or ''} {info.get('message') or ''}".rstrip()
            elif phase == "move":
                line = f"move: {info['object']}"
            elif phase in ("note", "warning"):
                line = f"{phase}: {info['message']}"
            elif phase == "done":
                line = "done" + (" (already copied)" if info.get("already") else "") + f": {info['image']}"
            else:
                return
            if self.last.get((ref, phase)) != line:
                self.last[(ref, phase)] = line
                self.console.print(f"[{ref}] {line}", markup=False)

        return update
