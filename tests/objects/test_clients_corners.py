"""Issue 12 with real clients (swift CLI, openstacksdk, rclone, curl): two tenants, a reader and a user with no
operator role; SLO part numbers, prefix TempURLs, raw UTF-8 names, cross-account copies. The wire details are
compared with a real Swift in tests/objects/differential; these prove the clients people use get them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack
import pytest
from openstack.config import loader

from tests.support import Cloud, make_cloud, run, storage_url, tool
from tests.support.clients import rclone_env, swift_env

pytestmark = pytest.mark.e2e
EXTRA = {"viewer": "reader", "nobody": "creator"}  # user -> its only role, in the demo tenant


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with make_cloud(tmp_path_factory.mktemp("corners"), "sqlite", regions=("ORD",)) as cloud:
        tenant = cloud.credentials()["demo"]["tenant_id"]
        for user, role in EXTRA.items():
            args = ["user", "create", "--user", user, "--tenant-id", tenant, "--role", role]
            args += ["--data-dir", str(cloud.data_dir)]
            subprocess.run([sys.executable, "-m", "imagehop", *args], check=True, capture_output=True)
        cloud._credentials = None
        run([tool("swift"), "post", "shared"], env=swift_env(cloud))
        run([tool("swift"), "upload", "shared", "--object-name", "hello.txt", "-"], env=swift_env(cloud),
            input="hello")  # fmt: skip
        yield cloud


def swift(cloud: Cloud, user: str, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    return run([tool("swift"), *args], env=swift_env(cloud, user), expect=expect)


def sdk(cloud: Cloud, user: str) -> openstack.connection.Connection:
    entry = cloud.credentials()[user]
    config = loader.OpenStackConfig(config_files=[str(cloud.clouds_yaml)]).get_one(
        "imagehop", auth={"username": user, "password": entry["password"], "project_id": entry["tenant_id"],
                          "user_domain_name": "Default", "project_domain_name": "Default"})  # fmt: skip
    return openstack.connection.Connection(config=config)


def test_swift_cli_owner_reader_and_no_role_user(people: Cloud) -> None:
    assert swift(people, "demo", "list", "shared").stdout.split() == ["hello.txt"]
    assert swift(people, "viewer", "list", "shared").stdout.split() == ["hello.txt"]
    assert "hello" in swift(people, "viewer", "download", "shared", "hello.txt", "-o", "-").stdout
    refused = swift(people, "viewer", "upload", "shared", "--object-name", "x", "-", expect=None)
    assert refused.returncode != 0 and "403" in refused.stderr
    nobody = swift(people, "nobody", "list", "shared", expect=None)
    assert nobody.returncode != 0 and "403" in nobody.stderr
    other = swift(people, "alt", "--os-storage-url", storage_url(people), "list", "shared", expect=None)
    assert other.returncode != 0 and "403" in other.stderr


def test_openstacksdk_reader_reads_and_cannot_write(people: Cloud) -> None:
    reader = sdk(people, "viewer")
    assert [o.name for o in reader.object_store.objects("shared")] == ["hello.txt"]
    assert reader.object_store.download_object("hello.txt", container="shared") == b"hello"
    with pytest.raises(openstack.exceptions.HttpException) as refused:
        reader.object_store.upload_object(container="shared", name="nope", data=b"x")
    assert refused.value.status_code == 403
    with pytest.raises(openstack.exceptions.HttpException) as nobody:
        list(sdk(people, "nobody").object_store.objects("shared"))
    assert nobody.value.status_code == 403


def test_rclone_no_role_user_needs_a_container_acl(people: Cloud, tmp_path: Path) -> None:
    env = rclone_env(people, user="nobody")
    denied = run(["rclone", "lsf", "ORD:shared"], env=env, expect=None)
    assert denied.returncode != 0
    tenant = people.credentials()["demo"]["tenant_id"]
    swift(people, "demo", "post", "acl-box", "--read-acl", f"{tenant}:nobody", "--write-acl", f"{tenant}:nobody")
    (tmp_path / "f.txt").write_text("from nobody")
    run(["rclone", "copy", str(tmp_path / "f.txt"), "ORD:acl-box"], env=env)
    assert run(["rclone", "lsf", "ORD:acl-box"], env=env).stdout.split() == ["f.txt"]
    assert run(["rclone", "lsf", "ORD:shared"], env=env, expect=None).returncode != 0  # still not that one


def test_curl_raw_utf8_names_part_numbers_and_prefix_tempurls(people: Cloud, tmp_path: Path) -> None:
    url, token = storage_url(people), people.token("demo")
    # curl sends the name as raw UTF-8 bytes in the request line.
    put = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", f"X-Auth-Token: {token}",
               "--data-binary", "utf", f"{url}/shared/café"])  # fmt: skip
    assert put.stdout == "201"
    assert "café" in swift(people, "demo", "list", "shared").stdout.split()
    # An SLO from the swift CLI, then one part of it with curl.
    big = tmp_path / "big.bin"
    big.write_bytes(b"a" * 1_048_576 + b"b" * 1_048_576 + b"c" * 10)
    swift(people, "demo", "upload", "--use-slo", "--segment-size", "1048576", "--object-name", "big", "shared",
          str(big))  # fmt: skip
    part = run(["curl", "-s", "-D", "-", "-o", str(tmp_path / "part"), "-H", f"X-Auth-Token: {token}",
                f"{url}/shared/big?part-number=2"]).stdout  # fmt: skip
    assert " 206 " in part.splitlines()[0] and "x-parts-count: 3" in part.lower()
    assert (tmp_path / "part").read_bytes() == b"b" * 1_048_576
    # A prefix TempURL from the swift CLI reaches what is under the prefix, nothing else.
    swift(people, "demo", "post", "-m", "Temp-URL-Key:secret")
    path = f"/v1/AUTH_{people.credentials()['demo']['tenant_id']}/shared/ca"
    signed = swift(people, "demo", "tempurl", "--prefix-based", "--iso8601", "GET", "3600", path, "secret").stdout
    query = signed.strip().split("?", 1)[1]
    base = people.regions["ORD"]
    assert httpx.get(f"{base}{path[:-2]}café?{query}").content == b"utf"
    assert httpx.get(f"{base}{path[:-2]}hello.txt?{query}").status_code == 401


def test_cross_account_copy_with_the_swift_cli(people: Cloud) -> None:
    alt_tenant = people.credentials()["alt"]["tenant_id"]
    demo_tenant = people.credentials()["demo"]["tenant_id"]
    swift(people, "alt", "post", "inbox", "--write-acl", f"{demo_tenant}:*")
    copied = httpx.request("COPY", f"{storage_url(people)}/shared/hello.txt",
                           headers={"X-Auth-Token": people.token("demo"), "Destination": "inbox/hello.txt",
                                    "Destination-Account": f"AUTH_{alt_tenant}"})  # fmt: skip
    assert copied.status_code == 201
    assert swift(people, "alt", "download", "inbox", "hello.txt", "-o", "-").stdout == "hello"
    refused = httpx.request("COPY", f"{storage_url(people)}/shared/hello.txt",
                            headers={"X-Auth-Token": people.token("demo"), "Destination": "private/x",
                                     "Destination-Account": f"AUTH_{alt_tenant}"})  # fmt: skip
    assert refused.status_code == 403
