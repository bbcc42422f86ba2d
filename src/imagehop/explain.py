"""One line for a user: what went wrong and what to do next, instead of a traceback.

The command line turns every exception a user can cause into such a line (``imagehop --debug``
shows the traceback instead). Servers, services and stores raise their own errors; only the
outermost layer calls :func:`explain`.
"""

from __future__ import annotations

import errno
from pathlib import Path

DEBUG_HINT = "Run again with --debug for the traceback."


class Explained(RuntimeError):
    """An error whose message is already the one line a user needs (what went wrong, what to do)."""


def explain(exc: BaseException) -> str:
    """The one-line message for ``exc``: the known cases say what to do, the rest say how to see more."""
    if isinstance(exc, Explained):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return os_error(exc)
    try:
        import sqlalchemy.exc
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        pass
    else:
        if isinstance(exc, sqlalchemy.exc.OperationalError):
            return database_error(exc, None, "its database_url setting")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"unexpected error ({type(exc).__name__}): {text}. {DEBUG_HINT}"


def os_error(exc: OSError, what: str = "") -> str:
    """A file-system or socket error, with the path it is about and the usual ways out."""
    path = exc.filename
    where = f"{path}" if path is not None else (what or "the file")
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write to {where}: {reason}. Choose a data dir you can write to (--data-dir DIR or "
            "IMAGEHOP_DATA_DIR), or give this user write access to it."
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and path is not None:
        blocker = _first_file(Path(path))
        return f"cannot create the directory {where}: {blocker} is a file, not a directory. Choose another --data-dir."
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device holding {where}. Free some space, or use a data dir on another disk."
    if exc.errno == errno.ENOENT:
        return f"{where} does not exist. Check the path, or create it first."
    if exc.errno == errno.EADDRINUSE:
        return f"{reason}."
    return f"{where}: {reason}. {DEBUG_HINT}"


def _first_file(path: Path) -> Path:
    """The first part of ``path`` that exists and is not a directory (what blocks a mkdir)."""
    for parent in [*reversed(path.parents), path]:
        if parent.exists() and not parent.is_dir():
            return parent
    return path


def database_error(exc: BaseException, url: str | None, setting: str) -> str:
    """A database that cannot be used: the server's own words, and the fix for the usual causes."""
    orig = getattr(exc, "orig", exc)
    detail = " ".join(str(orig).split())
    target = f"the database {url}" if url else "the database"
    lowered = detail.lower()
    if "does not exist" in lowered and "database" in lowered:
        name, host, port, user = _pg_parts(url)
        create = f"createdb -h {host} -p {port} -U {user} {name}" if name else "createdb NAME"
        return (
            f"cannot use {target}: it does not exist on the server. "
            f"Create it ({create}) or set {setting} to an existing database."
        )
    if "connection refused" in lowered or "could not connect" in lowered or "no route to host" in lowered:
        return f"cannot reach {target}: nothing accepts connections there. Start PostgreSQL, or fix {setting}."
    if "password authentication failed" in lowered or ("role" in lowered and "does not exist" in lowered):
        return f"PostgreSQL refused the login to {target}: {_short(detail)}. Fix the user or password in {setting}."
    if "unable to open database file" in lowered:
        return (
            f"cannot open {target}: SQLite could not create or open the file. "
            "Check that the data dir exists and is writable, or choose another --data-dir."
        )
    return f"cannot use {target}: {_short(detail)}. Check {setting}. {DEBUG_HINT}"


def _short(detail: str) -> str:
    """The server's message without SQLAlchemy's background link and the driver's preamble."""
    detail = detail.split("(Background on this error")[0].strip()
    if "FATAL:" in detail:
        detail = detail.split("FATAL:", 1)[1].strip()
    return detail.rstrip(".")


def _pg_parts(url: str | None) -> tuple[str, str, str, str]:
    """Database name, host, port and user of a PostgreSQL URL (for a ``createdb`` command)."""
    if not url:
        return "", "HOST", "5432", "USER"
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database or "", parsed.host or "localhost", str(parsed.port or 5432), parsed.username or "postgres"
