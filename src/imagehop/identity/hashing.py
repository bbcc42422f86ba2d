"""Salted, slow hashes for passwords and API keys; fast hashes for random tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets

# scrypt cost: ~16 MiB of memory and a few tens of milliseconds per check on this class of machine.
_N, _R, _P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for a password or API key."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode("utf-8", "surrogatepass"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether ``secret`` matches; without a stored hash (an unknown user) the same work is done
    against a dummy one, so the answer takes as long and says nothing about who exists."""
    try:
        scheme, n, r, p, salt, expected = (stored or _dummy_hash()).split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return bool(stored) and hmac.compare_digest(digest, _unb64(expected))


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
