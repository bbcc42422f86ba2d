"""The console as an attack surface: CSRF, cookies, tenants, escaping, redirects, session end."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from imagehop.console.session import COOKIE, SessionCodec, load_secret
from tests.console.browser import Shots, login, nav
from tests.support.clients import Compute, Glance, Swift
from tests.support.cloud import Cloud, make_cloud
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_page(browser, console_cloud: Cloud):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, console_cloud)
    yield page
    context.close()


def console_cookie(page: Page) -> dict:
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    return cookie


def test_a_form_without_the_sessions_csrf_token_is_refused(browser, demo_page: Page, console_cloud: Cloud) -> None:
    cloud, page = console_cloud, demo_page
    swift = Swift(cloud, "demo", "ORD")
    files = cloud.endpoints["console"] + "ORD/files"

    # the session cookie goes along (same browser context), the token does not: 403, nothing made
    forged = page.request.post(files, form={"name": "forged-1"}, max_redirects=0)
    assert forged.status == 403
    assert "CSRF" in forged.text()
    assert swift.head("/forged-1").status_code == 404

    # a token from another session (an anonymous visitor's log-in form) is no better
    other = browser.new_context()
    other_page = other.new_page()
    other_page.goto(cloud.endpoints["console"] + "login")
    stolen = other_page.locator("input[name=csrf_token]").first.get_attribute("value")
    other.close()
    forged = page.request.post(files, form={"name": "forged-2", "csrf_token": stolen}, max_redirects=0)
    assert forged.status == 403
    assert swift.head("/forged-2").status_code == 404

    # a page of another site posting to the console: the SameSite cookie stays home, so the post is
    # not logged in and changes nothing; nor does it end the user's own session
    evil = (
        "<!doctype html><title>win a prize</title>"
        f"<form id=f method=post action='{files}'><input name=name value=forged-3></form>"
        "<script>document.getElementById('f').submit()</script>"
    )
    page.route("http://attacker.test/**", lambda route: route.fulfill(status=200, body=evil, content_type="text/html"))
    page.goto("http://attacker.test/prize")
    page.wait_for_url(cloud.endpoints["console"] + "**")
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()
    assert swift.head("/forged-3").status_code == 404

    # the same site on another port (a region's origin): the cookie goes, the Origin check refuses it
    region_origin = cloud.regions["IAD"]
    page.route(f"{region_origin}/evil", lambda route: route.fulfill(status=200, body=evil, content_type="text/html"))
    page.goto(f"{region_origin}/evil")
    expect(page.get_by_text("This form came from another site.")).to_be_visible()
    assert swift.head("/forged-3").status_code == 404

    # and the real form, with its token, works: the refusals above were about the token
    page.goto(files)
    page.get_by_label("Container name").fill("made-by-form")
    page.get_by_role("button", name="Create Container").click()
    expect(page.get_by_role("heading", name="made-by-form")).to_be_visible()
    assert swift.head("/made-by-form").status_code == 204


def test_the_log_in_form_needs_its_csrf_token_too(console_cloud: Cloud) -> None:
    entry = console_cloud.credentials()["demo"]
    with httpx.Client(base_url=console_cloud.endpoints["console"]) as client:
        client.get("login")
        response = client.post("login", data={"username": "demo", "method": "password", "secret": entry["password"]})
        assert response.status_code == 403
        assert "no valid CSRF token" in response.text
        after = client.get("ORD/servers")
    assert after.status_code == 303 and after.headers["location"].startswith("/console/login")


def test_the_session_cookie_is_httponly_samesite_and_holds_the_token_encrypted(
    demo_page: Page, console_cloud: Cloud
) -> None:
    cookie = console_cookie(demo_page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http here; over https (public URL or proxy) it is Secure
    assert cookie["path"] == "/console"
    assert demo_page.evaluate("document.cookie") == ""  # page scripts cannot read it

    # only the server's key opens it; the token inside is a real, valid token that the cookie never shows
    codec = SessionCodec(load_secret(console_cloud.data_dir))
    session = codec.load(cookie["value"])
    assert session is not None and session.user == "demo" and session.token
    assert session.token not in cookie["value"]
    assert SessionCodec(b"another key of at least thirty-two bytes").load(cookie["value"]) is None
    identity = console_cloud.identity_url
    headers = {"X-Auth-Token": session.token, "X-Subject-Token": session.token}
    assert httpx.get(f"{identity}/v3/auth/tokens", headers=headers).status_code == 200

    # log out revokes that token: a copy of the cookie is worth nothing afterwards
    demo_page.get_by_role("button", name="Log out").click()
    expect(demo_page.get_by_text("You are logged out.")).to_be_visible()
    assert httpx.get(f"{identity}/v3/auth/tokens", headers=headers).status_code in (401, 404)
    replay = httpx.get(
        console_cloud.endpoints["console"] + "ORD/servers", cookies={COOKIE: cookie["value"]}, follow_redirects=False
    )
    assert replay.status_code == 303 and "/console/login" in replay.headers["location"]


def test_a_second_tenant_sees_none_of_the_firsts_things(browser, console_cloud: Cloud, tmp_path) -> None:
    cloud = console_cloud
    glance, swift = Glance(cloud, "demo", "ORD"), Swift(cloud, "demo", "ORD")
    image = glance.create(name="demo-secret-image", disk_format="raw", container_format="bare")
    assert glance.upload(image["id"], b"\1" * 65536).status_code == 204
    swift.put("/demo-secret-container")
    swift.put("/demo-secret-container/plans.txt", b"the plans")
    server = Compute(cloud, "demo", "ORD").boot(image["id"], name="demo-secret-server")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, cloud, "alt", api_key=True)  # the other way to log in
    shot = Shots("tenant")
    base = cloud.endpoints["console"]
    for region in ("ORD", "IAD"):
        page.goto(f"{base}{region}/servers")
        expect(page.get_by_text(f"No servers in {region} yet.")).to_be_visible()
        page.goto(f"{base}{region}/images")
        expect(page.get_by_text("demo-secret-image")).to_have_count(0)
        page.goto(f"{base}{region}/files")
        expect(page.get_by_text(f"No containers in {region} yet.")).to_be_visible()
        page.goto(f"{base}{region}/copies")
        expect(page.get_by_text(f"No copies into {region} yet.")).to_be_visible()
        page.goto(f"{base}{region}/tasks")
        expect(page.get_by_text(f"No tasks in {region}.")).to_be_visible()
    shot(page, "alt tasks")

    # naming the first tenant's things in the URL finds nothing either
    for path in (
        f"ORD/images/{image['id']}",
        f"ORD/servers/{server['id']}",
        "ORD/files/demo-secret-container",
        "ORD/files/demo-secret-container/download?name=plans.txt",
    ):
        response = page.goto(base + path)
        assert response is not None and response.status == 404, path
        expect(page.get_by_text("the plans")).to_have_count(0)
    shot(page, "alt not found")

    # and a real form of the console, with alt's own CSRF token, cannot delete demo's image
    page.goto(f"{base}ORD/servers")
    token = page.locator("form.logout input[name=csrf_token]").get_attribute("value")
    refused = page.request.post(f"{base}ORD/images/{image['id']}/delete", form={"csrf_token": token})
    assert refused.status == 404
    assert glance.image(image["id"])["status"] == "active"
    context.close()


def test_everything_shown_is_escaped(demo_page: Page, console_cloud: Cloud) -> None:
    glance = Glance(console_cloud, "demo", "ORD")
    name = "<img src=x onerror=alert(1)>"
    image = glance.create(name=name, disk_format="raw", container_format="bare", note="<script>alert(2)</script>")
    dialogs: list[str] = []
    demo_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    nav(demo_page, "Images")
    expect(demo_page.get_by_role("link", name=name)).to_be_visible()
    demo_page.get_by_role("link", name=name).click()
    expect(demo_page.get_by_role("heading", name=name)).to_be_visible()
    expect(demo_page.get_by_label("note", exact=True)).to_have_value("<script>alert(2)</script>")
    assert demo_page.locator("img[src=x]").count() == 0
    assert "&lt;img src=x onerror=alert(1)&gt;" in demo_page.content()
    assert dialogs == []
    glance.delete(f"/v2/images/{image['id']}")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/console/../evil", "javascript:x"])
def test_log_in_never_redirects_off_the_console(browser, console_cloud: Cloud, target: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    entry = console_cloud.credentials()["demo"]
    page.goto(console_cloud.endpoints["console"] + "login?" + httpx.QueryParams({"next": target}).__str__())
    page.get_by_label("User name").fill("demo")
    page.get_by_label("Password or API key").fill(entry["password"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()
    assert page.url.startswith(console_cloud.endpoints["console"] + "ORD/servers")
    context.close()


def test_a_wrong_password_is_refused_with_a_clear_message(browser, console_cloud: Cloud) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console_cloud.endpoints["console"])
    page.get_by_label("User name").fill("demo")
    page.get_by_label("Password or API key").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("The user name or the password / API key is not right.")
    expect(page.get_by_label("User name")).to_have_value("demo")
    assert next(c for c in context.cookies() if c["name"] == COOKIE)["value"]
    page.goto(console_cloud.endpoints["console"] + "ORD/servers")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    context.close()


def test_the_session_ends_with_the_token(browser, tmp_path) -> None:
    """A cloud whose tokens live 4 seconds: the console's session ends with its token."""
    with make_cloud(tmp_path / "short", env={"IMAGEHOP_TOKEN_LIFETIME": "4"}) as cloud:
        context = browser.new_context()
        page = context.new_page()
        login(page, cloud)
        servers = cloud.endpoints["console"] + "ORD/servers"

        def asked_to_log_in_again() -> bool:
            page.goto(servers)
            return page.get_by_role("heading", name="Log in").is_visible()

        wait_for(asked_to_log_in_again, "the console asks for a log-in once the token expired", timeout=60)
        expect(page.get_by_text("Your session expired: log in again.")).to_be_visible()
        # and it comes back to the page it was asked for
        page.get_by_label("User name").fill("demo")
        page.get_by_label("Password or API key").fill(cloud.credentials()["demo"]["password"])
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(servers)
        context.close()


