"""The stored hashes of an exported image, sealed so that an import in any region of the deployment
can take them instead of hashing the disk again.

An export of a raw image writes ``x-object-meta-imagehop-raw-hashes`` on the VHD object: the raw
image's size, content digest and MD5 (``checksum``), and an HMAC under the deployment's integrity
key over those and the SHA-512 (``os_hash_value``), which goes in ``x-object-meta-imagehop-raw-sha512``
(a Swift metadata value holds at most 256 characters). An import that finds a valid seal and then
computes the same content digest and size from the disk it stores has the very bytes the hashes were
computed over (the digest is SHA-256 over every block), so it takes the MD5 and SHA-512 as the
glance-download pull already does: on 2 cores they are most of an import's work (zeros included,
twice the virtual size for a half-empty disk). A tenant can read, copy or move the seal with the
object, but cannot make one: a seal whose digest or size does not match what the import computes
is ignored and the hashes are computed.

The key is derived from the secret every process of a deployment already shares (the console's
``[console] secret_key``, else ``<data-dir>/console.key``); processes that do not share it simply
do not trust each other's seals.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

META = "x-object-meta-imagehop-raw-hashes"
SHA512_META = "x-object-meta-imagehop-raw-sha512"
VERSION = "v1"
_SHAPE = re.compile(r"v1 (\d+) (sha256:[0-9a-f]{64}) ([0-9a-f]{32}) ([0-9a-f]{64})")
_SHA512 = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class RawHashes:
    size: int
    content_digest: str
    md5: str
    sha512: str


def derive_key(secret: bytes) -> bytes:
    """The integrity key, derived from the deployment's secret for this one use."""
    return hmac.new(secret, b"imagehop export raw hashes v1", hashlib.sha256).digest()


def _mac(key: bytes, hashes: RawHashes) -> str:
    body = f"{VERSION} {hashes.size} {hashes.content_digest} {hashes.md5} {hashes.sha512}"
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, hashes: RawHashes) -> dict[str, str]:
    """The object metadata that carries ``hashes``."""
    return {
        META: f"{VERSION} {hashes.size} {hashes.content_digest} {hashes.md5} {_mac(key, hashes)}",
        SHA512_META: hashes.sha512,
    }


def unseal(key: bytes, meta: dict[str, str]) -> RawHashes | None:
    """The hashes of a valid seal in an object's metadata, else None (no key, no seal, malformed
    or forged)."""
    value, sha512 = (meta.get(META) or "").strip(), (meta.get(SHA512_META) or "").strip()
    match = _SHAPE.fullmatch(value)
    if not key or match is None or _SHA512.fullmatch(sha512) is None:
        return None
    hashes = RawHashes(int(match.group(1)), match.group(2), match.group(3), sha512)
    if not hmac.compare_digest(_mac(key, hashes), match.group(4)):
        return None
    return hashes
