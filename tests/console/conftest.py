"""Browser fixtures: Debian's chromium driven by Playwright, against a real `imagehop serve`.

The browser is the system's (``apt-get install chromium``, done by ``make install`` as root); no
browser is ever downloaded. Each test page writes screenshots to ``tests/console/screenshots/``
(ignored by git).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cloud, make_cloud

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = Path(__file__).parent / "screenshots"


def chromium_path() -> str:
    path = os.environ.get("IMAGEHOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("Debian's chromium is missing: run `make install` as root (it runs apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def console_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A two-region cloud (ORD, IAD) whose identity listener serves the console."""
    with make_cloud(tmp_path_factory.mktemp("console")) as running:
        yield running


class Shots:
    """Screenshots of each page, named in order, for the README and for a person to look at."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        SHOTS.mkdir(exist_ok=True)

    def __call__(self, page: object, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = SHOTS / f"{self.prefix}-{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path
