"""The web app end to end in real Chromium against the real stack, screen by screen, as a person
uses it: register -> an administrator approves -> sign in -> upload photos and a ZIP -> see them
processed -> review AI tags (confirm one, reject one) -> search in Chinese and in English ->
nested collections with auto tags -> trash and restore -> an API key created and revoked ->
change password -> dark mode and the language switch. Plus multi-select with the batch bar and
near-duplicate review. Screenshots of the main screens are kept (IMGTAG_SCREENSHOTS).

The stack has no vision model here, so analysis stays pending; AI suggestions and near-duplicate
links are recorded in the catalog database as the analysis stage records them (as in
test_organizing.py), and everything the person does with them goes through the app."""

from __future__ import annotations

import io
import re
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from imgtag_dev.browser import save_screenshot, sign_in, sign_out
from imgtag_dev.testing import ADMIN_PASSWORD, SKIMAGE_PHOTOS, USER_PASSWORD, Account, login, unique_png, upload
from imgtag_dev.vision_providers import API_KEY as VISION_API_KEY

pytestmark = pytest.mark.e2e

PHOTOS = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"]


def card(page: Page, asset: dict):
    return page.locator(f'[data-testid="asset-card"][data-asset-name="{asset["name"]}"]')


def by_filename(gateway_url: str, account: Account) -> dict[str, dict]:
    listed = httpx.get(f"{gateway_url}/v1/assets", params={"page_size": 500}, headers=account.headers, timeout=30)
    return {a["filename"]: a for a in listed.json()["assets"]}


def tags_of(gateway_url: str, account: Account, asset: dict) -> dict[str, tuple[str, str]]:
    got = httpx.get(f"{gateway_url}/v1/{asset['name']}", headers=account.headers, timeout=30).json()
    # The models' own open suggestions (cat, animal, colours...) are left out: what a person did is compared.
    tags = {t["displayName"]: (t["source"], t["state"]) for t in got.get("tags", [])}
    return {name: how for name, how in tags.items() if how != ("AI", "SUGGESTED")}


def suggest(stack, asset: dict, tag: dict, confidence: float) -> None:
    """An AI suggestion as the analysis stage records it."""
    stack.postgres.query(
        "INSERT INTO asset_tags (asset_id, tag_id, source, state, confidence, model, create_time) VALUES"
        f" ('{asset['name'][7:]}', '{tag['name'][5:]}', 'ai', 'suggested', {confidence}, 'models/test', now())",
        "imgtag_catalog",
    )


def a_zip(tmp_path: Path) -> Path:
    path = tmp_path / "holiday.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("beach/one.png", unique_png(40, 30))
        archive.writestr("beach/two.png", unique_png(30, 40))
    return path