def test_unknown_region_and_bad_filters_get_clear_errors(demo_page: Page, console_cloud: Cloud) -> None:
    base = console_cloud.endpoints["console"]
    response = demo_page.goto(base + "DFW/servers")
    assert response is not None and response.status == 404
    expect(demo_page.get_by_role("alert")).to_have_text("There is no region DFW in your catalog.")
    response = demo_page.goto(base + "ORD/images?property=no-equals-sign")
    assert response is not None and response.status == 400
    expect(demo_page.get_by_role("alert")).to_contain_text("Write the property filter as key=value")
    response = demo_page.goto(base + f"ORD/images/{uuid.uuid4()}")
    assert response is not None and response.status == 404


def test_log_in_attempts_are_limited_per_browser_address(tmp_path) -> None:
    """Identity sees every console log-in as the console's own address, so the console limits
    attempts per browser address itself: a burst of 10, then 429 with Retry-After."""
    with make_cloud(tmp_path / "limited") as cloud, httpx.Client(base_url=cloud.endpoints["console"]) as client:
        page = client.get("login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        form = {"csrf_token": token, "username": "demo", "method": "password", "secret": "wrong"}
        statuses = [client.post("login", data=form).status_code for _ in range(10)]
        assert statuses == [401] * 10  # the burst: each one a real, refused log-in
        refused = None
        for _ in range(10):  # the bucket refills one attempt per 2 s; these come faster
            response = client.post("login", data=form)
            if response.status_code == 429:
                refused = response
                break
            assert response.status_code == 401
        assert refused is not None, "no 429 after 20 attempts"
        assert refused.headers["Retry-After"] == "2"
        assert "Too many log-in attempts from your address" in refused.text


def test_the_cookie_is_secure_when_the_console_is_reached_over_https(console_cloud: Cloud) -> None:
    """Behind a TLS proxy (uvicorn trusts X-Forwarded-Proto from 127.0.0.1): the cookie gets Secure."""
    login_page = console_cloud.endpoints["console"] + "login"
    plain = httpx.get(login_page)
    proxied = httpx.get(login_page, headers={"X-Forwarded-Proto": "https"})
    assert plain.status_code == proxied.status_code == 200
    assert "secure" not in plain.headers["set-cookie"].lower()
    flags = [part.strip().lower() for part in proxied.headers["set-cookie"].split(";")]
    assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags
