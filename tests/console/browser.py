"""Helpers for the console's browser tests: Debian's chromium, screenshots, log-in, navigation.

The browser is the system's (``apt-get install chromium``, done by ``make install`` as root), driven
by Playwright for Python; no browser is ever downloaded (never ``playwright install``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.cloud import Cloud

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = Path(__file__).parent / "screenshots"  # ignored by git; a few are copied to docs/console/
LONG = 120_000  # ms: a ceiling for server builds and copies on a busy machine (it bounds a hang only)


def chromium_path() -> str:
    path = os.environ.get("IMAGEHOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("Debian's chromium is missing: run `make install` as root (it runs apt-get install chromium)")
    return path


class Shots:
    """Screenshots of each page, numbered in order, for a person to look at and for the README."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        SHOTS.mkdir(exist_ok=True)

    def __call__(self, page: Page, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = SHOTS / f"{self.prefix}-{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def login(page: Page, cloud: Cloud, user: str = "demo", api_key: bool = False) -> None:
    """Log in through the form, with the password or the API key of a built-in user."""
    entry = cloud.credentials()[user]
    page.goto(cloud.endpoints["console"])
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("User name").fill(user)
    if api_key:
        page.get_by_role("radio", name="API key").check()
    page.get_by_label("Password or API key").fill(entry["api_key"] if api_key else entry["password"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()


def nav(page: Page, section: str) -> None:
    """Follow a link of the main navigation (Servers, Images, Files, Copies, Tasks)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=section).click()
