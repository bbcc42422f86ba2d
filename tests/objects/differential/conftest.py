"""The two servers of the differential tests, and the count of cases that agree (printed at the end)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import make_cloud
from tests.objects.differential.sides import PEER, Side, Sides
from tests.support.differential import AgreementCount

HERE = "tests/objects/differential/"

IMAGEHOP_EXTRA_USERS = {"reader": "reader", "norole": "creator"}  # user name -> its only role in tenant A


@pytest.fixture(scope="session")
def sides(real_swift, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sides]:
    with make_cloud(tmp_path_factory.mktemp("diff-cloud"), "sqlite", regions=("ORD",)) as cloud:
        creds = cloud.credentials()
        tenant_a, tenant_b = creds["demo"]["tenant_id"], creds["alt"]["tenant_id"]
        for user, role in IMAGEHOP_EXTRA_USERS.items():
            subprocess.run(
                [sys.executable, "-m", "imagehop", "user", "create", "--user", user, "--tenant-id", tenant_a,
                 "--role", role, "--password", f"{user}-secret", "--data-dir", str(cloud.data_dir)],
                check=True, capture_output=True,
            )  # fmt: skip
        cloud._credentials = None
        tokens = {"owner": cloud.token("demo"), "other": cloud.token("alt")}
        for user in IMAGEHOP_EXTRA_USERS:
            tokens[user] = _v3_token(cloud.identity_url, user, f"{user}-secret", tenant_a)
        ours = Side(
            "imagehop",
            {"A": f"AUTH_{tenant_a}", "B": f"AUTH_{tenant_b}"},
            cloud.regions["ORD"],
            tokens,
        )
        theirs_tokens = {
            "owner": real_swift.token("test", "tester")[1],
            "other": real_swift.token("test2", "tester2")[1],
            "reader": real_swift.token("test", "reader")[1],
            "norole": real_swift.token("test", "norole")[1],
        }
        # Keystone's reader role, in tempauth's terms: the account's read-only grant.
        grant = json.dumps({"read-only": ["test:reader"]})
        httpx.post(
            real_swift.storage_url("test"),
            headers={"X-Auth-Token": theirs_tokens["owner"], "X-Account-Access-Control": grant},
        ).raise_for_status()
        theirs = Side("swift", {"A": "AUTH_test", "B": "AUTH_test2"}, real_swift.url, theirs_tokens)
        yield Sides(ours, theirs)
        ours.client.close()
        theirs.client.close()


def _v3_token(identity_url: str, user: str, password: str, project: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"id": project}},
        }
    }
    response = httpx.post(f"{identity_url}/v3/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(AgreementCount(HERE, PEER), "objects-differential-count")
