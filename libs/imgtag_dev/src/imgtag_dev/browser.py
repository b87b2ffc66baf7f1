"""Browser-test kit: Debian's Chromium driven by Playwright (its executable path, since test
tools' own browser downloads cannot work offline), and the steps every browser test shares."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from imgtag_dev.stack import Stack
from imgtag_dev.testing import Account

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
    # Per module, not per session: Playwright's sync API keeps an event loop running in the main
    # thread while it is started, and every later test that calls asyncio.run() would fail.
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


def sign_out(page: Page) -> None:
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("sign-out").click()


def variants_requested(page: Page) -> list[str]:
    """The `variant` of every signed image URL the page asks for from now on."""
    seen: list[str] = []

    def record(request: Request) -> None:
        if "/signedContent?" in request.url:
            seen.append(request.url.split("variant=")[1].split("&")[0])

    page.on("request", record)
    return seen


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


def seed_photos(gateway_url: str, account: Account, count: int, threads: int = 8) -> list[str]:
    """Uploads `count` small distinct PNGs of varied shapes as `account` through the REST API,
    `threads` at a time (no analysis asked for), with an upload API key of the account (it
    outlives access tokens); returns the names of the photos created."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from imgtag_dev.testing import unique_png

    shapes = random.Random(7)
    sizes = [(shapes.randint(12, 40), shapes.randint(12, 40)) for _ in range(count)]
    with httpx.Client(base_url=gateway_url, timeout=60, limits=httpx.Limits(max_connections=threads)) as client:
        made = client.post(
            f"/v1/{account.name}/apiKeys",
            json={"displayName": "seeding", "scopes": ["ASSETS_UPLOAD"]},
            headers=account.headers,
        )
        assert made.status_code == 200, made.text
        key = {"x-api-key": made.json()["secret"]}

        def one(i: int) -> str | None:
            reply = client.post(
                "/v1/assets:upload",
                params={"filename": f"seed-{i:05d}.png", "skip_analysis": "true"},
                content=unique_png(*sizes[i]),
                headers={**key, "content-type": "image/png"},
            )
            return reply.json()["name"] if reply.status_code == 200 else None

        with ThreadPoolExecutor(threads) as pool:
            return [name for name in pool.map(one, range(count)) if name]


def copy_photos(stack: Stack, asset_names: list[str], total: int) -> int:
    """Grows a library to `total` photos by copying the catalog rows of `asset_names` (uploaded
    and processed already) in its database: each copy is a photo of its own (id, sha256, original
    key, an older upload time) that shares the thumbnail and preview of the photo it copies.
    Uploading thousands through the gateway takes minutes, and would leave storage with thousands
    of objects that every later test's new backup endpoint has to back-fill. Returns how many
    photos the owner has afterwards."""
    assert stack.postgres is not None, "copies are written into the embedded PostgreSQL"
    ids = ",".join(name.removeprefix("assets/") for name in asset_names)
    copies = total - len(asset_names)
    sql = f"""
        WITH originals AS (
            SELECT a, row_number() OVER (ORDER BY a.id) - 1 AS i, count(*) OVER () AS n
            FROM assets a WHERE a.id = ANY('{{{ids}}}'::uuid[])
        )
        INSERT INTO assets
        SELECT (jsonb_populate_record(o.a, jsonb_build_object(
            'id', gen_random_uuid(),
            'filename', format('copy-%s.png', g),
            'sha256', encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex'),
            'object_key', (o.a).object_key || '-copy-' || g,
            'create_time', (o.a).create_time - make_interval(secs => g),
            'update_time', (o.a).create_time - make_interval(secs => g)
        ))).*
        FROM generate_series(1, {copies}) g JOIN originals o ON o.i = g % o.n;
        SELECT count(*) FROM assets
        WHERE owner = (SELECT owner FROM assets WHERE id = ANY('{{{ids}}}'::uuid[]) LIMIT 1);
    """
    return int(stack.postgres.query(sql, "imgtag_catalog").split()[-1])


def wait_until_all_processed(gateway_url: str, account: Account, timeout_s: float = 900) -> dict:
    """Waits until none of the account's photos waits for renditions; returns the counts."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        status = httpx.get(f"{gateway_url}/v1/processingStatus", headers=account.headers, timeout=30).json()
        busy = int(status.get("processingPendingCount", 0)) + int(status.get("processingRunningCount", 0))
        if not busy or time.monotonic() > deadline:
            assert not busy, status
            return status
        time.sleep(2)
