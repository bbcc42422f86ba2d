"""`imagehop copy` with a cloud behind TLS signed by a private CA: ``cacert`` and ``insecure`` as
openstacksdk reads them from clouds.yaml. The cloud is a real `imagehop serve` behind a TLS-terminating
proxy (tests/support/tls.py) that its catalog names, so every request to it (identity, image,
object storage, the image data both ways) goes over TLS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import Cloud, MiB, create_image, disk_bytes
from tests.support.tls import TlsProxy, free_port, make_certificates
from tests.support.transfer import copy_cli, images_with


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cloud, Path]]:
    """A one-region (SYD) imagehop cloud reachable only as ``https://127.0.0.1:...``; and the CA."""
    base = tmp_path_factory.mktemp("secure")
    certificates = make_certificates(base / "tls")
    identity, region = free_port(), free_port()
    with TlsProxy(certificates, identity) as identity_tls, TlsProxy(certificates, region) as region_tls:
        config = base / "imagehop.toml"
        config.write_text(
            f'[identity]\npublic_url = "https://127.0.0.1:{identity_tls.port}"\n\n'
            f'[[regions]]\nname = "SYD"\nport = {region}\npublic_url = "https://127.0.0.1:{region_tls.port}"\n'
        )
        with Cloud(base / "data", config, extra_args=["--port", str(identity)]) as cloud:
            yield cloud, certificates.ca


def clouds_env(cloud: Cloud, secure: Cloud, ca: Path, folder: Path) -> dict[str, str]:
    """clouds.yaml naming the plain cloud (``imagehop``) and the TLS one three ways: ``secure``
    (nothing said: the system's CAs), ``secure-ca`` (``cacert``) and ``secure-insecure``."""
    plain = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["imagehop"]
    tls = yaml.safe_load(secure.clouds_yaml.read_text())["clouds"]["imagehop"]
    assert tls["auth"]["auth_url"].startswith("https://127.0.0.1:")
    clouds = {
        "imagehop": plain,
        "secure": tls,
        "secure-ca": {**tls, "cacert": str(ca)},
        "secure-insecure": {**tls, "insecure": True},
    }
    path = folder / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    return {**cloud.env(), "OS_CLIENT_CONFIG_FILE": str(path)}


def tls_images(secure: Cloud, ca: Path, **filters: str) -> list[dict]:
    """The demo user's images in SYD, hidden ones too, read over TLS with the CA."""
    entry = secure.credentials()["demo"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": entry["password"]}}},
        "scope": {"project": {"id": entry["tenant_id"]}}}}  # fmt: skip
    with httpx.Client(verify=str(ca)) as http:
        token = http.post(secure.identity_url + "/v3/auth/tokens", json=body).headers["X-Subject-Token"]
        found = []
        for hidden in ("false", "true"):
            answer = http.get(secure.regions["SYD"] + "/image/v2/images", headers={"X-Auth-Token": token},
                              params={**filters, "os_hidden": hidden})  # fmt: skip
            found += answer.json()["images"]
        return found


def test_copy_to_and_from_a_cloud_behind_tls(
    cloud: Cloud, secure: tuple[Cloud, Path], tmp_path: Path
) -> None:  # fmt: skip
    target, ca = secure
    env = clouds_env(cloud, target, ca, tmp_path)
    data = disk_bytes(6 * MiB, seed=21)
    source = create_image(cloud, "ORD", "over-tls", data)
    to_tls = (source["id"], "--from", "ORD", "--to", "SYD", "--method", "stream")

    # No CA given: the certificate cannot be verified; the error says so and what to put in clouds.yaml.
    failed = copy_cli(env, *to_tls, "--to-cloud", "secure", "--tag", "k=none", state=tmp_path / "a.db", expect=1,
                      as_json=False)  # fmt: skip
    assert "cannot verify the TLS certificate of cloud secure at https://127.0.0.1:" in failed.stderr, failed.stderr
    assert "cacert:" in failed.stderr and "insecure: true" in failed.stderr
    assert tls_images(target, ca, k="none") == []

    # With the CA (cacert): the whole copy goes over TLS to the target, the bytes by PUT.
    report = json.loads(copy_cli(env, *to_tls, "--to-cloud", "secure-ca", "--tag", "k=ca",
                                 state=tmp_path / "b.db").stdout)  # fmt: skip
    assert report["method"] == "stream" and report["bytes_moved"] == len(data)
    [copied] = tls_images(target, ca, k="ca")
    assert copied["status"] == "active" and copied["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert copied["imagehop.content_digest"] == source["imagehop.content_digest"]

    # insecure: true skips the check; here the bytes come from the TLS cloud (a download over TLS).
    back = (copied["id"], "--from-cloud", "secure-insecure", "--from", "SYD", "--to-cloud", "imagehop", "--to",
            "IAD", "--method", "stream", "--tag", "k=insecure")  # fmt: skip
    report = json.loads(copy_cli(env, *back, state=tmp_path / "c.db").stdout)
    assert report["method"] == "stream" and report["bytes_moved"] == len(data)
    [returned] = images_with(cloud, "IAD", "k=insecure")
    assert returned["os_hash_value"] == hashlib.sha512(data).hexdigest()
