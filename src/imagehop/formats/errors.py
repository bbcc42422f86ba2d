"""The one error a disk-format reader raises, carrying a Rackspace import error code.

Rackspace Cloud Images reported failed imports as "Image cannot be imported. Error code: 'NNN'".
We keep those codes so the import task can reproduce the same message, and add a readable
sentence for humans (``str(err)``).
"""

from __future__ import annotations

NOT_THIS_FORMAT = "396"  # not a VHD (bad cookie), or not the format that was asked for
VIRTUAL_SIZE_TOO_LARGE = "413"
UNSUPPORTED_TYPE = "523"  # VHD neither fixed nor dynamic; also unsupported qcow2 features
PHYSICAL_SIZE_TOO_LARGE = "609"
ZERO_UUID = "614"
HAS_PARENT = "721"  # differencing VHD, qcow2 with a backing file
CORRUPT = "111"  # anything else: checksums, offsets, overlaps, sizes that lie, truncation

CODES = {
    NOT_THIS_FORMAT: "not a valid image of the expected format",
    VIRTUAL_SIZE_TOO_LARGE: "virtual size too large",
    UNSUPPORTED_TYPE: "only fixed or dynamic disks can be imported",
    PHYSICAL_SIZE_TOO_LARGE: "physical size too large",
    ZERO_UUID: "the disk's unique id is all zeros",
    HAS_PARENT: "the disk has a parent; only stand-alone disks can be imported",
    CORRUPT: "the disk image failed validation",
}


class DiskFormatError(Exception):
    """A disk image is not what it claims to be, or is one we refuse to read.

    ``code`` is one of the Rackspace import error codes above; ``str(err)`` is a sentence
    that says what exactly is wrong.
    """

    def __init__(self, code: str, message: str, *, unsafe: bool = False) -> None:
        if code not in CODES:
            raise ValueError(f"unknown disk format error code {code!r}")
        if message and message[-1] not in ".?!":
            message += "."
        super().__init__(message)
        self.code = code
        self.message = message
        # True when the image would make a reader touch something outside it (a backing or data
        # file) or lies about its own layout: refused on upload too, not only on import.
        self.unsafe = unsafe

    @property
    def rackspace_message(self) -> str:
        return f"Image cannot be imported. Error code: '{self.code}'"

    def __repr__(self) -> str:
        return f"DiskFormatError(code={self.code!r}, message={self.message!r})"


def corrupt(message: str, *, unsafe: bool = False) -> DiskFormatError:
    return DiskFormatError(CORRUPT, message, unsafe=unsafe)
