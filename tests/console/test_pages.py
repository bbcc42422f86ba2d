"""The rest of the console's pages: sharing, deleting, a failed copy, 390 px, keyboard, no JavaScript."""

from __future__ import annotations

import os
import uuid

import pytest
from playwright.sync_api import expect

from tests.console.browser import LONG, Shots, login, nav
from tests.support.clients import Compute, Glance, Swift
from tests.support.cloud import Cloud
from tests.support.sizes import MiB
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def small_image(cloud: Cloud, name: str, region: str = "ORD") -> dict:
    glance = Glance(cloud, "demo", region)
    image = glance.create(name=name, disk_format="raw", container_format="bare")
    data = bytearray(2 * MiB)
    data[:4096] = os.urandom(4096)
    assert glance.upload(image["id"], bytes(data)).status_code == 204
    return glance.image(image["id"])


def test_the_region_selector_keeps_the_section(browser, console_cloud: Cloud) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, console_cloud)
    nav(page, "Images")
    page.get_by_label("Region", exact=True).select_option("IAD")
    page.get_by_role("button", name="Switch region").click()
    expect(page.get_by_role("heading", name="Images in IAD")).to_be_visible()
    assert page.url == console_cloud.endpoints["console"] + "IAD/images"
    nav(page, "Files")
    expect(page.get_by_role("heading", name="Files in IAD")).to_be_visible()
    context.close()


def test_share_an_image_with_another_tenant(browser, console_cloud: Cloud) -> None:
    cloud = console_cloud
    image = small_image(cloud, "shared-with-alt")
    alt_tenant = cloud.tenant("alt")

    owner = browser.new_context(viewport={"width": 1280, "height": 900})
    page = owner.new_page()
    login(page, cloud)
    page.goto(cloud.endpoints["console"] + f"ORD/images/{image['id']}")
    page.get_by_label("Tenant id").fill(alt_tenant)
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_text(f"Shared with tenant {alt_tenant}")).to_be_visible()
    expect(page.locator(".members")).to_contain_text(f"Tenant {alt_tenant}: pending")
    assert Glance(cloud, "demo", "ORD").image(image["id"])["visibility"] == "shared"

    member = browser.new_context(viewport={"width": 1280, "height": 900})
    other = member.new_page()
    login(other, cloud, "alt")
    nav(other, "Images")
    expect(other.get_by_role("link", name="shared-with-alt")).to_have_count(0)  # pending: not listed yet
    other.goto(cloud.endpoints["console"] + f"ORD/images/{image['id']}")
    expect(other.get_by_text("shares this image with you")).to_be_visible()
    other.get_by_role("button", name="Accept").click()
    nav(other, "Images")
    expect(other.get_by_role("link", name="shared-with-alt")).to_be_visible()
    other.get_by_role("link", name="shared-with-alt").click()
    expect(other.get_by_role("button", name="Save properties")).to_have_count(0)  # not the owner's to edit

    page.reload()
    expect(page.locator(".members")).to_contain_text(f"Tenant {alt_tenant}: accepted")
    page.get_by_role("button", name=f"Stop sharing with {alt_tenant}").click()
    expect(page.get_by_text("Not shared with any tenant.")).to_be_visible()
    other.goto(cloud.endpoints["console"] + f"ORD/images/{image['id']}")
    expect(other.get_by_role("alert")).to_be_visible()
    owner.close()
    member.close()


def test_delete_object_container_image_and_server(browser, console_cloud: Cloud) -> None:
    cloud = console_cloud
    swift, glance = Swift(cloud, "demo", "ORD"), Glance(cloud, "demo", "ORD")
    swift.put("/to-empty")
    swift.put("/to-empty/a/b.txt", b"bye")
    image = small_image(cloud, "to-delete")
    compute = Compute(cloud, "demo", "ORD")
    server = compute.boot(image["id"], name="to-delete-server", flavor="1")
    compute.wait_status(server["id"], "ACTIVE")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, cloud)
    base = cloud.endpoints["console"]

    page.goto(base + "ORD/files/to-empty")
    page.get_by_role("link", name="Delete container").click()
    page.get_by_role("button", name="Delete container").click()
    expect(page.get_by_text("Container to-empty is not empty: delete its objects first.")).to_be_visible()
    page.get_by_role("link", name="a/").click()
    page.get_by_role("link", name="Delete b.txt").click()
    expect(page.get_by_role("heading", name="Delete object a/b.txt?")).to_be_visible()
    page.get_by_role("button", name="Delete object").click()
    expect(page.get_by_text("Deleted a/b.txt.")).to_be_visible()
    assert swift.names("to-empty") == []
    page.goto(base + "ORD/files/to-empty")
    page.get_by_role("link", name="Delete container").click()
    page.get_by_role("button", name="Delete container").click()
    expect(page.get_by_text("Container to-empty is deleted.")).to_be_visible()
    assert swift.head("/to-empty").status_code == 404

    page.goto(base + f"ORD/servers/{server['id']}")
    page.get_by_role("link", name="Delete server").click()
    page.get_by_role("button", name="Delete server").click()
    expect(page.get_by_text("Server to-delete-server is deleted.")).to_be_visible()
    wait_for(lambda: compute("GET", f"/servers/{server['id']}").status_code == 404, "the server is gone")

    page.goto(base + f"ORD/images/{image['id']}")
    page.get_by_role("link", name="Delete image").click()
    page.get_by_role("link", name="Cancel").click()  # a second thought keeps it
    assert glance.image(image["id"])["status"] == "active"
    page.get_by_role("link", name="Delete image").click()
    page.get_by_role("button", name="Delete image").click()
    expect(page.get_by_text("Image to-delete is deleted.")).to_be_visible()
    assert glance.get(f"/v2/images/{image['id']}").status_code == 404
    context.close()


