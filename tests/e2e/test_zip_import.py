"""ZIP imports through the real gateway: a hostile archive becomes a job whose report names what
happened to every entry (images in with the right names, owner, collection and tags; duplicates,
text, nested archives, a traversal name, a zip bomb and a lying header each handled on their
own); whole-archive refusals are clear 400s; jobs are private to their creator; cancel stops a
job between entries; the archive is deleted when the job ends."""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path

import httpx
import pytest
from minio import Minio

from imgtag_dev.archive_fixtures import build_zip, declare_size, many_entries
from imgtag_dev.testing import SKIMAGE_PHOTOS, Account, expect_error, unique_png

pytestmark = pytest.mark.e2e

FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


def submit(client: httpx.Client, owner: Account, archive: bytes, **params) -> httpx.Response:
    return client.post(
        "/v1/importJobs:zip",
        params={"filename": "upload.zip", **params},
        content=archive,
        headers={"content-type": "application/zip", **owner.headers},
        timeout=120,
    )


def wait_for(client: httpx.Client, owner: Account, name: str, *, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/{name}", headers=owner.headers).json()
        if job["state"] in FINISHED or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def count(job: dict, field: str) -> int:
    return int(job.get(field, "0"))  # int64 is a JSON string, and zero is left out


def reason(item: dict) -> str:
    return next(d["reason"] for d in item["error"]["details"] if d["@type"].endswith("ErrorInfo"))


def s3_keys(stack, prefix: str) -> list[str]:
    s3 = Minio(
        stack.s3.endpoint_url.split("://")[1],
        access_key=stack.s3.credentials.access_key,
        secret_key=stack.s3.credentials.secret_key,
        secure=False,
    )
    return [o.object_name for o in s3.list_objects("imgtag", prefix=prefix, recursive=True)]


def test_a_hostile_archive_imports_its_images_and_reports_every_entry(stack, anonymous, new_user) -> None:
    owner = new_user()
    collection = anonymous.post("/v1/collections", json={"displayName": "Holiday"}, headers=owner.headers).json()
    already = unique_png()
    existing = anonymous.post(
        "/v1/assets:upload",
        params={"filename": "mine.png"},
        content=already,
        headers={"content-type": "image/png", **owner.headers},
    ).json()
    chelsea = (SKIMAGE_PHOTOS / "chelsea.png").read_bytes()
    coffee = (SKIMAGE_PHOTOS / "coffee.png").read_bytes()
    evil_name = f"imgtag-evil-{secrets.token_hex(4)}.png"
    evil = unique_png()
    archive = build_zip(
        [
            ("photos/", b""),
            ("photos/chelsea.png", chelsea),
            ("photos/2024/coffee.png", coffee),
            ("copy-of-mine.png", already),
            ("readme.txt", b"these are my holiday photos\n"),
            ("more.zip", build_zip([("x.png", unique_png())])),
            (f"../../../../../../../tmp/{evil_name}", evil),
            ("bomb.jpg", b"\x00" * 5_000_000),
            ("liar.png", (SKIMAGE_PHOTOS / "astronaut.png").read_bytes()),
            ("disguised.jpg", build_zip([("y.png", unique_png())])),
            ("cut.png", coffee[:100_000]),
        ]
    )
    archive = declare_size(archive, "liar.png", 1000)

    reply = submit(anonymous, owner, archive, collection=collection["name"], tags="trip", skip_analysis="true")
    assert reply.status_code == 200, reply.text
    job = reply.json()
    assert job["name"].startswith("importJobs/") and job["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
    assert count(job, "totalCount") == 10  # the directory is not an entry
    assert job["source"]["zip"] == {"filename": "upload.zip", "sizeBytes": str(len(archive))}
    assert job["creator"] == owner.name and job["collection"] == collection["name"]

    job = wait_for(anonymous, owner, job["name"])
    assert job["state"] == "SUCCEEDED", job
    assert [count(job, f) for f in ("processedCount", "importedCount", "skippedCount", "failedCount")] == [10, 3, 1, 6]
    items = {item["sourceItem"]: item for item in job["items"]}
    assert [i["sourceItem"] for i in job["items"]] == [
        "photos/chelsea.png",
        "photos/2024/coffee.png",
        "copy-of-mine.png",
        "readme.txt",
        "more.zip",
        f"../../../../../../../tmp/{evil_name}",
        "bomb.jpg",
        "liar.png",
        "disguised.jpg",
        "cut.png",
    ]
    assert items["copy-of-mine.png"]["outcome"] == "DUPLICATE"
    assert items["copy-of-mine.png"]["asset"] == existing["name"]
    refused = {name: reason(item) for name, item in items.items() if item["outcome"] == "REJECTED"}
    assert refused == {
        "readme.txt": "NOT_AN_IMAGE",
        "more.zip": "NESTED_ARCHIVE",
        "bomb.jpg": "COMPRESSION_RATIO_TOO_HIGH",
        "liar.png": "ENTRY_SIZE_MISMATCH",
        "disguised.jpg": "NESTED_ARCHIVE",
        "cut.png": "CORRUPT_IMAGE",
    }
    assert all(items[name]["error"]["message"] for name in refused)
    assert {e["sourceItem"] for e in job["itemErrors"]} == set(refused)

    created = {
        name: item["asset"] for name, item in items.items() if item["outcome"] == "CREATED"
    }  # the images, under their base names, the caller's, in the collection, tagged
    expected = {
        "photos/chelsea.png": ("chelsea.png", chelsea),
        "photos/2024/coffee.png": ("coffee.png", coffee),
        f"../../../../../../../tmp/{evil_name}": (evil_name, evil),
    }
    assert set(created) == set(expected)
    for source, asset_name in created.items():
        asset = anonymous.get(f"/v1/{asset_name}", headers=owner.headers).json()
        filename, data = expected[source]
        assert asset["filename"] == filename
        assert asset["sha256"] == hashlib.sha256(data).hexdigest()
        assert asset["owner"] == owner.name
        assert asset["collections"] == [collection["name"]]
        assert [t["displayName"] for t in asset["tags"]] == ["trip"]
        assert asset["analysisState"] == "SKIPPED"
    # Nothing was written by entry name, and the archive is gone from storage.
    assert not Path("/tmp", evil_name).exists()
    job_id = job["name"].removeprefix("importJobs/")
    assert stack.postgres.query(f"SELECT archive_key FROM import_jobs WHERE id = '{job_id}'", "imgtag_catalog") == ""
    assert s3_keys(stack, f"imports/{job_id}") == []
    listed = anonymous.get("/v1/importJobs", headers=owner.headers).json()["importJobs"]
    assert [j["name"] for j in listed] == [job["name"]]
    assert listed[0].get("items", []) == [] and count(listed[0], "importedCount") == 3


def test_what_is_not_a_usable_zip_is_a_clear_400_and_stores_nothing(stack, anonymous, new_user) -> None:
    owner = new_user()
    not_zip = submit(anonymous, owner, unique_png())
    body = expect_error(not_zip, 400, 3, "NOT_A_ZIP")
    assert "ZIP" in body["message"]
    too_many = submit(anonymous, owner, many_entries(10_001))
    body = expect_error(too_many, 400, 3, "ARCHIVE_TOO_MANY_ENTRIES")
    assert "10000" in body["message"]
    expect_error(submit(anonymous, owner, b""), 400, 3)
    bad_collection = submit(anonymous, owner, build_zip([("a.png", unique_png())]), collection="collections/nope")
    expect_error(bad_collection, 400, 3, "INVALID_COLLECTION_NAME")
    assert anonymous.get("/v1/importJobs", headers=owner.headers).json().get("importJobs", []) == []
    rows = stack.postgres.query(f"SELECT count(*) FROM import_jobs WHERE creator = '{owner.name}'", "imgtag_catalog")
    assert rows == "0"


def test_import_jobs_are_private_to_their_creator(anonymous, new_user, admin) -> None:
    alice, bob = new_user(), new_user()
    job = submit(anonymous, alice, build_zip([("a.png", unique_png())])).json()
    assert expect_error(anonymous.get(f"/v1/{job['name']}", headers=bob.headers), 404, 5, "IMPORT_JOB_NOT_FOUND")
    expect_error(anonymous.post(f"/v1/{job['name']}:cancel", json={}, headers=bob.headers), 404, 5)
    assert anonymous.get("/v1/importJobs", headers=bob.headers).json().get("importJobs", []) == []
    assert anonymous.get(f"/v1/{job['name']}", headers=admin.headers).json()["creator"] == alice.name
    mine = anonymous.get("/v1/importJobs", params={"filter": f'creator = "{alice.name}"'}, headers=admin.headers)
    assert [j["name"] for j in mine.json()["importJobs"]] == [job["name"]]
    assert wait_for(anonymous, alice, job["name"])["state"] == "SUCCEEDED"
    expect_error(anonymous.get("/v1/importJobs/not-a-uuid", headers=alice.headers), 400, 3)
    anonymous_get = anonymous.get(f"/v1/{job['name']}")
    assert anonymous_get.status_code == 401


def test_cancel_stops_a_job_between_entries_and_keeps_what_was_imported(stack, anonymous, new_user) -> None:
    owner = new_user()
    archive = build_zip([(f"p{i:03}.png", unique_png(64, 48)) for i in range(150)])
    job = submit(anonymous, owner, archive).json()
    deadline = time.monotonic() + 30
    while count(anonymous.get(f"/v1/{job['name']}", headers=owner.headers).json(), "processedCount") < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = anonymous.post(f"/v1/{job['name']}:cancel", json={}, headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "CANCELLED" and cancelled.json()["endTime"]
    time.sleep(2)  # an entry in progress at the moment of cancelling still finishes
    settled = anonymous.get(f"/v1/{job['name']}", headers=owner.headers).json()
    time.sleep(1.5)
    later = anonymous.get(f"/v1/{job['name']}", headers=owner.headers).json()
    assert later["state"] == "CANCELLED"
    assert 3 <= count(later, "processedCount") == count(settled, "processedCount") < 150
    kept = anonymous.get("/v1/assets", params={"page_size": 500}, headers=owner.headers).json().get("assets", [])
    assert len(kept) == count(later, "importedCount")
    # Idempotent on a finished job, and the archive is deleted.
    assert anonymous.post(f"/v1/{job['name']}:cancel", json={}, headers=owner.headers).json()["state"] == "CANCELLED"
    job_id = job["name"].removeprefix("importJobs/")
    deadline = time.monotonic() + 10
    while s3_keys(stack, f"imports/{job_id}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert s3_keys(stack, f"imports/{job_id}") == []


def test_allow_duplicates_imports_copies_of_images_the_caller_already_has(anonymous, new_user) -> None:
    owner = new_user()
    data = unique_png()
    original = anonymous.post(
        "/v1/assets:upload",
        params={"filename": "original.png"},
        content=data,
        headers={"content-type": "image/png", **owner.headers},
    ).json()
    job = submit(anonymous, owner, build_zip([("again.png", data)]), allow_duplicates="true").json()
    job = wait_for(anonymous, owner, job["name"])
    (item,) = job["items"]
    assert item["outcome"] == "CREATED" and item["asset"] != original["name"]
    copy = anonymous.get(f"/v1/{item['asset']}", headers=owner.headers).json()
    assert (copy["filename"], copy["sha256"]) == ("again.png", original["sha256"])
