"""GET /v1/assets:randomContent: the bytes of one random photo of the caller's that matches a
filter (a photo frame or a wallpaper script calls it with an API key), never cached, the photo
chosen named in a header; nothing of another user's is ever chosen."""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest
from PIL import Image

from imgtag_dev.testing import expect_error, unique_png, upload, wait_until_processed

pytestmark = pytest.mark.e2e


def test_random_content_is_one_of_the_matching_photos_and_never_another_users(anonymous, new_user) -> None:
    alice, bob = new_user(), new_user()
    label = "frame-" + uuid.uuid4().hex[:6]
    photos = {}
    for tagged in (True, True, False):
        data = unique_png(64, 48)
        reply = upload(anonymous, alice, data, "p.png", **({"tags": label} if tagged else {}))
        assert reply.status_code == 200, reply.text
        photos[reply.json()["name"]] = (data, tagged)
    for name in photos:
        wait_until_processed(anonymous, name, alice.headers)
    bobs = upload(anonymous, bob, unique_png(64, 48), "bob.png", tags=label)
    assert bobs.status_code == 200, bobs.text

    chosen = set()
    for _ in range(12):
        reply = anonymous.get("/v1/assets:randomContent", params={"filter": f'tag = "{label}"'}, headers=alice.headers)
        assert reply.status_code == 200, reply.text
        name = reply.headers["x-imgtag-asset"]
        data, tagged = photos[name]  # Alice's, never Bob's
        assert tagged and hashlib.sha256(reply.content).digest() == hashlib.sha256(data).digest()
        assert reply.headers["cache-control"] == "no-store"
        chosen.add(name)
    assert len(chosen) == 2  # both tagged photos come up in 12 draws (chance of not: 2 * 0.5**12)

    thumb = anonymous.get("/v1/assets:randomContent", params={"variant": "THUMBNAIL"}, headers=alice.headers)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp", thumb.text
    assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"

    nothing = anonymous.get(
        "/v1/assets:randomContent", params={"filter": 'tag = "no-such-tag-xyz"'}, headers=bob.headers
    )
    expect_error(nothing, 404, 5, "NO_MATCHING_ASSET")
    expect_error(
        anonymous.get("/v1/assets:randomContent", params={"filter": "size >>> 3"}, headers=alice.headers), 400, 3
    )
    assert anonymous.get("/v1/assets:randomContent").status_code == 401
