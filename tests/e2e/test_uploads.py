"""Uploads that never lose or double a photo, through the real gateway: identical uploads at the
same moment make one asset; a batch of files gets one result per file; bad files are refused with
the reason and store nothing; EXIF facts are read; interrupted uploads are settled by the janitor
without ever deleting bytes a row may reference."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import grpc
import numpy as np
import pytest
from PIL import Image

from imgtag.catalog.v1 import assets_pb2, catalog_pb2_grpc
from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_dev.testing import (
    SKIMAGE_PHOTOS,
    Account,
    as_service,
    channel_as,
    expect_error,
    unique_png,
    upload,
    wait_until_processed,
)

pytestmark = pytest.mark.e2e


def _counts(stack, owner: str) -> tuple[str, str]:
    """The owner's assets, and every original in storage (renditions come and go as processing runs)."""
    assets = stack.postgres.query(f"SELECT count(*) FROM assets WHERE owner = '{owner}'", "imgtag_catalog")
    objects = stack.postgres.query("SELECT count(*) FROM objects WHERE key LIKE 'originals/%'", "imgtag_storage")
    return assets, objects


def _jpeg_with_exif(*, orientation: int = 1, size=(640, 480), **tags) -> bytes:
    """A real camera-like JPEG: noise, and EXIF written by Pillow."""
    pixels = np.random.default_rng(len(tags) + orientation).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = tags.get("make", "FUJIFILM")
    exif[0x0110] = tags.get("model", "X-T4")
    details = exif.get_ifd(0x8769)
    details[0x9003] = tags.get("taken", "2024:05:01 18:30:00")
    if "offset" in tags:
        details[0x9011] = tags["offset"]
    details[0xA434] = "XF23mmF1.4 R"
    details[0x829A] = 0.004
    details[0x829D] = 2.8
    details[0x920A] = 23.0
    details[0x8827] = 400
    if "gps" in tags:
        lat, lon = tags["gps"]
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), (abs(lat), 0.0, 0.0)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), (abs(lon), 0.0, 0.0)
    if "description" in tags:
        exif[0x010E] = tags["description"]
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def test_identical_uploads_at_the_same_moment_make_one_asset(stack, anonymous, new_user) -> None:
    person = new_user()
    data = unique_png(64, 48)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda i: upload(anonymous, person, data, f"copy-{i}.png"), range(8)))
    created = [r for r in replies if r.status_code == 200]
    assert len(created) == 1, [r.status_code for r in replies]
    name = created[0].json()["name"]
    for reply in replies:
        if reply.status_code != 200:
            body = expect_error(reply, 409, 6, "DUPLICATE_ASSET")
            assert body["details"][0]["metadata"]["asset"] == name
    assert _counts(stack, person.name)[0] == "1"
    assert stack.postgres.query(f"SELECT state FROM assets WHERE owner = '{person.name}'", "imgtag_catalog") == "active"


async def _batch_upload(stack, account: Account, files: list[tuple[str, bytes, dict]]):
    """BatchUploadAssets over gRPC, straight through the gateway like any gRPC client."""

    def messages():
        for filename, data, options in files:
            yield assets_pb2.BatchUploadAssetsRequest(file=assets_pb2.UploadFile(filename=filename, **options))
            for start in range(0, len(data), 256 * 1024):
                yield assets_pb2.BatchUploadAssetsRequest(data=data[start : start + 256 * 1024])

    target = stack.gateway_url.removeprefix("http://")
    async with channel_as(target, account.grpc_metadata) as channel:
        return await catalog_pb2_grpc.CatalogServiceStub(channel).BatchUploadAssets(messages())


