"""Progress of a copy on a terminal: one line per phase, a byte bar with rate and ETA for the move."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class CopyProgress:
    """Receives ``(phase, info)`` events from :func:`imagehop.transfer.copy.copy_image`.

    Disabled (``--json`` and other machine formats), it shows nothing, needs no console and builds
    no rich ``Progress``."""

    def __init__(self, enabled: bool, console: Console | None) -> None:
        self.enabled = enabled and console is not None
        self.console = console
        self.progress: Progress | None = None
        if self.enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TimeRemainingColumn(), console=console,
            )  # fmt: skip
        self.move_task: TaskID | None = None
        self.last_message: dict[str, str] = {}

    def __enter__(self) -> CopyProgress:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, phase: str, info: dict[str, Any]) -> None:
        if self.progress is None:
            return
        if phase == "plan":
            self._line(phase, f"way: {info['method']} ({info['why']})")
        elif phase in ("export", "import", "pull"):
            message = info.get("message") or ""
            if "task" in info:  # a task we created: its id is the task's
                line = f"{phase}: task {info['task']} {info.get('status')}"
            elif info.get("type"):  # a task as the cloud shows it
                line = f"{phase}: task {info.get('id')} {info.get('status')}"
            else:  # an import started on an image; its task shows up with the next poll
                line = f"{phase}: image {info.get('id')} {info.get('status')}"
            self._line(phase, line + (f" - {message}" if message else ""))
        elif phase == "move":
            self.move_task = self.progress.add_task(f"move {info['object']}", total=info.get("size"))
        elif phase == "bytes" and self.move_task is not None:
            self.progress.advance(self.move_task, info["n"])
        elif phase == "moved":
            self._finish_bar()
        elif phase == "boot":
            self._line(phase, f"boot: server {info.get('id') or info.get('name')} {info.get('status') or 'requested'}")
        elif phase == "note":
            self.progress.console.print(f"note: {info['message']}", soft_wrap=True)
        elif phase == "warning":
            self.progress.console.print(f"[yellow]warning:[/] {info['message']}", soft_wrap=True)
        elif phase == "done":
            self._finish_bar()

    def _line(self, phase: str, line: str) -> None:
        if self.last_message.get(phase) != line:
            self.last_message[phase] = line
            self.progress.console.print(line, markup=False, soft_wrap=True)

    def _finish_bar(self) -> None:
        """The move is over: draw its bar for good, so that what follows prints below it."""
        if self.move_task is None:
            return
        done = self.progress.tasks[self.move_task].completed
        self.progress.update(self.move_task, total=done, completed=done)
        self.progress.stop()
        self.move_task = None


class BatchProgress:
    """Progress of several copies at once: one line per phase change, prefixed by the image."""

    def __init__(self, enabled: bool, console: Console | None) -> None:
        self.enabled = enabled and console is not None
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
            elif phase == "plan":
                line = f"way: {info['method']}"
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
