"""The two servers of the differential tests, and the count of cases that agree (printed at the end)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Cloud, make_cloud
from tests.objects.differential.sides import Identity, Side, Sides

IMAGEHOP_EXTRA_USERS = {"reader": "reader", "norole": "creator"}  # user name -> its only role in tenant A


@pytest.fixture(scope="session")
def diff_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """imagehop (ORD, SQLite) with demo and alt, ``reader`` and ``norole`` (role ``creator``) in demo's tenant,
    and ``reseller`` (role ``ResellerAdmin``) in alt's."""
    with make_cloud(tmp_path_factory.mktemp("diff-cloud"), "sqlite", regions=("ORD",)) as cloud:
        tenant_a = cloud.credentials()["demo"]["tenant_id"]
        for user, role in IMAGEHOP_EXTRA_USERS.items():
            subprocess.run(
                [sys.executable, "-m", "imagehop", "user", "create", "--user", user, "--tenant-id", tenant_a,
                 "--role", role, "--password", f"{user}-secret", "--data-dir", str(cloud.data_dir)],
                check=True, capture_output=True,
            )  # fmt: skip
        tenant_b = cloud.credentials()["alt"]["tenant_id"]
        subprocess.run(
            [sys.executable, "-m", "imagehop", "user", "create", "--user", "reseller", "--tenant-id", tenant_b,
             "--role", "ResellerAdmin", "--password", "reseller-secret", "--data-dir", str(cloud.data_dir)],
            check=True, capture_output=True,
        )  # fmt: skip
        cloud._credentials = None
        yield cloud


def _imagehop_side(cloud: Cloud, keystone: bool = False) -> Side:
    """``keystone``: identities and the identity URL known to the side (keystoneauth cases name users by id)."""
    creds = cloud.credentials()
    tenant_a, tenant_b = creds["demo"]["tenant_id"], creds["alt"]["tenant_id"]
    tokens, identities = {}, {}
    for actor, user, password, tenant in (
        ("owner", "demo", creds["demo"]["password"], tenant_a),
        ("other", "alt", creds["alt"]["password"], tenant_b),
        *((user, user, f"{user}-secret", tenant_a) for user in IMAGEHOP_EXTRA_USERS),
    ):
        tokens[actor], identities[actor] = v3_token(cloud.identity_url, user, password, tenant)
    accounts = {"A": f"AUTH_{tenant_a}", "B": f"AUTH_{tenant_b}"}
    if not keystone:
        return Side("imagehop", accounts, cloud.regions["ORD"], tokens)
    for actor, user, password, tenant in (
        ("reseller", "reseller", "reseller-secret", tenant_b),
        ("admin", "admin", creds["admin"]["password"], creds["admin"]["tenant_id"]),
    ):
        tokens[actor], identities[actor] = v3_token(cloud.identity_url, user, password, tenant)
    return Side("imagehop", accounts, cloud.regions["ORD"], tokens, identities=identities,
                identity_url=cloud.identity_url)  # fmt: skip


@pytest.fixture(scope="session")
def sides(real_swift, diff_cloud: Cloud) -> Iterator[Sides]:
    """imagehop and the real Swift with tempauth (reader and no-role users emulated with ACLs)."""
    ours = _imagehop_side(diff_cloud)
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


@pytest.fixture(scope="session")
def keystone_sides(diff_cloud: Cloud, real_swift_keystone, real_openstack) -> Iterator[Sides]:
    """imagehop and the real Swift with authtoken + keystoneauth, each with the same actors in its own identity
    service: projects A and B, ``owner`` (A, member), ``reader`` (A, reader), ``norole`` (A, creator),
    ``other`` (B, member)."""
    ours = _imagehop_side(diff_cloud, keystone=True)
    suffix = uuid.uuid4().hex[:6]
    owner = real_openstack.create_user(f"ks-owner-{suffix}")
    users = {
        "owner": owner,
        "reader": real_openstack.create_user(f"ks-reader-{suffix}", owner.project, roles=("reader",)),
        "norole": real_openstack.create_user(f"ks-norole-{suffix}", owner.project, roles=("creator",)),
        "other": real_openstack.create_user(f"ks-other-{suffix}"),
    }
    users["reseller"] = real_openstack.create_user(f"ks-reseller-{suffix}", users["other"].project,
                                                   roles=("ResellerAdmin",))  # fmt: skip
    users["admin"] = real_openstack.admin
    tokens, identities = {}, {}
    for actor, user in users.items():
        tokens[actor], identities[actor] = v3_token(real_openstack.auth_url, user.name, user.password, user.project_id)
    accounts = {"A": f"AUTH_{owner.project_id}", "B": f"AUTH_{users['other'].project_id}"}
    theirs = Side("swift", accounts, real_swift_keystone.url, tokens, identities=identities,
                  identity_url=real_openstack.auth_url)  # fmt: skip
    yield Sides(ours, theirs, tag="k")
    ours.client.close()
    theirs.client.close()


def v3_token(identity_url: str, user: str, password: str, project: str) -> tuple[str, Identity]:
    """A project-scoped v3 token, and who it says the caller is."""
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
    token = response.json()["token"]
    who = Identity(token["project"]["id"], token["project"]["name"], token["user"]["id"], token["user"]["name"])
    return response.headers["X-Subject-Token"], who