def test_a_failed_copy_shows_the_tasks_message(browser, console_cloud: Cloud) -> None:
    """A glance-download of an image that does not exist in ORD: IAD's import task fails, and the
    copy's page says why (the same page a copy started from the console shows)."""
    cloud = console_cloud
    iad = Glance(cloud, "demo", "IAD")
    missing = str(uuid.uuid4())
    target = iad.create(name="doomed-copy", disk_format="raw", container_format="bare",
                        **{"imagehop.source": f"ORD/{missing}"})  # fmt: skip
    method = {"name": "glance-download", "glance_image_id": missing, "glance_region": "ORD"}
    assert iad.post(f"/v2/images/{target['id']}/import", json={"method": method}).status_code == 202

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, cloud)
    page.goto(cloud.endpoints["console"] + f"IAD/copies/{target['id']}")
    expect(page.locator(".step-name")).to_have_text("failed", timeout=LONG)
    expect(page.get_by_role("alert")).to_contain_text(f"The copy failed: Remote image {missing} in ORD: HTTP 404.")
    Shots("pages")(page, "copy failed")
    nav(page, "Copies")
    expect(page.get_by_role("row", name="doomed-copy")).to_contain_text("failed")
    context.close()


def test_readable_at_390_px(browser, console_cloud: Cloud) -> None:
    """Every page fits a 390 px wide phone: no sideways scrolling of the page (wide tables scroll
    inside their own box)."""
    cloud = console_cloud
    image = small_image(cloud, "phone-image")
    Swift(cloud, "demo", "ORD").put("/phone-container")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    login(page, cloud)
    shot = Shots("phone")
    base = cloud.endpoints["console"]
    for path in (
        "ORD/servers",
        "ORD/servers/new",
        "ORD/images",
        f"ORD/images/{image['id']}",
        "ORD/images/upload",
        "ORD/files",
        "ORD/files/phone-container",
        "ORD/copies",
        "ORD/tasks",
    ):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide"
        shot(page, path.replace(image["id"], "image"))
    context.close()


def test_keyboard_only(browser, console_cloud: Cloud) -> None:
    """Log in and pick an image tab with the keyboard alone."""
    cloud = console_cloud
    small_image(cloud, "keyboard-image")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(cloud.endpoints["console"])
    expect(page.get_by_label("User name")).to_be_focused()  # the form starts where one types
    page.keyboard.type("demo")
    page.keyboard.press("Tab")
    expect(page.get_by_role("radio", name="Password")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password or API key")).to_be_focused()
    page.keyboard.type(cloud.credentials()["demo"]["password"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.goto(cloud.endpoints["console"] + "ORD/servers/new")
    page.get_by_role("tab", name="Base images").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Saved")).to_be_focused()
    expect(page.get_by_role("tab", name="Saved")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel", name="Saved")).to_be_visible()
    expect(page.get_by_role("tabpanel", name="Base images")).to_be_hidden()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("tabpanel", name="Base images")).to_be_visible()
    context.close()


def test_everything_but_live_updates_works_without_javascript(browser, console_cloud: Cloud) -> None:
    cloud = console_cloud
    image = small_image(cloud, "no-js-image")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    login(page, cloud)

    # the Image tabs are buttons that submit the form and come back with the other tab, keeping the fields
    page.goto(cloud.endpoints["console"] + "ORD/servers/new")
    page.get_by_label("Server name").fill("no-js-server")
    page.get_by_role("button", name="Saved").click()
    expect(page.get_by_label("Server name")).to_have_value("no-js-server")
    expect(page.get_by_text("No saved images in ORD")).to_be_visible()
    page.get_by_role("button", name="Base images").click()
    page.get_by_role("group", name="Your images").get_by_label("no-js-image").check()
    page.get_by_role("button", name="Create Server").click()
    expect(page.get_by_role("heading", name="no-js-server")).to_be_visible()

    # without live updates, a Refresh link brings the news
    def active() -> bool:
        if page.get_by_role("link", name="Refresh").count():
            page.get_by_role("link", name="Refresh").click()
        return page.locator("#server-live .status").inner_text() == "ACTIVE"

    wait_for(active, "the server shows ACTIVE after a refresh", timeout=120)

    # a copy started without JavaScript is followed with its Refresh link too
    page.goto(cloud.endpoints["console"] + f"ORD/images/{image['id']}")
    page.get_by_role("button", name="Copy to region").click()
    expect(page.get_by_role("heading", name="Copy of no-js-image")).to_be_visible()

    def copied() -> bool:
        if page.get_by_role("link", name="Refresh").count():
            page.get_by_role("link", name="Refresh").click()
        return page.locator(".step-name").inner_text() == "done: the image is active"

    wait_for(copied, "the copy shows done after a refresh", timeout=120)
    context.close()
