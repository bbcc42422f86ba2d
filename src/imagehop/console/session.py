"""The console's session: one encrypted, authenticated cookie, and CSRF tokens bound to it.

The cookie is a Fernet token (AES-128-CBC + HMAC-SHA256) over a small JSON document: a random
session id, the user's API token and its expiry, who the user is, and one-shot flash messages. So the
API token never travels or rests in clear text, and any process that holds the same key (every
identity process of a scaled-out deployment) can read it: there is no server-side session table.

A CSRF token is an HMAC of the session id under a key derived from the same secret: it is bound to
the session, changes when the session id does (at log-in and log-out), and needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "imagehop_console"
KEY_FILE = "console.key"
MAX_COOKIE_AGE = 7 * 24 * 3600  # an anonymous session (log-in form) older than this is ignored


@dataclass
class Session:
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    token: str = ""
    expires_at: float = 0.0  # the API token's expiry, epoch seconds
    user: str = ""
    tenant: str = ""
    region: str = ""  # the region last looked at
    flash: list[list[str]] = field(default_factory=list)  # [kind, message] pairs, shown once

    @property
    def logged_in(self) -> bool:
        return bool(self.token) and self.expires_at > time.time()

    @property
    def expired(self) -> bool:
        """There was a token and its time is over: the session ended with it."""
        return bool(self.token) and self.expires_at <= time.time()

    def say(self, kind: str, message: str) -> None:
        # Kept short: it rides in the cookie until the next page shows it.
        self.flash = [*self.flash[-2:], [kind, message if len(message) <= 300 else message[:299] + "…"]]

    def take_flash(self) -> list[list[str]]:
        messages, self.flash = self.flash, []
        return messages


class SessionCodec:
    """Turns a :class:`Session` into a cookie value and back; makes and checks CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        derive = lambda label: hashlib.sha256(label + b"\0" + secret).digest()  # noqa: E731
        self._fernet = Fernet(base64.urlsafe_b64encode(derive(b"imagehop-console-cookie")))
        self._csrf_key = derive(b"imagehop-console-csrf")

    def dump(self, session: Session) -> str:
        return self._fernet.encrypt(json.dumps(asdict(session), separators=(",", ":")).encode()).decode()

    def load(self, value: str | None) -> Session | None:
        """The session in a cookie, or None when it is absent, forged, damaged or too old."""
        if not value or len(value) > 8192:
            return None
        try:
            raw = self._fernet.decrypt(value.encode(), ttl=MAX_COOKIE_AGE)
            data = json.loads(raw)
            return Session(
                sid=str(data["sid"]),
                token=str(data.get("token", "")),
                expires_at=float(data.get("expires_at", 0)),
                user=str(data.get("user", "")),
                tenant=str(data.get("tenant", "")),
                region=str(data.get("region", "")),
                flash=[[str(k), str(m)] for k, m in data.get("flash", [])][:10],
            )
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None

    def csrf_token(self, session: Session) -> str:
        digest = hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def check_csrf(self, session: Session | None, value: str | None) -> bool:
        if session is None or not value:
            return False
        return hmac.compare_digest(self.csrf_token(session), value)


def load_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured secret, else ``<data-dir>/console.key`` (made once, mode 0600).

    Every process that serves the console for one deployment needs the same secret: give it in the
    settings (``[console] secret_key``) or share the file.
    """
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32).encode()
    tmp = data_dir / f"{KEY_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a key another process made first
    except FileExistsError:
        secret = path.read_bytes().strip()
    finally:
        tmp.unlink()
    return secret
