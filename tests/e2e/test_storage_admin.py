"""Storage administration through the real gateway with an admin's access token: endpoints are
created (S3 secrets never come back), read, listed, updated, probed, re-synced, scrubbed and
deleted; replication status and replicas are visible; an ordinary user gets 403 and an
anonymous caller 401 on every one of these routes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from imgtag_dev.testing import expect_error, new_data_dir, unique_png

pytestmark = pytest.mark.e2e

ADMIN_ROUTES = [
    ("GET", "/v1/endpoints"),
    ("POST", "/v1/endpoints"),
    ("GET", "/v1/endpoints/primary-s3"),
    ("PATCH", "/v1/endpoints/primary-s3"),
    ("DELETE", "/v1/endpoints/primary-s3"),
    ("POST", "/v1/endpoints/primary-s3:checkHealth"),
    ("POST", "/v1/endpoints/primary-s3:setDefaultUpload"),
    ("POST", "/v1/endpoints/primary-s3:resync"),
    ("POST", "/v1/endpoints/primary-s3:scrub"),
    ("GET", "/v1/endpoints/primary-s3/scrubs/abc"),
    ("GET", "/v1/replication:status"),
    ("GET", "/v1/replicas"),
    ("POST", "/v1/replication:retry"),
]


@pytest.fixture
def backup_dir() -> Path:
    path = new_data_dir()  # readable by the stack's storage service, like a mounted NAS share
    yield path
    __import__("shutil").rmtree(path, ignore_errors=True)


def _wait(check, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def _wait_while_progressing(read, done, progress, stall_s: float = 60.0):
    """Waits for `done(read())` for as long as `progress(read())` keeps growing: how long
    back-filling or scrubbing takes depends on how much the test session stored before, but a
    minute without progress fails."""
    best, last_step = -1, time.monotonic()
    while True:
        value = read()
        if done(value):
            return value
        if progress(value) > best:
            best, last_step = progress(value), time.monotonic()
        elif time.monotonic() - last_step > stall_s:
            raise AssertionError(f"no progress for {stall_s:.0f} s: {value}")
        time.sleep(0.3)


def test_only_admins_reach_the_storage_admin_routes(anonymous: httpx.Client, user, admin) -> None:
    for method, path in ADMIN_ROUTES:
        body = {} if method in ("POST", "PATCH") else None
        expect_error(anonymous.request(method, path, json=body), 401, 16)
        expect_error(anonymous.request(method, path, json=body, headers=user.headers), 403, 7, "ADMIN_REQUIRED")
    # An admin's API key is not enough either: admin routes need the admin's access token (the
    # gateway asks for one at the edge).
    key = anonymous.post(
        "/v1/users/me/apiKeys", json={"displayName": "admin key", "scopes": ["ASSETS_READ"]}, headers=admin.headers
    ).json()["secret"]
    expect_error(anonymous.get("/v1/endpoints", headers={"x-api-key": key}), 401, 16)


def test_admin_manages_a_backup_endpoint_through_the_gateway(
    anonymous: httpx.Client, admin, stack, backup_dir: Path
) -> None:
    h = admin.headers
    endpoint_id = "nas-" + uuid.uuid4().hex[:6]
    # Something to replicate.
    uploaded = anonymous.post(
        "/v1/assets:upload",
        params={"filename": "x.png"},
        content=unique_png(),
        headers={"content-type": "image/png", **h},
    )
    assert uploaded.status_code == 200, uploaded.text

    # An S3 endpoint checked only (validate_only): the secret is accepted, never returned.
    s3 = stack.s3
    checked = anonymous.post(
        "/v1/endpoints",
        params={"endpointId": "s3-check", "validateOnly": "true"},
        json={
            "displayName": "S3 check",
            "role": "BACKUP",
            "s3": {
                "endpointUrl": s3.endpoint_url,
                "bucket": "imgtag",
                "accessKeyId": s3.credentials.access_key,
                "secretAccessKey": s3.credentials.secret_key,
                "forcePathStyle": True,
            },
        },
        headers=h,
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["s3"]["hasSecretAccessKey"] is True
    # The input-only field comes back empty (the gateway prints every field), never with the secret.
    assert s3.credentials.secret_key not in checked.text and checked.json()["s3"]["secretAccessKey"] == ""
    wrong = anonymous.post(
        "/v1/endpoints",
        params={"endpointId": "s3-wrong"},
        json={
            "displayName": "S3 wrong",
            "role": "BACKUP",
            "s3": {
                "endpointUrl": s3.endpoint_url,
                "bucket": "imgtag",
                "accessKeyId": "nobody",
                "secretAccessKey": "x",
                "forcePathStyle": True,
            },
        },
        headers=h,
    )
    expect_error(wrong, 400, 9, "ACCESS_DENIED")

    created = anonymous.post(
        "/v1/endpoints",
        params={"endpointId": endpoint_id},
        json={"displayName": "NAS backup", "role": "BACKUP", "local": {"rootPath": str(backup_dir)}},
        headers=h,
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["name"] == f"endpoints/{endpoint_id}" and body["type"] == "LOCAL"
    assert body["enabled"] is True and body["readPriority"] == 100 and body["readWeight"] == 1
    name = body["name"]
    try:
        expect_error(
            anonymous.post("/v1/endpoints", params={"endpointId": endpoint_id}, json=created.json(), headers=h),
            409,
            6,
        )
        got = anonymous.get(f"/v1/{name}", headers=h).json()
        assert got["displayName"] == "NAS backup" and got["health"]["state"] == "HEALTHY"
        listed = anonymous.get("/v1/endpoints", params={"filter": "role = BACKUP"}, headers=h).json()
        assert name in [e["name"] for e in listed["endpoints"]]
        patched = anonymous.patch(
            f"/v1/{name}",
            params={"updateMask": "readPriority,displayName"},
            json={"readPriority": 0, "displayName": "NAS"},
            headers=h,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["readPriority"] == 0 and patched.json()["displayName"] == "NAS"
        stale = anonymous.patch(
            f"/v1/{name}",
            params={"updateMask": "displayName"},
            json={"displayName": "x", "etag": got["etag"]},
            headers=h,
        )
        expect_error(stale, 409, 10, "ETAG_MISMATCH")
        health = anonymous.post(f"/v1/{name}:checkHealth", json={}, headers=h).json()["health"]
        assert health["state"] == "HEALTHY" and health["lastCheckTime"]

        # The new backup is back-filled with everything already stored.
        def verified(status: dict) -> int:
            return int(next(e for e in status["endpoints"] if e["endpoint"] == name).get("verifiedCount", 0))

        status = _wait_while_progressing(
            lambda: anonymous.get("/v1/replication:status", headers=h).json(),
            done=lambda status: verified(status) == int(status["objectCount"]),
            progress=verified,
        )
        assert int(status["objectCount"]) >= 1 and [p for p in backup_dir.rglob("*") if p.is_file()]
        replicas = anonymous.get(
            "/v1/replicas", params={"filter": f'endpoint = "{name}" AND state = VERIFIED', "pageSize": 2}, headers=h
        ).json()
        assert replicas["replicas"] and all(r["replica"]["state"] == "VERIFIED" for r in replicas["replicas"])
        assert anonymous.post(f"/v1/{name}:resync", json={}, headers=h).json().get("scheduledCount", "0") == "0"
        retried = anonymous.post("/v1/replication:retry", json={"endpoint": name}, headers=h)
        assert retried.status_code == 200, retried.text

        scrub = anonymous.post(f"/v1/{name}:scrub", json={}, headers=h).json()
        assert scrub["name"].startswith(f"{name}/scrubs/")
        done = _wait_while_progressing(
            lambda: anonymous.get(f"/v1/{scrub['name']}", headers=h).json(),
            done=lambda s: s["state"] != "RUNNING",
            progress=lambda s: int(s.get("checkedCount", 0)),
        )
        assert done["state"] == "SUCCEEDED" and done["checkedCount"] == done["totalCount"]
        expect_error(anonymous.get(f"/v1/{name}/scrubs/nope", headers=h), 404, 5, "SCRUB_NOT_FOUND")
        expect_error(anonymous.post(f"/v1/{name}:setDefaultUpload", json={}, headers=h), 400, 9, "NOT_AN_UPLOAD_TARGET")
        expect_error(anonymous.get("/v1/endpoints/no-such-endpoint", headers=h), 404, 5, "ENDPOINT_NOT_FOUND")
    finally:
        deleted = anonymous.delete(f"/v1/{name}", headers=h)
        assert deleted.status_code == 200, deleted.text
    expect_error(anonymous.get(f"/v1/{name}", headers=h), 404, 5, "ENDPOINT_NOT_FOUND")
