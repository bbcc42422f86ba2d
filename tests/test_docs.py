"""The README and docs/ as a newcomer reads them: no path of the author's machine, no link to a file
or heading that is not there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_path_of_this_machine(page: Path) -> None:
    text = page.read_text()
    assert str(REPO) not in text
    for pattern in (r"(?<![\w>/.-])/work/", r"(?<![\w>/.-])/tmp/", r"(?<![\w>/.-])/root/", r"/home/\w+/"):
        found = re.findall(rf".{{0,40}}{pattern}.{{0,40}}", text)
        assert not found, f"{page.name} shows a path of this machine: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_lead_somewhere(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which the repo does not hold"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name} links to {target}: no such heading in {linked.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_pointer_to_files_outside_the_repo(page: Path) -> None:
    for name in ("DESIGN.md", "PERFORMANCE.md"):
        assert name not in page.read_text() or (REPO / name).exists(), f"{page.name} mentions {name}"


def test_make_bench_keeps_the_sections_it_does_not_write(tmp_path: Path) -> None:
    """docs/benchmarks.md holds figures measured by hand beside `make bench`'s: a run replaces only its own."""
    from bench.__main__ import kept_sections

    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nold header\n## Cold start\n\nold figure\n## By hand\n\nkept figure\n\n")
    assert kept_sections(page, {"Cold start"}) == ["## By hand\n\nkept figure\n"]
    assert kept_sections(tmp_path / "none.md", {"Cold start"}) == []