def test_a_new_user_goes_through_every_screen(
    browser: Browser, gateway_url: str, stack, vision_stand_in, tmp_path: Path
) -> None:
    username = "j" + secrets.token_hex(5)
    visitor = browser.new_context(base_url=gateway_url, locale="en-US", viewport={"width": 1400, "height": 900})
    page = visitor.new_page()

    # ---- register: the account waits for an administrator
    page.goto("/")
    page.get_by_test_id("show-register").click()
    page.get_by_test_id("register-username").fill(username)
    page.get_by_test_id("register-email").fill(f"{username}@example.com")
    page.get_by_test_id("register-password").fill(USER_PASSWORD)
    page.get_by_test_id("register-confirm").fill(USER_PASSWORD)
    page.get_by_test_id("register-submit").click()
    expect(page.get_by_test_id("auth-notice")).to_contain_text("waiting for an administrator")

    # ---- an administrator approves it on the users screen
    office = browser.new_context(base_url=gateway_url, locale="en-US", viewport={"width": 1400, "height": 900})
    admin_page = office.new_page()
    admin = login(gateway_url, "admin", ADMIN_PASSWORD)
    sign_in(admin_page, admin)
    admin_page.get_by_test_id("user-menu").click()
    admin_page.get_by_test_id("nav-users").click()
    pending = admin_page.locator(f'[data-testid="pending-user"][data-username="{username}"]')
    expect(pending).to_be_visible()
    save_screenshot(admin_page, tmp_path, "users.png")
    pending.get_by_test_id("approve-user").click()
    expect(admin_page.locator(f'[data-testid="user-row"][data-username="{username}"]')).to_contain_text("Active")
    # The server screen: the storage endpoints (the embedded S3 one, default for uploads) and
    # the inference service's models.
    admin_page.get_by_test_id("user-menu").click()
    admin_page.get_by_test_id("nav-system").click()
    expect(admin_page.get_by_test_id("endpoint-row").first).to_contain_text("default for uploads")
    expect(admin_page.get_by_test_id("models")).to_contain_text(re.compile("efficientnet", re.IGNORECASE))
    expect(admin_page.get_by_test_id("endpoint-copies").first).to_contain_text("verified")
    # A captioning provider (the OpenAI-compatible stand-in), added switched off, tried on the
    # built-in picture, then deleted again so no other test's photos get captions from it.
    admin_page.get_by_text("Add a provider").click()
    admin_page.get_by_test_id("vision-id").fill("journey-captions")
    admin_page.get_by_test_id("vision-endpoint").fill(vision_stand_in.url + "/v1")
    admin_page.get_by_test_id("vision-model").fill("describe")
    admin_page.get_by_test_id("vision-api-key").fill(VISION_API_KEY)
    admin_page.get_by_text("Use it for new photos").click()
    admin_page.get_by_test_id("vision-create").click()
    provider = admin_page.locator('[data-testid="vision-provider-row"][data-name="visionProviders/journey-captions"]')
    expect(provider.get_by_test_id("vision-provider-state")).to_have_text("Off")
    expect(provider).to_contain_text("API key stored")
    provider.get_by_test_id("vision-provider-test").click()
    expect(admin_page.get_by_test_id("vision-test-result")).to_contain_text("An orange cat resting on a cushion")
    save_screenshot(admin_page, tmp_path, "system.png")
    provider.get_by_test_id("vision-provider-delete").click()
    expect(provider).to_have_count(0)
    office.close()

    # ---- sign in
    page.get_by_test_id("signin-password").fill(USER_PASSWORD)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    account = login(gateway_url, username, USER_PASSWORD)

    # ---- upload several photos and a ZIP, with per-file results
    page.get_by_test_id("upload-input").set_input_files(
        [str(SKIMAGE_PHOTOS / n) for n in PHOTOS] + [str(a_zip(tmp_path))]
    )
    statuses = page.get_by_test_id("upload-status")
    expect(statuses).to_have_count(5)
    expect(page.locator('[data-testid="upload-status"][data-state="created"]')).to_have_count(4, timeout=60_000)
    archive = page.locator('[data-testid="upload-status"][data-file="holiday.zip"]')
    expect(archive).to_have_attribute("data-state", "created", timeout=60_000)
    expect(archive.get_by_test_id("zip-summary")).to_contain_text("2 added", timeout=60_000)
    expect(page.get_by_test_id("upload-total-progress")).to_have_attribute("aria-valuenow", "100")
    save_screenshot(page, tmp_path, "upload.png")
    page.get_by_test_id("upload-clear").click()

    # ---- processed: every photo's thumbnail shows, without a reload
    photos = by_filename(gateway_url, account)
    assert set(PHOTOS) <= set(photos)
    for name in PHOTOS:
        expect(card(page, photos[name]).locator("img")).to_have_attribute(
            "src", re.compile("variant=THUMBNAIL"), timeout=60_000
        )
    expect(page.locator('[data-testid="processing-badge"]:has-text("Processing")')).to_have_count(0, timeout=60_000)
    save_screenshot(page, tmp_path, "gallery.png")

    # ---- AI suggestions: confirm one (solid), reject the other
    headers = account.headers
    cat = httpx.post(
        f"{gateway_url}/v1/tags",
        json={
            "displayName": "cat" + username[-4:],
            "displayNames": {"en": "cat" + username[-4:], "zh": "猫咪" + username[-4:]},
        },
        headers=headers,
        timeout=30,
    ).json()
    dog = httpx.post(
        f"{gateway_url}/v1/tags", json={"displayName": "dog" + username[-4:]}, headers=headers, timeout=30
    ).json()
    sofa = httpx.post(
        f"{gateway_url}/v1/tags", json={"displayName": "sofa" + username[-4:]}, headers=headers, timeout=30
    ).json()
    chelsea = photos["chelsea.png"]
    suggest(stack, chelsea, cat, 0.92)
    suggest(stack, chelsea, dog, 0.31)
    suggest(stack, chelsea, sofa, 0.55)
    card(page, chelsea).click()
    detail = page.get_by_test_id("detail-view")
    suggestions = detail.get_by_test_id("suggested-tag")
    # the three above, beside what the embedded models suggested themselves
    for tag in (cat, dog, sofa):
        expect(detail.locator(f'[data-testid="suggested-tag"][data-tag="{tag["name"]}"]')).to_have_count(1)
    expect(detail.locator(f'[data-testid="suggested-tag"][data-tag="{cat["name"]}"]')).to_contain_text("92% sure")
    assert "dashed" in suggestions.first.evaluate("e => getComputedStyle(e).borderStyle")
    expect(detail.get_by_test_id("exif-panel").locator('[data-field="dimensions"]')).to_have_text("451 \u00d7 300")
    save_screenshot(page, tmp_path, "detail.png")
    detail.locator(f'[data-testid="suggested-tag"][data-tag="{cat["name"]}"]').get_by_test_id("confirm-tag").click()
    confirmed = detail.locator(f'[data-testid="confirmed-tag"][data-tag="{cat["name"]}"]')
    expect(confirmed).to_be_visible()
    assert "solid" in confirmed.evaluate("e => getComputedStyle(e).borderStyle")
    detail.locator(f'[data-testid="suggested-tag"][data-tag="{dog["name"]}"]').get_by_test_id("reject-tag").click()
    expect(detail.locator(f'[data-testid="suggested-tag"][data-tag="{dog["name"]}"]')).to_have_count(0)
    # A suggestion dragged onto the tags is confirmed too.
    detail.locator(f'[data-testid="suggested-tag"][data-tag="{sofa["name"]}"]').drag_to(
        detail.get_by_test_id("confirmed-tags")
    )
    expect(detail.locator(f'[data-testid="confirmed-tag"][data-tag="{sofa["name"]}"]')).to_be_visible()
    expect(detail.locator(f'[data-testid="suggested-tag"][data-tag="{sofa["name"]}"]')).to_have_count(0)
    # A tag added by hand, picked from the suggestions as it is typed.
    detail.get_by_test_id("add-tag-input").fill("cat" + username[-4:][:2])
    expect(detail.get_by_test_id("tag-suggestion").first).to_contain_text("cat" + username[-4:])
    detail.get_by_test_id("add-tag-input").fill("indoors")
    detail.get_by_test_id("add-tag-input").press("Enter")
    expect(detail.locator('[data-testid="confirmed-tag"]:has-text("indoors")')).to_be_visible()
    assert tags_of(gateway_url, account, chelsea) == {
        cat["displayName"]: ("MANUAL", "CONFIRMED"),  # a confirmed suggestion is a person's tag now
        sofa["displayName"]: ("MANUAL", "CONFIRMED"),
        "indoors": ("MANUAL", "CONFIRMED"),
    }
    # "Search with this image": the gallery of photos like it (none without an image model here).
    page.get_by_test_id("search-with-image").click()
    expect(page.get_by_test_id("gallery-title")).to_have_text("Similar to \u201cchelsea.png\u201d")
    expect(page).to_have_url(re.compile(f"similar={chelsea['name'][7:]}"))
    page.go_back()
    expect(detail).to_be_visible()
    # Keyboard: the next photo (once the gallery behind is back), then close.
    expect(detail.get_by_test_id("detail-next").or_(detail.get_by_test_id("detail-prev")).first).to_be_visible()
    page.keyboard.press("ArrowRight" if detail.get_by_test_id("detail-next").count() else "ArrowLeft")
    expect(detail).not_to_have_attribute("data-asset-name", chelsea["name"])
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)

    # ---- search in Chinese and in English, results in the same gallery
    for query in ("猫咪" + username[-4:], "cat" + username[-4:]):
        page.get_by_test_id("search-input").fill(query)
        page.get_by_test_id("search-input").press("Enter")
        expect(page.get_by_test_id("gallery-title")).to_have_text("Search results")
        expect(page.get_by_test_id("asset-card")).to_have_count(1)
        expect(card(page, chelsea)).to_be_visible()
    save_screenshot(page, tmp_path, "search.png")
    page.get_by_test_id("nav-library").click()

    # ---- nested collections with auto tags; drag one collection into another
    page.get_by_test_id("new-collection").click()
    dialog = page.get_by_test_id("collection-dialog")
    dialog.get_by_test_id("collection-name").fill("Trips")
    dialog.get_by_test_id("auto-tag-input").fill("travel")
    dialog.get_by_test_id("auto-tag-input").press("Enter")
    dialog.get_by_test_id("collection-save").click()
    trips = page.locator('[data-testid="collection-node"]:has([data-testid="collection-label"]:text-is("Trips"))')
    expect(trips).to_be_visible()
    trips.hover()
    trips.get_by_test_id("collection-add-child").click()
    dialog = page.get_by_test_id("collection-dialog")
    dialog.get_by_test_id("collection-name").fill("北京 2024")
    dialog.get_by_test_id("auto-tag-input").fill("北京")
    dialog.get_by_test_id("auto-tag-input").press("Enter")
    dialog.get_by_test_id("collection-save").click()
    beijing = page.locator('[data-testid="collection-node"]:has([data-testid="collection-label"]:text-is("北京 2024"))')
    expect(beijing).to_be_visible()
    for name in ("coffee.png", "rocket.jpg"):
        card(page, photos[name]).hover()
        card(page, photos[name]).get_by_test_id("select-toggle").click()
    expect(page.get_by_test_id("selection-count")).to_have_text("2 selected")
    page.get_by_test_id("batch-collection").click()
    page.get_by_test_id("batch-collection-select").select_option(label="\u00a0\u00a0北京 2024")
    expect(page.get_by_test_id("toast").last).to_contain_text("2 succeeded")
    for name in ("coffee.png", "rocket.jpg"):
        assert {k: v for k, v in tags_of(gateway_url, account, photos[name]).items()} == {
            "travel": ("COLLECTION", "CONFIRMED"),
            "北京": ("COLLECTION", "CONFIRMED"),
        }
    page.get_by_test_id("new-collection").click()
    page.get_by_test_id("collection-dialog").get_by_test_id("collection-name").fill("Archive")
    page.get_by_test_id("collection-dialog").get_by_test_id("collection-save").click()
    archive_node = page.locator(
        '[data-testid="collection-node"]:has([data-testid="collection-label"]:text-is("Archive"))'
    )
    archive_node.drag_to(trips)
    expect(page.locator('[data-testid="collection-node"]')).to_have_count(3)
    expect(archive_node).to_have_attribute("style", re.compile("padding-left: 12px"))
    tree = httpx.get(f"{gateway_url}/v1/collections:tree", headers=headers, timeout=30).json()["nodes"]
    assert [n["collection"]["displayName"] for n in tree] == ["Trips"]
    assert sorted(c["collection"]["displayName"] for c in tree[0]["children"]) == ["Archive", "北京 2024"]
    beijing.locator('[data-testid="collection-label"]').click()
    expect(page.get_by_test_id("asset-card")).to_have_count(2)
    trips.locator('[data-testid="collection-label"]').click()
    expect(page.get_by_test_id("asset-card")).to_have_count(2)  # sub-collections included
    save_screenshot(page, tmp_path, "collections.png")
    page.get_by_test_id("nav-library").click()

    # ---- trash and restore
    astronaut = photos["astronaut.png"]
    card(page, astronaut).hover()
    card(page, astronaut).get_by_test_id("select-toggle").click()
    page.get_by_test_id("batch-trash").click()
    expect(card(page, astronaut)).to_have_count(0)
    page.get_by_test_id("nav-trash").click()
    expect(card(page, astronaut)).to_be_visible()
    save_screenshot(page, tmp_path, "trash.png")
    card(page, astronaut).hover()
    card(page, astronaut).get_by_test_id("select-toggle").click()
    page.get_by_test_id("batch-restore").click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.get_by_test_id("nav-library").click()
    expect(card(page, astronaut)).to_be_visible()

    # ---- an API key: created with scopes, shown once, works, revoked
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("nav-api-keys").click()
    page.get_by_test_id("key-name").fill("photo frame")
    page.get_by_test_id("scope-SEARCH").check()
    page.get_by_test_id("create-key").click()
    secret = page.get_by_test_id("key-secret").inner_text()
    assert secret.startswith("itk_")
    save_screenshot(page, tmp_path, "api-keys.png")
    with_key = httpx.get(f"{gateway_url}/v1/assets", headers={"x-api-key": secret}, timeout=30)
    assert with_key.status_code == 200 and len(with_key.json()["assets"]) == len(photos)
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("revoke-key").click()
    expect(page.locator('[data-testid="api-key-row"]').first).to_have_attribute("data-state", "REVOKED")
    assert httpx.get(f"{gateway_url}/v1/assets", headers={"x-api-key": secret}, timeout=30).status_code in (401, 403)

    # ---- change password, sign out, sign in with the new one
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("nav-account").click()
    page.get_by_test_id("current-password").fill(USER_PASSWORD)
    page.get_by_test_id("new-password").fill(USER_PASSWORD + " again")
    page.get_by_test_id("confirm-new-password").fill(USER_PASSWORD + " again")
    page.get_by_test_id("change-password-submit").click()
    expect(page.get_by_test_id("password-changed")).to_be_visible()
    sign_out(page)
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    sign_in(
        page, Account(name="", username=username, password=USER_PASSWORD + " again", access_token="", refresh_token="")
    )

    # ---- dark mode (follows the system, toggled, remembered) and the language switch
    toggle = page.get_by_test_id("theme-toggle")
    expect(toggle).to_have_attribute("data-theme", "auto")
    toggle.click()
    expect(toggle).to_have_attribute("data-theme", "dark")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    page.get_by_test_id("lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_test_id("gallery-title")).to_have_text("全部照片")
    page.reload()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    expect(page.get_by_test_id("gallery-title")).to_have_text("全部照片")
    expect(trips).to_be_visible()
    expect(card(page, chelsea).locator("img")).to_be_visible()
    save_screenshot(page, tmp_path, "gallery-dark-zh.png")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("gallery-title")).to_have_text("All photos")
    visitor.close()


