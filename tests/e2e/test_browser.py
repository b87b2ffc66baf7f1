"""The SPA in a real browser (Debian Chromium driven by Playwright) against the real gateway."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from imgtag_dev.testing import SKIMAGE_PHOTOS

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, gateway_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=gateway_url, locale="en-US")
    page = context.new_page()
    yield page
    context.close()


def test_upload_view_and_trash_a_photo(page: Page, gateway_url: str, tmp_path: Path) -> None:
    page.goto("/")
    page.get_by_test_id("upload-input").set_input_files(str(SKIMAGE_PHOTOS / "rocket.jpg"))
    expect(page.locator('[data-testid="upload-status"][data-state="done"]')).to_have_count(1, timeout=30_000)

    listed = httpx.get(f"{gateway_url}/v1/assets", params={"page_size": 500}).json()["assets"]
    rocket = next(a for a in listed if a["filename"] == "rocket.jpg")
    card = page.locator(f'[data-testid="asset-card"][data-asset-name="{rocket["name"]}"]')
    expect(card).to_be_visible()
    # The thumbnail really loaded from the gateway (a broken image has naturalWidth 0).
    card.locator("img").evaluate("img => img.decode()")
    assert card.locator("img").evaluate("img => img.naturalWidth") == rocket["width"] == 640

    page.screenshot(path=str(tmp_path / "grid.png"))
    if os.environ.get("IMGTAG_SCREENSHOTS"):
        shutil.copy(tmp_path / "grid.png", os.environ["IMGTAG_SCREENSHOTS"])

    card.click()
    detail = page.get_by_test_id("detail-view")
    expect(detail).to_be_visible()
    expect(detail.locator('[data-field="filename"]')).to_have_text("rocket.jpg")
    expect(detail.locator('[data-field="dimensions"]')).to_contain_text("640")
    page.get_by_test_id("trash-button").click()
    expect(card).to_have_count(0)
    trashed = httpx.get(f"{gateway_url}/v1/{rocket['name']}").json()
    assert trashed["state"] == "TRASHED"


def test_a_rejected_file_shows_the_server_message_and_others_still_upload(page: Page, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"this is not a jpeg")
    page.goto("/")
    page.get_by_test_id("upload-input").set_input_files([str(fake), str(SKIMAGE_PHOTOS / "motorcycle_left.png")])
    failed = page.locator('[data-testid="upload-status"][data-state="error"]')
    expect(failed).to_have_count(1, timeout=30_000)
    expect(failed).to_contain_text("not an image")
    expect(page.locator('[data-testid="upload-status"][data-state="done"]')).to_have_count(1, timeout=30_000)


def test_chinese_interface(browser: Browser, gateway_url: str) -> None:
    context = browser.new_context(base_url=gateway_url, locale="zh-CN")
    page = context.new_page()
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=10_000)
    expect(page.get_by_test_id("lang-toggle")).to_have_text("English")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("lang-toggle")).to_have_text("中文")
    context.close()
