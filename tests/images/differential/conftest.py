"""The two image services of the differential tests, and the count of cases that agree (printed at the end).

imagehop runs once per database backend (the module's cloud, as the ``cloud`` fixture); the real
Glance 33 (``real_openstack``, region ORD) is the same for both, so each case runs against it twice.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.images.differential.sides import DOCUMENTED, Side, Sides
from tests.peers.openstack import OpenStack
from tests.support import BACKENDS, Cloud, make_cloud

HERE = "tests/images/differential/"
_outcomes: dict[str, str] = {}

# Loopback sources for web-download: Glance's peer allows 127.0.0.1 ([import_filtering_opts]); so must we.
OURS_CONFIG = "[images]\nweb_download_allow_private = true\n"


def _v3_token(identity_url: str, body: dict) -> tuple[str, str]:
    response = httpx.post(f"{identity_url}/v3/auth/tokens", json=body, timeout=60)
    response.raise_for_status()
    return response.headers["X-Subject-Token"], response.json()["token"]["user"]["id"]


def _password_token(identity_url: str, user: str, password: str, project: str) -> tuple[str, str]:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"id": project}},
        }
    }
    return _v3_token(identity_url, body)


@pytest.fixture(scope="session")
def glance_side(real_openstack: OpenStack) -> Iterator[Side]:
    owner = real_openstack.create_user("diff-owner")
    other = real_openstack.create_user("diff-other")
    reader = real_openstack.create_user("diff-reader", owner.project, roles=("reader",))
    admin = real_openstack.admin
    assert admin is not None
    actors = {"owner": owner, "other": other, "reader": reader, "admin": admin}
    side = Side(
        "glance",
        real_openstack.glance_url("ORD"),
        tokens={name: real_openstack.token(user) for name, user in actors.items()},
        projects={name: user.project_id for name, user in actors.items()},
        users={name: user.user_id for name, user in actors.items()},
        identity=real_openstack.auth_url,
    )
    yield side
    side.client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def ours_cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with make_cloud(tmp_path_factory.mktemp(f"glance-diff-{request.param}"), request.param,
                    config=OURS_CONFIG) as cloud:  # fmt: skip
        tenant = cloud.tenant("demo")
        subprocess.run(
            [sys.executable, "-m", "imagehop", "user", "create", "--user", "reader", "--tenant-id", tenant,
             "--role", "reader", "--password", "reader-secret", "--data-dir", str(cloud.data_dir),
             *(["--config", str(cloud.config_file)] if cloud.config_file else [])],
            check=True, capture_output=True,
        )  # fmt: skip
        cloud._credentials = None
        yield cloud


@pytest.fixture(scope="module")
def sides(ours_cloud: Cloud, glance_side: Side) -> Iterator[Sides]:
    creds = ours_cloud.credentials()
    tokens, projects, users = {}, {}, {}
    for actor, user in (("owner", "demo"), ("other", "alt"), ("admin", "admin")):
        tokens[actor], users[actor] = _password_token(
            ours_cloud.identity_url, user, creds[user]["password"], creds[user]["tenant_id"]
        )
        projects[actor] = creds[user]["tenant_id"]
    tokens["reader"], users["reader"] = _password_token(
        ours_cloud.identity_url, "reader", "reader-secret", creds["demo"]["tenant_id"]
    )
    projects["reader"] = projects["owner"]
    ours = Side("imagehop", ours_cloud.regions["ORD"] + "/image", tokens, projects, users, ours_cloud.identity_url)
    yield Sides(ours, glance_side)
    ours.client.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if HERE not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" or (report.outcome != "passed" and report.nodeid not in _outcomes):
        _outcomes[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    agree = sum(1 for outcome in _outcomes.values() if outcome == "passed")
    documented = sum(1 for node in DOCUMENTED if _outcomes.get(node) == "passed")
    terminalreporter.write_line(
        f"differential (imagehop vs Glance 33): {agree} of {len(_outcomes)} cases agree "
        f"({documented} of them with documented differences)",
        bold=True,
    )
