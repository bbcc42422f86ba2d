"""Fixtures of the console's browser tests: one chromium for the session, one cloud per module.

The cloud runs on SQLite only: the console never touches a database (it is a client of the public
APIs), and the services behind those APIs are tested on both databases in their own folders.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.console.browser import CHROMIUM_ARGS, chromium_path
from tests.support.cloud import Cloud, make_cloud


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def console_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A two-region cloud (ORD, IAD) whose identity listener serves the console at /console/."""
    with make_cloud(tmp_path_factory.mktemp("console")) as running:
        yield running
