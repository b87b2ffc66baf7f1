"""The SPA in a real browser (Debian Chromium driven by Playwright) against the real gateway:
signing in and out, registration with admin approval, the session surviving reloads and expired
access tokens, uploads, signed image URLs, the Chinese interface and the gateway's CSP."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from imgtag_dev import gateway
from imgtag_dev.testing import SKIMAGE_PHOTOS, USER_PASSWORD, Account, unique_png

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
REFRESH_PATH = "/v1/auth/session:refresh"


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


def sign_in(page: Page, account: Account) -> None:
    """Signs in through the sign-in screen and waits for the gallery."""
    page.goto("/")
    page.get_by_test_id("signin-login").fill(account.username)
    page.get_by_test_id("signin-password").fill(account.password)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(account.username)


def save_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """Keeps a screenshot as a test artifact: every one goes into IMGTAG_SCREENSHOTS when that
    names a directory; when it names a file, the gallery screenshot is written there."""
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    target = os.environ.get("IMGTAG_SCREENSHOTS")
    if not target:
        return
    if Path(target).is_dir():
        shutil.copy(shot, Path(target) / name)
    elif name == "gallery.png":
        shutil.copy(shot, target)


def requests_to(page: Page, path: str) -> list[Request]:
    """Collects the requests the page makes to `path` from now on."""
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if request.url.split("?")[0].endswith(path) else None)
    return seen


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
    page.get_by_test_id("upload-input").set_input_files(str(SKIMAGE_PHOTOS / "rocket.jpg"))
    expect(page.locator('[data-testid="upload-status"][data-state="done"]')).to_have_count(1, timeout=30_000)

    listed = httpx.get(f"{gateway_url}/v1/assets", params={"page_size": 500}, headers=account.headers).json()
    (rocket,) = listed["assets"]
    assert rocket["filename"] == "rocket.jpg"
    card = page.locator(f'[data-testid="asset-card"][data-asset-name="{rocket["name"]}"]')
    expect(card).to_be_visible()
    # The thumbnail really loaded, through its signed URL (a broken image has naturalWidth 0).
    image = card.locator("img")
    assert "/signedContent?" in image.get_attribute("src")
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") == rocket["width"] == 640
    save_screenshot(page, tmp_path, "gallery.png")

    card.click()
    detail = page.get_by_test_id("detail-view")
    expect(detail).to_be_visible()
    expect(detail.locator('[data-field="filename"]')).to_have_text("rocket.jpg")
    expect(detail.locator('[data-field="dimensions"]')).to_contain_text("640")
    # "Open original" works without any credential: the link is signed.
    original = detail.get_by_role("link", name="Open original").get_attribute("href")
    download = httpx.get(f"{gateway_url}{original}", timeout=30)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == rocket["sha256"]

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
    failed = page.locator('[data-testid="upload-status"][data-state="error"]')
    expect(failed).to_have_count(1, timeout=30_000)
    expect(failed).to_contain_text("not an image")
    expect(page.locator('[data-testid="upload-status"][data-state="done"]')).to_have_count(1, timeout=30_000)


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
            page.get_by_test_id("sign-out").click()
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
    assert page.evaluate("Object.keys(localStorage).concat(Object.keys(sessionStorage))") in ([], ["imgtag.locale"])

    # The access token stops working (as it does when it expires): the gateway refuses the
    # next call, the app refreshes once through the cookie and the call goes through.
    def spoil_token(route: Route) -> None:
        route.continue_(headers={**route.request.all_headers(), "authorization": "Bearer expired.access.token"})

    page.route("**/v1/assets:upload*", spoil_token, times=1)
    uploads = requests_to(page, "/v1/assets:upload")
    page.get_by_test_id("upload-input").set_input_files(str(SKIMAGE_PHOTOS / "coffee.png"))
    expect(page.locator('[data-testid="upload-status"][data-state="done"]')).to_have_count(1, timeout=30_000)
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
    page.get_by_test_id("sign-out").click()
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
    expect(page.get_by_test_id("sign-out")).to_have_text("退出登录")
    expect(page.get_by_test_id("empty-state")).to_contain_text("还没有图片")
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
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") == 16
    assert page.evaluate("window.__cspViolations") == []
    context.close()
