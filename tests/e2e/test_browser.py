"""The SPA in a real browser (Debian Chromium driven by Playwright) against the real gateway:
signing in and out, registration with admin approval, the session surviving reloads and expired
access tokens, uploads, signed image URLs (thumbnails in the grid, previews in the viewer, the
original only through the download link), the Chinese interface, the gateway's CSP, and the API
reference page. The whole journey through every screen is in test_web_journey.py; the 5,000-photo
scroll in test_gallery_scroll.py."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect

from imgtag_dev import gateway
from imgtag_dev.browser import REFRESH_PATH, requests_to, save_screenshot, sign_in, sign_out, variants_requested
from imgtag_dev.testing import SKIMAGE_PHOTOS, USER_PASSWORD, Account, unique_png

pytestmark = pytest.mark.e2e


def upload_through_rest(gateway_url: str, account: Account, filename: str) -> dict:
    reply = httpx.post(
        f"{gateway_url}/v1/assets:upload",
        params={"filename": filename},
        content=unique_png(),
        headers={**account.headers, "content-type": "image/png"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_upload_view_and_trash_a_photo(
    page: Page, gateway_url: str, new_user: Callable[[], Account], tmp_path: Path
) -> None:
    account = new_user()
    sign_in(page, account)
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    variants = variants_requested(page)
    page.get_by_test_id("upload-input").set_input_files(str(SKIMAGE_PHOTOS / "rocket.jpg"))
    expect(page.locator('[data-testid="upload-status"][data-state="created"]')).to_have_count(1, timeout=30_000)

    listed = httpx.get(f"{gateway_url}/v1/assets", params={"page_size": 500}, headers=account.headers).json()
    (rocket,) = listed["assets"]
    assert rocket["filename"] == "rocket.jpg"
    card = page.locator(f'[data-testid="asset-card"][data-asset-name="{rocket["name"]}"]')
    expect(card).to_be_visible()
    # The tile's height follows the stored aspect ratio before anything loads.
    box = card.bounding_box()
    assert box and abs(box["height"] / box["width"] - rocket["height"] / rocket["width"]) < 0.02
    # Once processed (the badge polls without a reload), the signed THUMBNAIL shows: never the
    # original in the grid.
    image = card.locator("img")
    expect(image).to_have_attribute("src", re.compile(r"/signedContent\?variant=THUMBNAIL&"), timeout=30_000)
    image.evaluate("img => img.decode()")
    thumbnail = httpx.get(gateway_url + image.get_attribute("src"), timeout=30)
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/webp"
    natural = image.evaluate("img => img.naturalWidth")
    assert natural == Image.open(io.BytesIO(thumbnail.content)).width < rocket["width"]
    save_screenshot(page, tmp_path, "gallery.png")

    card.click()
    detail = page.get_by_test_id("detail-view")
    expect(detail).to_be_visible()
    expect(detail.locator('[data-field="filename"]')).to_have_text("rocket.jpg")
    expect(detail.locator('[data-field="dimensions"]')).to_contain_text("640")
    expect(page.get_by_test_id("detail-image")).to_have_attribute("src", re.compile(r"variant=PREVIEW&"))
    page.get_by_test_id("detail-image").evaluate("img => img.decode()")
    # "Download original" works without any credential: the link is signed.
    original = page.get_by_test_id("download-original").get_attribute("href")
    assert "variant=ORIGINAL&" in original
    download = httpx.get(f"{gateway_url}{original}", timeout=30)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == rocket["sha256"]
    assert "ORIGINAL" not in variants and {"THUMBNAIL", "PREVIEW"} <= set(variants)
    save_screenshot(page, tmp_path, "detail.png")

    page.get_by_test_id("trash-button").click()
    expect(card).to_have_count(0)
    trashed = httpx.get(f"{gateway_url}/v1/{rocket['name']}", headers=account.headers).json()
    assert trashed["state"] == "TRASHED"


def test_a_rejected_file_shows_the_server_message_and_others_still_upload(
    page: Page, new_user: Callable[[], Account], tmp_path: Path
) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"this is not a jpeg")
    sign_in(page, new_user())
    page.get_by_test_id("upload-input").set_input_files([str(fake), str(SKIMAGE_PHOTOS / "motorcycle_left.png")])
    failed = page.locator('[data-testid="upload-status"][data-state="rejected"]')
    expect(failed).to_have_count(1, timeout=30_000)
    expect(failed.get_by_test_id("upload-reason")).to_have_text("This file is not an image ImgTag can read.")
    expect(page.locator('[data-testid="upload-status"][data-state="created"]')).to_have_count(1, timeout=30_000)
    # The same photo again is a duplicate, with a link to the one already there.
    page.get_by_test_id("upload-input").set_input_files(str(SKIMAGE_PHOTOS / "motorcycle_left.png"))
    duplicate = page.locator('[data-testid="upload-status"][data-state="duplicate"]')
    expect(duplicate).to_have_count(1, timeout=30_000)
    duplicate.get_by_test_id("upload-existing").click()
    expect(page.get_by_test_id("detail-view").locator('[data-field="filename"]')).to_have_text("motorcycle_left.png")


def test_a_new_account_waits_for_approval_then_signs_in(
    page: Page, gateway_url: str, admin: Account, tmp_path: Path
) -> None:
    username = "w" + secrets.token_hex(5)
    page.goto("/")
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    save_screenshot(page, tmp_path, "sign-in.png")
    page.get_by_test_id("show-register").click()

    # Rules are explained at the field they concern: a short password before anything is
    # sent, a taken username by the server.
    page.get_by_test_id("register-username").fill("admin")
    page.get_by_test_id("register-email").fill(f"{username}@example.com")
    page.get_by_test_id("register-password").fill("short")
    page.get_by_test_id("register-confirm").fill("short")
    page.get_by_test_id("register-submit").click()
    expect(page.locator("#register-password-error")).to_have_text("The password needs at least 10 characters.")
    expect(page.get_by_test_id("register-password")).to_have_attribute("aria-invalid", "true")
    page.get_by_test_id("register-password").fill(USER_PASSWORD)
    page.get_by_test_id("register-confirm").fill(USER_PASSWORD)
    page.get_by_test_id("register-submit").click()
    expect(page.locator("#register-username-error")).to_have_text("This username is already taken.")
    expect(page.get_by_test_id("register-username")).to_be_focused()

    page.get_by_test_id("register-username").fill(username)
    with page.expect_response(lambda r: r.url.endswith("/v1/users:register") and r.ok) as registered:
        page.get_by_test_id("register-submit").click()
    user = registered.value.json()
    assert user["state"] == "PENDING"
    expect(page.get_by_test_id("auth-notice")).to_contain_text("waiting for an administrator")
    expect(page.get_by_test_id("signin-login")).to_have_value(username)

    # Signing in before the approval explains the wait instead of failing.
    page.get_by_test_id("signin-password").fill(USER_PASSWORD)
    page.get_by_test_id("signin-submit").click()
    pending = page.get_by_test_id("signin-error")
    expect(pending).to_have_attribute("data-reason", "USER_PENDING_APPROVAL")
    expect(pending).to_contain_text("waiting for an administrator")

    approved = httpx.post(f"{gateway_url}/v1/{user['name']}:approve", json={}, headers=admin.headers, timeout=30)
    assert approved.status_code == 200, approved.text

    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)
    expect(page.get_by_test_id("empty-state")).to_be_visible()


@contextmanager
def registration_mode(gateway_url: str, admin: Account, mode: str) -> Iterator[None]:
    """The instance's registration mode set to `mode` for a while (the stack is shared: the
    mode in force before is put back)."""

    def set_mode(value: str) -> None:
        reply = httpx.patch(
            f"{gateway_url}/v1/registrationSettings",
            params={"update_mask": "mode"},
            json={"mode": value},
            headers=admin.headers,
            timeout=30,
        )
        assert reply.status_code == 200, reply.text

    before = httpx.get(f"{gateway_url}/v1/registrationSettings", timeout=30).json()["mode"]
    set_mode(mode)
    try:
        yield
    finally:
        set_mode(before)


def test_registration_follows_the_instance_settings(page: Page, gateway_url: str, admin: Account) -> None:
    username = "a" + secrets.token_hex(5)
    with registration_mode(gateway_url, admin, "AUTO_APPROVE"):
        page.goto("/")
        page.get_by_test_id("show-register").click()
        page.get_by_test_id("register-username").fill(username)
        page.get_by_test_id("register-email").fill(f"{username}@example.com")
        page.get_by_test_id("register-display-name").fill("Åsa Ölund")
        page.get_by_test_id("register-password").fill(USER_PASSWORD)
        page.get_by_test_id("register-confirm").fill(USER_PASSWORD)
        page.get_by_test_id("register-submit").click()
        # Approved at once: straight into the (empty) gallery, signed in.
        expect(page.get_by_test_id("current-user")).to_contain_text("Åsa Ölund")
        expect(page.get_by_test_id("empty-state")).to_be_visible()

    with registration_mode(gateway_url, admin, "CLOSED"):
        with page.expect_response(lambda r: r.url.endswith("/v1/registrationSettings")):
            sign_out(page)
        expect(page.get_by_test_id("signin-form")).to_be_visible()
        expect(page.get_by_test_id("show-register")).to_have_count(0)
        with page.expect_response(lambda r: r.url.endswith("/v1/registrationSettings")) as settings:
            page.reload()
        assert settings.value.json()["mode"] == "CLOSED"
        expect(page.get_by_test_id("signin-form")).to_be_visible()
        expect(page.get_by_test_id("show-register")).to_have_count(0)


def test_a_reload_and_an_expired_access_token_keep_the_user_signed_in(
    page: Page, gateway_url: str, new_user: Callable[[], Account]
) -> None:
    account = new_user()
    asset = upload_through_rest(gateway_url, account, "before reload.png")
    sign_in(page, account)
    card = page.locator(f'[data-testid="asset-card"][data-asset-name="{asset["name"]}"]')
    expect(card).to_be_visible()

    # A reload forgets the access token (it only ever lives in memory); the HttpOnly refresh
    # cookie brings the session back, without the sign-in form ever showing.
    page.add_init_script(
        "window.__signInFormShown = false;"
        "new MutationObserver(() => {"
        "  if (document.querySelector('[data-testid=\"signin-form\"]')) window.__signInFormShown = true;"
        "}).observe(document, { childList: true, subtree: true });"
    )
    refreshes = requests_to(page, REFRESH_PATH)
    page.reload()
    expect(card).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_contain_text(account.username)
    assert page.evaluate("window.__signInFormShown") is False
    assert len(refreshes) == 1
    # Web storage holds only preferences (language, theme) and scroll positions, never a token.
    stored = page.evaluate("Object.entries(localStorage).concat(Object.entries(sessionStorage))")
    assert {key for key, _ in stored} <= {"imgtag.locale", "imgtag.theme", "vue-router:scroll"}
    assert not any("eyJ" in value for _, value in stored)

    # The access token stops working (as it does when it expires): the gateway refuses the
    # next call, the app refreshes once through the cookie and the call goes through.
    def spoil_token(route: Route) -> None:
        route.continue_(headers={**route.request.all_headers(), "authorization": "Bearer expired.access.token"})

    page.route("**/v1/assets:upload*", spoil_token, times=1)
    uploads = requests_to(page, "/v1/assets:upload")
    page.get_by_test_id("upload-input").set_input_files(str(SKIMAGE_PHOTOS / "coffee.png"))
    expect(page.locator('[data-testid="upload-status"][data-state="created"]')).to_have_count(1, timeout=30_000)
    assert [request.response().status for request in uploads] == [401, 200]
    assert len(refreshes) == 2
    listed = httpx.get(f"{gateway_url}/v1/assets", params={"page_size": 500}, headers=account.headers).json()
    assert sorted(a["filename"] for a in listed["assets"]) == ["before reload.png", "coffee.png"]
    expect(page.get_by_test_id("signin-form")).to_have_count(0)


def test_signing_out_returns_to_sign_in_and_a_reload_stays_signed_out(
    page: Page, new_user: Callable[[], Account]
) -> None:
    account = new_user()
    sign_in(page, account)
    sign_out(page)
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_have_count(0)

    refreshes = requests_to(page, REFRESH_PATH)
    page.reload()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_have_count(0)
    assert [request.response().status for request in refreshes] == [401]  # the cookie is gone


def test_chinese_interface(browser: Browser, gateway_url: str, new_user: Callable[[], Account]) -> None:
    account = new_user()
    context = browser.new_context(base_url=gateway_url, locale="zh-CN")
    page = context.new_page()
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=10_000)
    form = page.get_by_test_id("signin-form")
    expect(form.get_by_role("heading")).to_have_text("登录 ImgTag")
    expect(form.get_by_label("用户名或邮箱")).to_be_visible()
    expect(form.get_by_label("密码")).to_be_visible()

    # The server's reason, in Chinese, and again in English after switching.
    page.get_by_test_id("signin-login").fill(account.username)
    page.get_by_test_id("signin-password").fill("not the password")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("signin-error")).to_have_text("用户名或密码错误。")
    expect(page.get_by_test_id("lang-toggle")).to_have_text("English")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("lang-toggle")).to_have_text("中文")
    expect(page.get_by_test_id("signin-error")).to_have_text("Wrong username or password.")
    page.get_by_test_id("lang-toggle").click()

    page.get_by_test_id("signin-password").fill(account.password)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("还没有图片")
    page.get_by_test_id("user-menu").click()
    expect(page.get_by_test_id("sign-out")).to_have_text("退出登录")
    context.close()


def test_the_app_runs_under_the_gateway_content_security_policy(
    browser: Browser, gateway_url: str, new_user: Callable[[], Account]
) -> None:
    account = new_user()
    asset = upload_through_rest(gateway_url, account, "under csp.png")
    # The gateway itself sends the policy with every response, the SPA's page included.
    assert httpx.get(gateway_url + "/").headers["content-security-policy"] == gateway.CONTENT_SECURITY_POLICY
    context = browser.new_context(base_url=gateway_url, locale="en-US")
    page = context.new_page()
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective));"
    )
    sign_in(page, account)
    image = page.locator(f'[data-testid="asset-card"][data-asset-name="{asset["name"]}"] img')
    expect(image).to_have_attribute("src", re.compile("variant=THUMBNAIL"), timeout=30_000)
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") == 16
    assert page.evaluate("window.__cspViolations") == []

    # The API reference page renders the OpenAPI document the gateway serves, under the same CSP.
    document = httpx.get(gateway_url + "/openapi.json", timeout=30)
    assert document.status_code == 200 and document.json()["info"]["title"] == "ImgTag API"
    assert document.headers["content-security-policy"] == gateway.CONTENT_SECURITY_POLICY
    page.goto("/api/")
    expect(page.locator("rapi-doc")).to_have_count(1)
    expect(page.get_by_text("ImgTag API").first).to_be_visible(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('rapi-doc')?.shadowRoot?.textContent.includes('/v1/assets:upload')"
    )
    assert page.evaluate("window.__cspViolations") == []
    context.close()


def test_uploads_can_be_cancelled_and_folders_keep_their_paths(
    page: Page, gateway_url: str, new_user: Callable[[], Account], tmp_path: Path
) -> None:
    account = new_user()
    sign_in(page, account)
    held: list[Route] = []
    page.route("**/v1/assets:upload*", lambda route: held.append(route))  # never answered
    page.get_by_test_id("upload-input").set_input_files(
        [str(SKIMAGE_PHOTOS / n) for n in ("coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png")]
    )
    expect(page.locator('[data-testid="upload-status"][data-state="uploading"]')).to_have_count(3)
    expect(page.locator('[data-testid="upload-status"][data-state="queued"]')).to_have_count(1)
    page.get_by_test_id("upload-cancel").click()
    expect(page.locator('[data-testid="upload-status"][data-state="cancelled"]')).to_have_count(4)
    page.unroute("**/v1/assets:upload*")
    listed = httpx.get(f"{gateway_url}/v1/assets", headers=account.headers, timeout=30).json()
    assert listed["assets"] == []
    page.get_by_test_id("upload-clear").click()

    folder = tmp_path / "trip"
    (folder / "day 1").mkdir(parents=True)
    (folder / "day 1" / "a.png").write_bytes(unique_png())
    (folder / "b.png").write_bytes(unique_png())
    (folder / "notes.txt").write_text("not a photo")
    page.get_by_test_id("upload-folder-input").set_input_files(str(folder))
    expect(page.locator('[data-testid="upload-status"][data-state="created"]')).to_have_count(2, timeout=30_000)
    expect(page.locator('[data-testid="upload-status"][data-file="trip/day 1/a.png"]')).to_have_attribute(
        "data-state", "created"
    )
    rejected = page.locator('[data-testid="upload-status"][data-file="trip/notes.txt"]')
    expect(rejected).to_have_attribute("data-state", "rejected")
    expect(rejected.get_by_test_id("upload-reason")).to_have_text("Not an image file")
