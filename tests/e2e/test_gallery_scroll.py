"""A library of 5,000 photos in the gallery, in real Chromium through the gateway: scrolling to
the very end loads every page (keyset page tokens) while the DOM holds only the tiles near the
viewport. A few dozen photos are uploaded and processed for real; the rest of the library are
copies of their catalog rows (see `copy_photos`), so the test measures the gallery rather than
the upload path, which other tests and bench/ingestion.py cover."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from imgtag_dev.browser import copy_photos, save_screenshot, seed_photos, sign_in, wait_until_all_processed
from imgtag_dev.stack import Stack
from imgtag_dev.testing import Account

pytestmark = pytest.mark.e2e

PHOTOS = 5_000
UPLOADED = 40  # of varied shapes, each copied about 125 times
# Tiles a 1400 x 900 viewport shows at once (about 6 columns of ~200 px tiles from 12-40 px
# images, so 5 or so rows), plus overscan: far below the library's size.
DOM_BOUND = 150


@pytest.mark.timeout(600)
def test_scrolling_to_the_end_of_5000_photos_keeps_the_dom_small(
    browser: Browser, stack: Stack, gateway_url: str, new_user: Callable[[], Account], tmp_path: Path
) -> None:
    account = new_user()
    started = time.monotonic()
    uploaded = seed_photos(gateway_url, account, UPLOADED)
    assert len(uploaded) == UPLOADED
    wait_until_all_processed(gateway_url, account)  # thumbnails are made after the upload answers
    assert copy_photos(stack, uploaded, PHOTOS) == PHOTOS
    print(f"\nuploaded {UPLOADED} photos and copied them to {PHOTOS} in {time.monotonic() - started:.0f} s")
    context = browser.new_context(base_url=gateway_url, locale="en-US", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    sign_in(page, account)
    expect(page.get_by_test_id("asset-card").first.locator("img")).to_be_visible(timeout=30_000)

    grid = page.get_by_test_id("asset-grid")
    most_images = most_cards = 0
    seen: set[str] = set()
    for _ in range(2_000):
        state = grid.evaluate(
            """g => {
                g.scrollTop += g.clientHeight * 0.9;
                const cards = [...g.querySelectorAll('[data-testid="asset-card"]')];
                return {
                    images: document.querySelectorAll('img').length,
                    cards: cards.length,
                    names: cards.map(c => c.dataset.assetName),
                    atEnd: g.scrollTop + g.clientHeight >= g.scrollHeight - 2 && g.dataset.complete === 'true',
                };
            }"""
        )
        most_images = max(most_images, state["images"])
        most_cards = max(most_cards, state["cards"])
        seen.update(state["names"])
        if state["atEnd"]:  # every page loaded, and scrolled to the bottom
            break
        page.wait_for_timeout(40)
    expect(page.get_by_test_id("gallery-count")).to_have_text(f"{PHOTOS} images", timeout=60_000)
    # The oldest photo, on the last page, is on screen at the bottom.
    oldest = httpx.get(
        f"{gateway_url}/v1/assets", params={"page_size": 1, "order_by": "create_time"}, headers=account.headers
    ).json()["assets"][0]
    expect(page.locator(f'[data-testid="asset-card"][data-asset-name="{oldest["name"]}"]')).to_be_in_viewport()
    save_screenshot(page, tmp_path, "gallery-scrolled-to-end.png")
    print(f"5,000 photos: at most {most_images} <img> and {most_cards} tiles in the DOM; {len(seen)} tiles passed by")
    assert most_images <= DOM_BOUND and most_cards <= DOM_BOUND
    assert len(seen) > PHOTOS * 0.9  # scrolling really went through (almost) every tile
    context.close()