def test_multi_select_with_click_shift_click_box_and_everything_that_matches(
    browser: Browser, gateway_url: str, new_user: Callable[[], Account], tmp_path: Path
) -> None:
    account = new_user()
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        for i in range(8):
            assert upload(client, account, unique_png(40 + i * 7, 30), filename=f"p{i}.png").status_code == 200
    context = browser.new_context(base_url=gateway_url, locale="en-US", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    sign_in(page, account)
    cards = page.get_by_test_id("asset-card")
    expect(cards).to_have_count(8)

    cards.nth(0).hover()
    cards.nth(0).get_by_test_id("select-toggle").click()
    cards.nth(3).click(modifiers=["Shift"])
    expect(page.get_by_test_id("selection-count")).to_have_text("4 selected")
    expect(page.locator('[data-testid="asset-card"][data-selected="true"]')).to_have_count(4)
    page.get_by_test_id("clear-selection").click()

    # A box dragged on the empty space below the tiles, up over all of them.
    grid = page.get_by_test_id("asset-grid").bounding_box()
    assert grid
    page.mouse.move(grid["x"] + grid["width"] - 5, grid["y"] + grid["height"] - 5)
    page.mouse.down()
    page.mouse.move(grid["x"] + 5, grid["y"] + 5, steps=8)
    expect(page.get_by_test_id("selection-box")).to_be_visible()
    page.mouse.up()
    expect(page.get_by_test_id("selection-count")).to_have_text("8 selected")
    save_screenshot(page, tmp_path, "selection.png")

    # Select all, then tag them in one batch.
    page.get_by_test_id("clear-selection").click()
    page.get_by_test_id("select-all").click()
    expect(page.get_by_test_id("selection-count")).to_have_text("8 selected")
    page.get_by_test_id("batch-tag").click()
    page.get_by_test_id("batch-tag-input").fill("batched")
    page.get_by_test_id("batch-tag-input").press("Enter")
    expect(page.get_by_test_id("toast").last).to_contain_text("8 succeeded")
    listed = httpx.get(f"{gateway_url}/v1/assets", params={"filter": 'tag = "batched"'}, headers=account.headers)
    assert len(listed.json()["assets"]) == 8
    context.close()


def test_near_duplicates_are_reviewed_side_by_side(
    browser: Browser, gateway_url: str, stack, new_user: Callable[[], Account], tmp_path: Path
) -> None:
    account = new_user()
    small = io.BytesIO()
    Image.open(SKIMAGE_PHOTOS / "chelsea.png").convert("RGB").resize((300, 200)).save(small, "JPEG", quality=70)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        big = upload(client, account, (SKIMAGE_PHOTOS / "chelsea.png").read_bytes(), filename="chelsea.png").json()
        copy = upload(client, account, small.getvalue(), filename="chelsea-small.jpg").json()
    # The link the analysis stage records for a close perceptual hash.
    a, b = sorted([big["name"][7:], copy["name"][7:]])
    stack.postgres.query(
        "INSERT INTO duplicate_links (asset_a, asset_b, owner, hash_distance, similarity, state, create_time)"
        f" VALUES ('{a}', '{b}', '{account.name}', 2, 0.0, 'open', now())",
        "imgtag_catalog",
    )
    context = browser.new_context(base_url=gateway_url, locale="en-US", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    sign_in(page, account)
    page.get_by_test_id("nav-duplicates").click()
    group = page.get_by_test_id("duplicate-group")
    expect(group).to_have_count(1)
    expect(group.locator("img")).to_have_count(2)
    save_screenshot(page, tmp_path, "duplicates.png")
    group.locator('figure:has-text("chelsea.png")').get_by_test_id("keep-this").click()
    expect(page.get_by_test_id("no-duplicates")).to_be_visible()
    state = httpx.get(f"{gateway_url}/v1/{copy['name']}", headers=account.headers, timeout=30).json()["state"]
    assert state == "TRASHED"
    context.close()
