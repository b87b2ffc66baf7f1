"""The web app's budgets, measured (printed, not asserted):

- JavaScript shipped for the first gallery view, gzipped (target: at most 250 KB): the entry
  script and every chunk it preloads or imports before the gallery shows, read from web/dist as
  the gateway serves it; the CSS is printed beside it.
- Time from navigation to the first thumbnails painted, with 5,000 photos in the library, through
  the gateway, in headless Chromium (Element Timing of the grid's first thumbnail; a reload, so
  the session comes back through the refresh cookie as it does for a returning user).

    make setup && .venv/bin/python bench/web.py [--photos 5000] [--runs 5]

It starts its own stack on free ports, uploads 40 photos through the REST API and copies their
catalog rows up to the library size (see imgtag_dev.browser.copy_photos), and stops it."""

from __future__ import annotations

import argparse
import gzip
import re
import secrets
import shutil
import statistics
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from imgtag_dev.browser import CHROMIUM, CHROMIUM_FLAGS, copy_photos, seed_photos, wait_until_all_processed
from imgtag_dev.paths import WEB_DIST
from imgtag_dev.stack import running
from imgtag_dev.testing import ADMIN_PASSWORD, login, new_data_dir, register_and_approve, stack_settings_for_tests

UPLOADED = 40
FIRST_PAINT = """() => new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const entry = list.getEntries().find((e) => e.identifier === 'thumbnail')
    if (entry) resolve(entry.renderTime || entry.loadTime)
  }).observe({ type: 'element', buffered: true })
})"""


def first_view_javascript(dist: Path = WEB_DIST) -> tuple[list[tuple[str, int, int]], int]:
    """(file, bytes, gzipped bytes) of each script the first view loads, and the CSS gzipped."""
    index = (dist / "index.html").read_text()
    scripts = re.findall(r'<script[^>]+src="(/assets/[^"]+\.js)"', index)
    scripts += re.findall(r'<link rel="modulepreload"[^>]+href="(/assets/[^"]+\.js)"', index)
    # Static imports of those chunks load too (dynamic import() of other screens does not).
    seen: list[str] = []
    while scripts:
        name = scripts.pop(0)
        if name in seen:
            continue
        seen.append(name)
        code = (dist / name.lstrip("/")).read_text()
        scripts += [f"/assets/{m}" for m in re.findall(r'(?:^|[;}\s])import\s*[^()]*?from\s*"\./([^"]+\.js)"', code)]
    rows = []
    for name in seen:
        data = (dist / name.lstrip("/")).read_bytes()
        rows.append((name, len(data), len(gzip.compress(data, 9))))
    css = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (dist / "assets").glob("app-*.css"))
    return rows, css


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    rows, css = first_view_javascript()
    print("JavaScript for the first gallery view (gzip -9):")
    for name, raw, packed in rows:
        print(f"  {name:48} {raw / 1024:8.1f} KB  {packed / 1024:7.1f} KB gzipped")
    total = sum(p for _, _, p in rows)
    print(f"  total {total / 1024:.1f} KB gzipped (budget 250 KB); CSS {css / 1024:.1f} KB gzipped")

    data_dir = new_data_dir()
    try:
        times, created = _first_paint(data_dir, args.photos, args.runs)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"navigation to first thumbnail painted, {created} photos, headless Chromium through the gateway: "
        f"median {statistics.median(times):.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms "
        f"({args.runs} reloads; the session is restored from the refresh cookie first)"
    )


def _first_paint(data_dir: Path, photos: int, runs: int) -> tuple[list[float], int]:
    with running(stack_settings_for_tests(data_dir)) as stack:
        url = stack.gateway_url
        admin = login(url, "admin", ADMIN_PASSWORD)
        user = register_and_approve(url, admin, "bench" + secrets.token_hex(4))
        started = time.perf_counter()
        # A few dozen real uploads, processed; the rest of the library copies their catalog rows
        # (as the gallery scroll test does): the gallery reads what the catalog lists either way.
        uploaded = seed_photos(url, user, min(photos, UPLOADED))
        user = login(url, user.username, user.password)
        wait_until_all_processed(url, user)
        created = copy_photos(stack, uploaded, photos) if photos > len(uploaded) else len(uploaded)
        print(
            f"{created} photos ({len(uploaded)} uploaded and processed, the rest copies) "
            f"in {time.perf_counter() - started:.0f} s"
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto("/")
            page.get_by_test_id("signin-login").fill(user.username)
            page.get_by_test_id("signin-password").fill(user.password)
            page.get_by_test_id("signin-submit").click()
            page.get_by_test_id("asset-card").first.locator("img").wait_for()
            times = []
            for _ in range(runs):
                page.reload()
                times.append(page.evaluate(FIRST_PAINT))
            browser.close()
    return times, created


if __name__ == "__main__":
    main()
