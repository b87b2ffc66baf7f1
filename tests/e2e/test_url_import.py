"""URL imports through the real gateway (admins): a list of URLs served by a local web server
becomes an import job whose report names what happened to every URL: images in with their names,
tags and collection; a repeated URL a duplicate; a redirect followed; text, a 404, a server that
keeps failing, a URL with credentials, other schemes and addresses that are not allowed (also
when a redirect leads there) each refused on their own while the rest is imported. Users cannot
start one; a storage folder source answers 501; a request without URLs is a 400."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from imgtag_dev.testing import SKIMAGE_PHOTOS, Account, expect_error, unique_png

pytestmark = pytest.mark.e2e


def unique_jpeg() -> bytes:
    """A real photo as JPEG with a few random pixels, so no other test has these bytes."""
    image = Image.open(SKIMAGE_PHOTOS / "coffee.png").convert("RGB")
    for x, byte in enumerate(os.urandom(8)):
        image.putpixel((x, 0), (byte, byte, byte))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


class Site:
    """A small web server on loopback with the pages the test names; counts requests per path."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: dict[str, int] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits[self.path] = site.hits.get(self.path, 0) + 1
                status, headers, body = site.pages.get(self.path, (404, {}, b"not here"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, path: str, body: bytes, content_type: str = "application/octet-stream") -> str:
        self.pages[path] = (200, {"content-type": content_type}, body)
        return self.base + path

    def redirect(self, path: str, location: str) -> str:
        self.pages[path] = (302, {"location": location}, b"")
        return self.base + path

    def failing(self, path: str, status: int) -> str:
        self.pages[path] = (status, {}, b"sorry")
        return self.base + path


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()


def start(client: httpx.Client, account: Account, body: dict) -> httpx.Response:
    return client.post("/v1/assets:import", json=body, headers=account.headers)


def wait_for(client: httpx.Client, account: Account, name: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/{name}", headers=account.headers).json()
        if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            return job
        time.sleep(0.3)


def reason(item: dict) -> str:
    return next(d["reason"] for d in item["error"]["details"] if d["@type"].endswith("ErrorInfo"))


def test_an_admin_imports_a_list_of_urls_each_reported_on_its_own(
    anonymous: httpx.Client, admin: Account, site: Site
) -> None:
    jpeg = site.page("/photos/coffee%20cup.jpg", unique_jpeg(), "image/jpeg")
    png = site.page("/photos/pattern.png", unique_png(40, 30), "image/png")
    moved = site.redirect("/old/pattern-2.png", "/photos/pattern-2.png")
    site.page("/photos/pattern-2.png", unique_png(20, 30), "image/png")
    text = site.page("/notes.txt", b"just some words, not an image", "text/plain")
    missing = site.base + "/photos/gone.jpg"
    broken = site.failing("/busy.jpg", 503)
    to_metadata = site.redirect("/sneaky.png", "http://169.254.169.254/latest/meta-data/")
    urls = [
        jpeg,
        png,
        png,  # the same photo again: a duplicate of the entry before
        moved,
        text,
        missing,
        broken,
        to_metadata,
        "http://10.20.30.40/private.png",
        "ftp://example.org/photo.jpg",
        site.base.replace("http://", "http://someone:secret@") + "/photos/pattern.png",
    ]
    collection = anonymous.post("/v1/collections", json={"displayName": "From the web"}, headers=admin.headers).json()[
        "name"
    ]
    reply = start(
        anonymous,
        admin,
        {"source": {"urls": {"urls": urls}}, "tags": ["web import"], "collection": collection, "skipAnalysis": True},
    )
    assert reply.status_code == 200, reply.text
    job = reply.json()
    assert job["source"]["urls"]["urls"] == urls and job["totalCount"] == str(len(urls))

    job = wait_for(anonymous, admin, job["name"])
    assert job["state"] == "SUCCEEDED", job
    items = job["items"]
    assert [i["sourceItem"] for i in items] == urls
    outcomes = [i["outcome"] for i in items]
    assert outcomes[:5] == ["CREATED", "CREATED", "DUPLICATE", "CREATED", "REJECTED"], items
    assert items[2]["asset"] == items[1]["asset"]
    assert [reason(i) for i in items[4:]] == [
        "NOT_AN_IMAGE",
        "URL_NOT_FOUND",
        "URL_FETCH_FAILED",
        "URL_ADDRESS_NOT_ALLOWED",
        "URL_ADDRESS_NOT_ALLOWED",
        "BAD_URL",
        "BAD_URL",
    ], items
    assert job["importedCount"] == "3" and job["skippedCount"] == "1" and job["failedCount"] == "7"
    assert site.hits["/busy.jpg"] == 2  # one retry for a server error, then refused
    assert "/latest/meta-data/" not in site.hits  # never asked of this server, nor of the metadata address

    photo = anonymous.get(f"/v1/{items[0]['asset']}", headers=admin.headers).json()
    assert photo["filename"] == "coffee cup.jpg" and photo["contentType"] == "image/jpeg"
    assert [(t["displayName"], t["source"]) for t in photo["tags"]] == [("web import", "MANUAL")]
    assert anonymous.get(f"/v1/{items[3]['asset']}", headers=admin.headers).json()["filename"] == "pattern-2.png"
    members = anonymous.get("/v1/assets", params={"filter": f'collection = "{collection}"'}, headers=admin.headers)
    assert {a["name"] for a in members.json()["assets"]} == {items[0]["asset"], items[1]["asset"], items[3]["asset"]}


def test_url_imports_are_for_admins_and_need_a_source(
    anonymous: httpx.Client, admin: Account, user: Account, site: Site
) -> None:
    url = site.page("/photo.png", unique_png(), "image/png")
    expect_error(start(anonymous, user, {"source": {"urls": {"urls": [url]}}}), 403, 7)
    expect_error(start(anonymous, admin, {"source": {"urls": {"urls": []}}}), 400, 3, "NO_URLS")
    expect_error(start(anonymous, admin, {}), 400, 3, "BAD_SOURCE")
    expect_error(
        start(anonymous, admin, {"source": {"storage": {"endpoint": "endpoints/default", "pathPrefix": "in/"}}}),
        501,
        12,
        "STORAGE_IMPORT_NOT_BUILT",
    )
    expect_error(start(anonymous, admin, {"source": {"urls": {"urls": [url]}}, "tags": ["x" * 300]}), 400, 3)
    assert "/photo.png" not in site.hits  # nothing was fetched for a refused request
