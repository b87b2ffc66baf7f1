"""Reading the text in photos during analysis (IMGTAG_CATALOG_ANALYSIS_READ_TEXT, off by default):
with it on, a photographed document gets its words as `recognizedText` (rapidocr in the inference
service), and a search for those words finds it. The catalog is restarted with the setting for
this module and restored afterwards (the rest of the session runs with it off, the default)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from imgtag_dev.stack import Stack
from imgtag_dev.testing import SKIMAGE_PHOTOS, Account, upload

pytestmark = pytest.mark.e2e

SETTING = "IMGTAG_CATALOG_ANALYSIS_READ_TEXT"


def _restart_catalog(stack: Stack, read_text: bool) -> None:
    catalog = stack.services["catalog"]
    assert catalog.process is not None
    catalog.process.stop()
    catalog.env[SETTING] = "true" if read_text else "false"
    # Started from this (the main) thread: children die with the thread that spawned them.
    catalog.start(stack.logs_dir / "catalog.log")


@pytest.fixture(scope="module")
def reading_text(stack: Stack) -> Iterator[None]:
    _restart_catalog(stack, read_text=True)
    try:
        yield
    finally:
        _restart_catalog(stack, read_text=False)


def _analysed(client: httpx.Client, account: Account, name: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        asset = client.get(f"/v1/{name}", headers=account.headers).json()
        if asset.get("analysisState") in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return asset
        time.sleep(0.3)


def test_the_words_in_a_photographed_page_are_read_and_found(
    reading_text: None, anonymous: httpx.Client, new_user
) -> None:
    person = new_user()
    reply = upload(anonymous, person, (SKIMAGE_PHOTOS / "page.png").read_bytes(), filename="page.png")
    assert reply.status_code == 200, reply.text
    page = _analysed(anonymous, person, reply.json()["name"])
    assert page["analysisState"] == "SUCCEEDED", page
    assert "Region-based segmentation" in page["recognizedText"], page.get("recognizedText")
    # A photo without text next to it, so the search has something to leave out.
    cat = upload(anonymous, person, (SKIMAGE_PHOTOS / "chelsea.png").read_bytes(), filename="chelsea.png")
    assert _analysed(anonymous, person, cat.json()["name"])["analysisState"] == "SUCCEEDED"
    found = anonymous.post(
        "/v1/assets:search", json={"query": "region based segmentation"}, headers=person.headers
    ).json()
    names = [r["asset"]["name"] for r in found.get("results", [])]
    assert names[:1] == [page["name"]], found
