"""qemu-img as the oracle of the disk formats: what it reads from a file, and its comparisons."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.run import run

IDENTICAL = "0: Images are identical.\n"


def qemu_compare(qemu_img: str, raw: Path, other: Path, fmt: str) -> str:
    """``qemu-img compare`` of a raw file with an image: ``"<exit status>: <stdout><stderr>"``."""
    proc = subprocess.run(
        [qemu_img, "compare", "-f", "raw", "-F", fmt, str(raw), str(other)], capture_output=True, text=True
    )
    return f"{proc.returncode}: {proc.stdout}{proc.stderr}"


def qemu_virtual_size(qemu_img: str, path: Path, fmt: str) -> int:
    return json.loads(run([qemu_img, "info", "-f", fmt, "--output=json", path]).stdout)["virtual-size"]
