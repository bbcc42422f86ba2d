"""The walkthrough in the web console, in a real browser against a real `imagehop serve`.

Log in; Storage > Files: Create Container, upload and download an object, make it public; upload
an image; Create Server from it; Create Image of the server; edit its properties and find it by
one through the API; Copy to region ORD -> IAD (two copies at once) and watch them finish; in IAD
open Create Server > Image > Saved, find the copy under Deleted Server and boot it; log out.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.browser import LONG, Shots, login, nav
from tests.support.clients import Glance
from tests.support.cloud import Cloud
from tests.support.sizes import MiB

pytestmark = pytest.mark.e2e


def find_images(glance: Glance, **filters: str) -> list[dict]:
    response = glance.get("/v2/images", params=filters)
    assert response.status_code == 200, response.text
    return response.json()["images"]


def make_disk(path: Path) -> bytes:
    data = bytearray(4 * MiB)
    data[:MiB] = os.urandom(MiB)
    data[3 * MiB : 3 * MiB + 11] = b"db-slave-3\n"
    path.write_bytes(data)
    return bytes(data)


def test_the_walkthrough_in_the_console(browser, console_cloud: Cloud, tmp_path: Path) -> None:
    cloud = console_cloud
    shot = Shots("walkthrough")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []  # script errors and Content-Security-Policy violations
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    # --- log in (the console sends an anonymous visitor to the log-in form) ---
    page.goto(cloud.endpoints["console"])
    expect(page).to_have_url(f"{cloud.endpoints['console']}login")
    shot(page, "log in")
    login(page, cloud)
    shot(page, "servers empty")

    # --- Storage > Files: Create Container, upload into a pseudo-folder, download, make public ---
    nav(page, "Files")
    page.get_by_label("Container name").fill("db-backups")
    page.get_by_role("button", name="Create Container").click()
    expect(page.get_by_role("heading", name="db-backups")).to_be_visible()
    dump = tmp_path / "dump.sql"
    dump.write_bytes(b"-- nightly dump of db-slave-3\n" + os.urandom(70_000))
    page.get_by_label("File", exact=True).set_input_files(str(dump))
    page.get_by_label("Object name (optional)").fill("nightly/dump.sql")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_text("Uploaded nightly/dump.sql")).to_be_visible()
    page.get_by_role("link", name="nightly/").click()
    expect(page.get_by_role("cell", name="dump.sql", exact=True)).to_be_visible()
    shot(page, "container folder")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download dump.sql").click()
    downloaded = tmp_path / "downloaded.sql"
    download_info.value.save_as(downloaded)
    assert downloaded.read_bytes() == dump.read_bytes()

    page.get_by_role("button", name="Make public").click()
    public_url = page.locator("a.public-url").get_attribute("href")
    assert public_url and public_url.endswith("/db-backups/")
    anonymous = httpx.get(public_url + "nightly/dump.sql")  # no token at all
    assert anonymous.status_code == 200 and anonymous.content == dump.read_bytes()
    shot(page, "container public")
    nav(page, "Files")
    row = page.get_by_role("row", name="db-backups")
    expect(row).to_contain_text("1")
    expect(row).to_contain_text("68.4 KiB")
    shot(page, "files")

    # --- upload a small image from the browser ---
    disk = make_disk(tmp_path / "db-base.raw")
    nav(page, "Images")
    page.get_by_role("link", name="Upload image").click()
    page.get_by_label("Image name").fill("db-base")
    page.get_by_label("Disk format").select_option("raw")
    page.get_by_label("Image file").set_input_files(str(tmp_path / "db-base.raw"))
    page.get_by_role("button", name="Upload image").click()
    expect(page.get_by_role("heading", name="db-base")).to_be_visible()
    expect(page.locator("#image-live .status")).to_have_text("active")

    # --- Create Server from it (Base images tab) ---
    nav(page, "Servers")
    page.get_by_role("link", name="Create Server").click()
    page.get_by_label("Server name").fill("Slave Database 3")
    expect(page.get_by_role("tab", name="Base images")).to_have_attribute("aria-selected", "true")
    page.get_by_role("group", name="Your images").get_by_label("db-base").check()
    shot(page, "create server base")
    page.get_by_role("button", name="Create Server").click()
    expect(page.get_by_role("heading", name="Slave Database 3")).to_be_visible()
    expect(page.locator("#server-live .status")).to_have_text("ACTIVE", timeout=LONG)  # live, no reload
    shot(page, "server")

    # --- Create Image of the server ---
    page.get_by_label("Image name").fill("db-slave-3-image")
    page.get_by_role("button", name="Create Image").click()
    expect(page.get_by_role("heading", name="db-slave-3-image")).to_be_visible()
    expect(page.locator("#image-live .status")).to_have_text("active", timeout=LONG)
    snapshot_url = page.url
    snapshot_id = snapshot_url.rstrip("/").rsplit("/", 1)[-1]

    # --- edit properties: add, replace, remove; find the image by one through the API ---
    ord_glance, iad_glance = Glance(cloud, "demo", "ORD"), Glance(cloud, "demo", "IAD")
    page.get_by_label("New property name").fill("com.mycompany.image-of")
    page.get_by_label("New property value").fill("db-slave-3")
    page.get_by_role("button", name="Save properties").click()
    expect(page.get_by_text("Properties saved (1 change).")).to_be_visible()
    found = find_images(ord_glance, **{"com.mycompany.image-of": "db-slave-3"})
    assert [i["id"] for i in found] == [snapshot_id]

    page.get_by_label("New property name").fill("com.mycompany.note")
    page.get_by_label("New property value").fill("first")
    page.get_by_role("button", name="Save properties").click()
    page.get_by_label("com.mycompany.note", exact=True).fill("second")
    page.get_by_role("button", name="Save properties").click()
    assert find_images(ord_glance, **{"com.mycompany.note": "second"})[0]["id"] == snapshot_id
    assert find_images(ord_glance, **{"com.mycompany.note": "first"}) == []
    page.get_by_label("Remove com.mycompany.note").check()
    page.get_by_role("button", name="Save properties").click()
    expect(page.get_by_text("Properties saved (1 change).")).to_be_visible()
    image = ord_glance.image(snapshot_id)
    assert "com.mycompany.note" not in image
    assert image["com.mycompany.image-of"] == "db-slave-3"
    shot(page, "image")

    # the image list finds it by the property too
    nav(page, "Images")
    page.get_by_label("Property (key=value)").fill("com.mycompany.image-of=db-slave-3")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="db-slave-3-image")).to_be_visible()
    expect(page.get_by_role("link", name="db-base")).to_have_count(0)
    shot(page, "images filtered")

    # the download link gives the image's bytes
    page.goto(snapshot_url)
    with page.expect_download() as image_download:
        page.get_by_role("link", name="Download").click()
    image_file = tmp_path / "snapshot.raw"
    image_download.value.save_as(image_file)
    assert image_file.read_bytes() == disk

    # --- Copy to region ORD -> IAD, two copies at once, watched live until active ---
    page.get_by_label("Target region").select_option("IAD")
    page.get_by_label("Coordinating property").fill("com.mycompany.image-of=db-slave-3")
    page.get_by_role("button", name="Copy to region").click()
    expect(page.get_by_role("heading", name="Copy of db-slave-3-image")).to_be_visible()
    copy_page = page.url
    assert "/console/IAD/copies/" in copy_page

    second = context.new_page()
    second.goto(cloud.endpoints["console"] + "ORD/images")
    second.get_by_role("link", name="db-base").click()
    second.get_by_label("Target region").select_option("IAD")
    second.get_by_role("button", name="Copy to region").click()
    expect(second.get_by_role("heading", name="Copy of db-base")).to_be_visible()

    for watched in (page, second):
        expect(watched.locator(".step-name")).to_have_text("done: the image is active", timeout=LONG)
        expect(watched.locator(".numbers .percent")).to_have_text("100 %")
        expect(watched.locator(".numbers .bytes")).to_have_text("4.0 MiB of 4.0 MiB")
    shot(page, "copy done")
    second.close()

    nav(page, "Copies")
    expect(page.get_by_role("row", name="db-slave-3-image")).to_contain_text("active")
    expect(page.get_by_role("row", name="db-base")).to_contain_text("active")
    shot(page, "copies")

    page.goto(copy_page)
    page.get_by_role("link", name="open db-slave-3-image in IAD").click()
    expect(page.get_by_role("heading", name="db-slave-3-image")).to_be_visible()
    copy_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    in_iad = find_images(iad_glance, **{"com.mycompany.image-of": "db-slave-3"})
    assert [i["id"] for i in in_iad] == [copy_id]
    source = find_images(ord_glance, id=snapshot_id)[0]
    assert in_iad[0]["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert in_iad[0]["imagehop.source"] == f"ORD/{snapshot_id}"

    # --- in IAD, Create Server > Image > Saved: the copy is under Deleted Server; boot it ---
    expect(page.get_by_label("Region", exact=True)).to_have_value("IAD")
    nav(page, "Servers")
    page.get_by_role("link", name="Create Server").click()
    page.get_by_role("tab", name="Saved").click()
    deleted = page.get_by_role("group", name="Deleted Server")
    expect(deleted).to_be_visible()
    deleted.get_by_label("db-slave-3-image").check()
    page.get_by_label("Server name").fill("Slave Database 3")
    shot(page, "create server saved deleted server")
    page.get_by_role("button", name="Create Server").click()
    expect(page.locator("#server-live .status")).to_have_text("ACTIVE", timeout=LONG)
    expect(page.locator("#server-live")).to_contain_text("db-slave-3-image")

    nav(page, "Tasks")
    expect(page.get_by_role("cell", name="api_image_import").first).to_be_visible()
    page.get_by_role("row").nth(1).get_by_role("link").click()
    expect(page.get_by_role("heading", name="Task")).to_be_visible()
    expect(page.locator("pre").first).to_contain_text("glance-download")
    shot(page, "task")

    # --- log out: the token is revoked, every page asks for a log-in again ---
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    page.goto(cloud.endpoints["console"] + "ORD/servers")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert dialogs == []
    assert errors == []
    context.close()
