"""Salted, slow hashes for passwords and API keys; fast hashes for random tokens.

A secret that matched is remembered for :data:`REMEMBER` seconds (an HMAC of the stored hash and the
secret under a key made at start-up, in memory only), so a client that logs in again and again with
the same password (the swift CLI logs in once per upload thread, the openstack CLI once per command)
costs one scrypt, not one per log-in, and does not queue behind itself on the hashing thread. A
wrong secret is never remembered, so guessing costs a full scrypt every time; a changed password has
a new stored hash, so the old one is not accepted from memory.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import threading
import time

# scrypt cost: ~16 MiB of memory and a few tens of milliseconds per check on this class of machine.
_N, _R, _P = 2**14, 8, 1
REMEMBER = 300.0  # seconds a matched secret is accepted without scrypt
_REMEMBER_MAX = 4096
_remember_key = os.urandom(32)
_remembered: dict[bytes, float] = {}
_remember_lock = threading.Lock()


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for a password or API key."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode("utf-8", "surrogatepass"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether ``secret`` matches; without a stored hash (an unknown user) the same work is done
    against a dummy one, so the answer takes as long and says nothing about who exists."""
    raw = secret.encode("utf-8", "surrogatepass")
    mark = hmac.digest(_remember_key, (stored or "").encode() + b"\0" + raw, "sha256") if stored else b""
    now = time.monotonic()
    if stored and _remembered.get(mark, 0.0) > now:
        return True
    try:
        scheme, n, r, p, salt, expected = (stored or _dummy_hash()).split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(raw, salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    matched = bool(stored) and hmac.compare_digest(digest, _unb64(expected))
    if matched:
        with _remember_lock:
            if len(_remembered) >= _REMEMBER_MAX:
                for old in [m for m, until in _remembered.items() if until <= now] or list(_remembered):
                    del _remembered[old]
            _remembered[mark] = now + REMEMBER
    return matched


@functools.cache
def _dummy_hash() -> str:
    return hash_secret(secrets.token_hex(16))


def new_token() -> str:
    """A random bearer token in Keystone's UUID-token shape (32 hex characters)."""
    return secrets.token_hex(16)


def token_hash(token: str) -> str:
    """Tokens are random and long, so an unsalted SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(18)


def new_api_key() -> str:
    return secrets.token_hex(16)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(data: str) -> bytes:
    return base64.b64decode(data)
