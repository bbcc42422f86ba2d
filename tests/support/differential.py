"""What the differential suites (``tests/objects/differential``, ``tests/images/differential``) share.

- :func:`diff_report`: the assertion message when imagehop's observations and the real peer's differ.
- :class:`AgreementCount`: a pytest plugin that counts the cases of one folder by outcome and prints,
  at the end of the run, how many agree with the peer. ``tests/conftest.py`` registers one per folder
  (there, because under pytest-xdist the folders' own conftests are loaded only in the workers)::

      config.pluginmanager.register(AgreementCount("tests/objects/differential/", "Swift 2.38"), "...")
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest


def diff_report(peer: str, label: str, ours: Any, theirs: Any) -> str:
    """``imagehop and <peer> differ``, then each step whose observations differ, with only what differs
    (where an observation is a dict; its ``note`` is kept, to say which request it was)."""
    name = peer.split()[0].lower()
    width = max(len("imagehop"), len(name)) + 1
    us, them = f"{'imagehop:':<{width}}", f"{name + ':':<{width}}"
    lines = [f"imagehop and {peer} differ{': ' + label if label else ''}"]
    if isinstance(ours, list) and isinstance(theirs, list):
        for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            if a != b:
                lines.append(f"  step {index}:\n    {us} {_short(a, b)}\n    {them} {_short(b, a)}")
        if len(ours) != len(theirs):
            lines.append(f"  {len(ours)} observations against {len(theirs)}")
    else:
        lines.append(f"  {us} {ours}\n  {them} {theirs}")
    return "\n".join(lines)


def _short(mine: Any, yours: Any) -> Any:
    """An observation with only what differs from the other side's (and its ``note``), where both are dicts."""
    if not (isinstance(mine, dict) and isinstance(yours, dict)):
        return mine
    out = {}
    for key in sorted(set(mine) | set(yours), key=str):
        a, b = mine.get(key, "<absent>"), yours.get(key, "<absent>")
        if a == b and key != "note":
            continue
        out[key] = _short(a, b) if isinstance(a, dict) and isinstance(b, dict) else a
    return out


class AgreementCount:
    """Counts the outcomes of the tests under ``folder`` (e.g. ``tests/objects/differential/``) and
    prints how many pass against ``peer`` (e.g. ``Swift 2.38``) in the terminal summary.

    ``documented``: node ids of the cases that passed with documented differences (filled while the
    tests run); when given, the summary says how many of the cases that agree they are. Under
    pytest-xdist the set fills in the workers: each case's report carries the mark to the process
    that prints the summary.
    """

    MARK = ("differential", "documented difference")

    def __init__(self, folder: str, peer: str, documented: Collection[str] | None = None) -> None:
        self.folder = folder
        self.peer = peer
        self.documented = documented
        self.outcomes: dict[str, str] = {}
        self.with_differences: set[str] = set()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" and self.documented is not None and item.nodeid in self.documented:
            report.user_properties.append(self.MARK)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.folder not in report.nodeid.replace("\\", "/"):
            return
        # The call's outcome; a setup or teardown failure counts when there is no call.
        if report.when == "call" or (report.outcome != "passed" and report.nodeid not in self.outcomes):
            self.outcomes[report.nodeid] = report.outcome
        if tuple(self.MARK) in (tuple(p) for p in report.user_properties):
            self.with_differences.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.outcomes:
            return
        agree = sum(1 for outcome in self.outcomes.values() if outcome == "passed")
        if self.documented is None:
            detail = "pass (each agrees, or pins a difference documented in docs/api-coverage.md on both sides)"
        else:
            with_differences = sum(1 for node in self.with_differences if self.outcomes.get(node) == "passed")
            detail = f"agree ({with_differences} of them with documented differences)"
        terminalreporter.write_line(
            f"differential (imagehop vs {self.peer}): {agree} of {len(self.outcomes)} cases {detail}", bold=True
        )