def test_a_batch_of_files_gets_one_result_per_file(stack, new_user) -> None:
    person = new_user()
    good = unique_png(40, 30)
    photo = (SKIMAGE_PHOTOS / "coffee.png").read_bytes()
    files = [
        ("good.png", good, {}),
        ("notes.txt", b"just some text", {}),
        ("coffee.png", photo, {"tags": ["coffee", "周末"]}),
        ("again.png", good, {}),
        ("empty.jpg", b"", {}),
        ("broken.png", good[: len(good) // 2], {}),
        ("wrong-sum.png", unique_png(), {"expected_sha256": "0" * 64}),
    ]
    reply = asyncio.run(_batch_upload(stack, person, files))
    outcomes = [(r.filename, assets_pb2.UploadResult.Outcome.Name(r.outcome)) for r in reply.results]
    assert outcomes == [
        ("good.png", "CREATED"),
        ("notes.txt", "REJECTED"),
        ("coffee.png", "CREATED"),
        ("again.png", "DUPLICATE"),
        ("empty.jpg", "REJECTED"),
        ("broken.png", "REJECTED"),
        ("wrong-sum.png", "REJECTED"),
    ]
    results = {r.filename: r for r in reply.results}
    assert results["again.png"].asset.name == results["good.png"].asset.name
    assert results["notes.txt"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "not an image" in results["notes.txt"].error.message
    assert {t.display_name for t in results["coffee.png"].asset.tags} == {
        "coffee",
        "周末",
    }  # a Chinese name of no English tag stays as written
    assert _counts(stack, person.name)[0] == "2"


@pytest.mark.parametrize(
    ("label", "make", "status", "reason"),
    [
        ("zero bytes", lambda: b"", 400, "EMPTY_UPLOAD"),
        ("text", lambda: b"hello, this is not a picture", 400, "NOT_AN_IMAGE"),
        ("pdf", lambda: b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", 400, "UNSUPPORTED_IMAGE_FORMAT"),
        (
            "svg",
            lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            400,
            "UNSUPPORTED_IMAGE_FORMAT",
        ),
        ("truncated jpeg", lambda: _jpeg_with_exif()[:5000], 400, "CORRUPT_IMAGE"),
        ("decompression bomb", lambda: _bomb_png(50_000, 50_000), 400, "TOO_MANY_PIXELS"),
        ("400 megapixels", lambda: _bomb_png(20_000, 20_000), 400, "TOO_MANY_PIXELS"),
    ],
)
def test_bad_files_are_refused_with_the_reason_and_store_nothing(
    stack, anonymous, user, label, make, status, reason
) -> None:
    before = _counts(stack, user.name)
    started = time.monotonic()
    expect_error(upload(anonymous, user, make(), "bad.jpg"), status, 3, reason)
    assert time.monotonic() - started < 10, label  # refused from the header, never decoded
    assert _counts(stack, user.name) == before


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (the pixel data is a stub)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def test_filenames_lose_directories_and_control_characters(anonymous, user) -> None:
    for sent, kept in (
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\photos\\sea.png", "sea.png"),
        ("a\x07b.png", "ab.png"),
    ):
        reply = upload(anonymous, user, unique_png(), sent)
        assert reply.status_code == 200, reply.text
        assert reply.json()["filename"] == kept
    # Bytes that are not UTF-8 cannot even be named: the gateway refuses the request.
    raw = anonymous.post(
        "/v1/assets:upload?filename=%FF%FE.png",
        content=unique_png(),
        headers={"content-type": "image/png", **user.headers},
    )
    assert raw.status_code == 400


def test_exif_facts_are_read_and_the_full_exif_kept_without_blobs(anonymous, user) -> None:
    # JPEG's EXIF segment holds at most 64 KiB: a 60 kB description is as huge as EXIF gets.
    data = _jpeg_with_exif(offset="+08:00", gps=(31.2304, -121.4737), description="x" * 60_000)
    reply = upload(anonymous, user, data, "fuji.jpg")
    assert reply.status_code == 200, reply.text
    asset = anonymous.get(f"/v1/{reply.json()['name']}", headers=user.headers).json()
    assert asset["camera"]["make"] == "FUJIFILM" and asset["camera"]["model"] == "X-T4"
    assert asset["camera"]["lensModel"] == "XF23mmF1.4 R" and asset["camera"]["iso"] == 400
    assert asset["camera"]["fNumber"] == pytest.approx(2.8) and asset["camera"]["exposureTimeSeconds"] == pytest.approx(
        0.004
    )
    assert asset["location"]["latitude"] == pytest.approx(31.2304) and asset["location"]["longitude"] == pytest.approx(
        -121.4737
    )
    # Shot at 18:30 in UTC+8 is 10:30 UTC, and the time zone is known.
    assert datetime.fromisoformat(asset["captureTime"]).isoformat() == "2024-05-01T10:30:00+00:00"
    assert asset["captureTimeZoneKnown"] is True
    exif = asset["exif"]
    assert exif["Make"] == "FUJIFILM" and len(json.dumps(exif)) <= 64 * 1024  # JSON-safe and capped
    listed = anonymous.get("/v1/assets", params={"page_size": 5}, headers=user.headers).json()["assets"]
    assert all("exif" not in a for a in listed)


def test_a_wall_clock_capture_time_is_kept_as_such(anonymous, user) -> None:
    reply = upload(anonymous, user, _jpeg_with_exif(taken="2023:12:24 20:00:00", make="Canon"), "eve.jpg")
    asset = reply.json()
    assert datetime.fromisoformat(asset["captureTime"]).isoformat() == "2023-12-24T20:00:00+00:00"
    assert not asset.get("captureTimeZoneKnown")


def test_tags_and_a_collection_on_upload(anonymous, new_user, stack) -> None:
    person = new_user()
    album = anonymous.post(
        "/v1/collections", json={"displayName": "Holiday", "autoTags": ["beach"]}, headers=person.headers
    ).json()
    reply = upload(anonymous, person, unique_png(), "sea.png", tags=["sea", "海"], collection=album["name"])
    asset = reply.json()
    tags = {(t["displayName"], t["source"]) for t in asset["tags"]}
    assert tags == {("sea", "MANUAL"), ("海", "MANUAL"), ("beach", "COLLECTION")}
    assert asset["collections"] == [album["name"]]
    # A collection the uploader cannot see stores nothing.
    before = _counts(stack, person.name)
    expect_error(upload(anonymous, person, unique_png(), collection=f"collections/{uuid.uuid4()}"), 404, 5)
    expect_error(upload(anonymous, person, unique_png(), tags=["\x01bad"]), 400, 3, "INVALID_TAG_NAME")
    assert _counts(stack, person.name) == before


def _claim_row(stack, owner: str, data: bytes, created: str) -> str:
    """An UPLOADING row as a crash would leave it (before its state became ACTIVE)."""
    asset_id = str(uuid.uuid4())
    stack.postgres.query(
        "INSERT INTO assets (id, owner, filename, content_type, size_bytes, sha256, width, height, state,"
        " object_key, create_time, update_time) VALUES"
        f" ('{asset_id}', '{owner}', 'crash.png', 'image/png', {len(data)}, '{hashlib.sha256(data).hexdigest()}',"
        f" 16, 12, 'uploading', 'originals/{asset_id}', {created}, {created})",
        "imgtag_catalog",
    )
    return asset_id


async def _store(stack, tokens, key: str, data: bytes) -> None:
    async with channel_as(stack.service_target("storage"), as_service(tokens)) as channel:
        spec = storage_pb2.WriteObjectSpec(key=key, content_type="image/png")
        await storage_pb2_grpc.StorageServiceStub(channel).WriteObject(
            iter([storage_pb2.WriteObjectRequest(spec=spec), storage_pb2.WriteObjectRequest(chunk=data)])
        )


def test_the_janitor_keeps_bytes_that_arrived_and_releases_claims_that_did_not(
    stack, anonymous, new_user, service_tokens
) -> None:
    """A lost reply after the write committed must not lose the photo; a write that never
    happened must not block the photo's next upload forever."""
    person = new_user()
    arrived, lost = unique_png(), unique_png()
    kept = _claim_row(stack, person.name, arrived, "now() - interval '1 minute'")
    asyncio.run(_store(stack, service_tokens, f"originals/{kept}", arrived))
    released = _claim_row(stack, person.name, lost, "now() - interval '1 minute'")
    # Until settled, a claim is invisible.
    expect_error(anonymous.get(f"/v1/assets/{kept}", headers=person.headers), 404, 5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = stack.postgres.query(
            f"SELECT string_agg(id || '=' || state, ',') FROM assets WHERE id IN ('{kept}', '{released}')",
            "imgtag_catalog",
        )
        if states == f"{kept}=active":
            break
        time.sleep(0.5)
    assert states == f"{kept}=active"
    asset = wait_until_processed(anonymous, f"assets/{kept}", person.headers)
    assert asset["processingState"] == "PROCESSING_COMPLETED"
    # The released photo uploads again normally.
    assert upload(anonymous, person, lost, "retry.png").status_code == 200
