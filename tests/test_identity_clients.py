"""Real clients log in to a real `imagehop serve`: keystoneauth1, openstacksdk, `openstack`."""

from __future__ import annotations

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic, v2, v3

from tests.support import Cloud, openstack


def _plugins(cloud: Cloud) -> dict[str, object]:
    demo = cloud.credentials()["demo"]
    return {
        "v2-password": v2.Password(
            auth_url=cloud.identity_url + "/v2.0", username="demo", password=demo["password"], tenant_id="10000001"
        ),
        "v3-password": v3.Password(
            auth_url=cloud.identity_url + "/v3",
            username="demo",
            password=demo["password"],
            user_domain_id="default",
            project_id="10000001",
        ),
        # The generic plugin discovers the version from the unversioned root (GET / -> 300).
        "discovered": generic.Password(
            auth_url=cloud.identity_url,
            username="demo",
            password=demo["password"],
            user_domain_name="Default",
            project_name="10000001",
            project_domain_name="Default",
        ),
    }


@pytest.mark.parametrize("plugin", ["v2-password", "v3-password", "discovered"])
def test_keystoneauth_sessions_resolve_every_region(cloud: Cloud, plugin: str) -> None:
    session = ks_session.Session(auth=_plugins(cloud)[plugin])
    assert session.get_token()
    assert session.get_project_id() == "10000001"
    for region, url in cloud.regions.items():
        image = session.get_endpoint(service_type="image", region_name=region, interface="public")
        assert image.rstrip("/") == url + "/image"
        storage = session.get_endpoint(service_type="object-store", region_name=region, interface="public")
        assert storage == f"{url}/v1/AUTH_10000001"
        # The image list needs a valid token: it answers to the session's, and refuses another.
        images = image.rstrip("/") + "/v2/images"
        listed = session.get(images, raise_exc=False)
        assert listed.status_code == 200 and isinstance(listed.json()["images"], list)
        refused = session.get(images, authenticated=False, headers={"X-Auth-Token": "x"}, raise_exc=False)
        assert refused.status_code == 401


def test_openstacksdk_connection_from_clouds_yaml(cloud: Cloud) -> None:
    import openstack

    loader = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    conn = openstack.connection.Connection(config=loader.get_one(cloud="imagehop"))
    assert conn.config.region_name == "ORD"
    assert conn.current_project_id == "10000001"
    assert conn.session.get_endpoint(service_type="image", region_name="IAD").rstrip("/") == (
        cloud.regions["IAD"] + "/image"
    )


def test_openstack_cli_token_issue_and_catalog(cloud: Cloud) -> None:
    token = openstack(cloud.env(), "token", "issue")
    assert token["project_id"] == "10000001"
    admin = openstack(cloud.env("imagehop-admin"), "token", "issue")
    assert admin["project_id"] == "10000000"

    catalog = {entry["Type"]: entry for entry in openstack(cloud.env(), "catalog", "list")}
    assert {"image", "object-store", "compute", "identity"} <= set(catalog)
    endpoints = catalog["object-store"]["Endpoints"]
    urls = {(e["region"], e["url"]) for e in endpoints if e["interface"] == "public"}
    assert urls == {(name, f"{url}/v1/AUTH_10000001") for name, url in cloud.regions.items()}
