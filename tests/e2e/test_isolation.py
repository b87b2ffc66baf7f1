"""Isolation between users through the real gateway: a second user tries every public route of
the contract against the first user's resources and gets NOT_FOUND, PERMISSION_DENIED or an
error, never their data; sharing with the instance opens reading, not changing; signed content
URLs are exact, expiring capabilities; and the caller travels with internal calls."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from imgtag.api.v1 import access_pb2
from imgtag_dev import gateway
from imgtag_dev.archive_fixtures import build_zip
from imgtag_dev.paths import DESCRIPTOR_SET
from imgtag_dev.testing import Account, expect_error, unique_png

pytestmark = pytest.mark.e2e


def _upload(client: httpx.Client, owner: Account, filename: str = "mine.png") -> dict:
    reply = client.post(
        "/v1/assets:upload",
        params={"filename": filename},
        content=unique_png(),
        headers={"content-type": "image/png", **owner.headers},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.fixture
def alice_and_bob(anonymous: httpx.Client, new_user) -> tuple[Account, Account, dict, dict]:
    """Alice with a photo, an API key, a collection and an import job; Bob, another ordinary user."""
    alice, bob = new_user(), new_user()
    asset = _upload(anonymous, alice)
    key = anonymous.post(
        "/v1/users/me/apiKeys", json={"displayName": "alice's", "scopes": ["ASSETS_READ"]}, headers=alice.headers
    ).json()
    collection = anonymous.post("/v1/collections", json={"displayName": "alice's"}, headers=alice.headers)
    assert collection.status_code == 200, collection.text
    job = anonymous.post(
        "/v1/importJobs:zip",
        params={"filename": "alice.zip"},
        content=build_zip([("a.png", unique_png())]),
        headers={"content-type": "application/zip", **alice.headers},
    )
    assert job.status_code == 200, job.text
    key["collection"], key["importJob"] = collection.json()["name"], job.json()["name"]
    return alice, bob, asset, key


def _fill(template: str, alice: Account, asset: dict, key: dict) -> str:
    """A REST path template with Alice's resources in it (made-up ones for admins' resources,
    which an ordinary user is refused whatever the id)."""
    resources = {
        "assets/*": asset["name"],
        "users/*": alice.name,
        "users/*/apiKeys/*": key["apiKey"]["name"],
        "collections/*": key["collection"],
        "tags/*": f"tags/{uuid.uuid4()}",
        "importJobs/*": key["importJob"],
        "endpoints/*": f"endpoints/{uuid.uuid4()}",
        "endpoints/*/scrubs/*": f"endpoints/nas-backup/scrubs/{uuid.uuid4().hex}",
        "models/*": "models/efficientnet-lite0",
        "visionProviders/*": "visionProviders/openai",
    }

    def variable(match: re.Match[str]) -> str:
        _, _, pattern = match.group(1).partition("=")
        return resources[pattern]

    return re.sub(r"\{([^}]*)\}", variable, template)


def test_another_user_gets_nothing_of_alices_on_any_public_route(anonymous, alice_and_bob) -> None:
    alice, bob, asset, key = alice_and_bob
    asset_id = asset["name"].removeprefix("assets/")
    alices_ids = [
        asset_id,
        alice.name.removeprefix("users/"),
        key["apiKey"]["name"].rsplit("/", 1)[1],
        key["secret"],
        key["collection"].removeprefix("collections/"),
        key["importJob"].removeprefix("importJobs/"),
    ]
    tried = 0
    for route in gateway.public_routes(DESCRIPTOR_SET):
        if route.audience == access_pb2.AccessRule.PUBLIC:
            continue
        for method, template in route.rest:
            path = _fill(template, alice, asset, key)
            body = {} if method in ("POST", "PATCH") else None
            params = {"update_mask": "title"} if method == "PATCH" else None
            reply = anonymous.request(method, path, json=body, params=params, headers=bob.headers)
            tried += 1
            leaked = [i for i in alices_ids if i in reply.text]
            assert not (reply.is_success and leaked), (method, path, reply.status_code, reply.text[:300])
            if not reply.is_success:
                assert reply.status_code in (400, 401, 403, 404, 501), (method, path, reply.status_code, reply.text)
                assert "code" in reply.json(), (method, path)
    assert tried > 40
    # And nothing of Alice's changed meanwhile.
    mine = anonymous.get(f"/v1/{asset['name']}", headers=alice.headers).json()
    assert (mine["state"], mine.get("title", "")) == ("ACTIVE", "")
    assert anonymous.get("/v1/assets", headers={"x-api-key": key["secret"]}).status_code == 200
    mine = anonymous.get(f"/v1/{key['collection']}", headers=alice.headers).json()
    assert mine["displayName"] == "alice's", mine
    assert anonymous.get(f"/v1/{key['importJob']}", headers=alice.headers).json()["state"] != "CANCELLED"


def test_direct_asset_access_by_another_user_is_not_found(anonymous, alice_and_bob) -> None:
    alice, bob, asset, _ = alice_and_bob
    name = asset["name"]
    for method, path, extra in (
        ("GET", f"/v1/{name}", {}),
        ("GET", f"/v1/{name}/content", {}),
        ("PATCH", f"/v1/{name}", {"params": {"update_mask": "title"}, "json": {"title": "mine now"}}),
        ("DELETE", f"/v1/{name}", {}),
    ):
        expect_error(anonymous.request(method, path, headers=bob.headers, **extra), 404, 5, "ASSET_NOT_FOUND")
    listed = anonymous.get("/v1/assets", params={"page_size": 500}, headers=bob.headers).json()
    assert name not in json.dumps(listed)
    # Identical bytes are Bob's own business: no cross-user duplicate hint.
    assert anonymous.get(f"/v1/{name}", headers=alice.headers).json()["state"] == "ACTIVE"


def test_duplicates_are_per_owner(anonymous, alice_and_bob) -> None:
    alice, bob, _, _ = alice_and_bob
    data = unique_png()
    upload = {"params": {"filename": "same.png"}, "content": data}
    first = anonymous.post("/v1/assets:upload", headers={"content-type": "image/png", **alice.headers}, **upload)
    assert first.status_code == 200
    # Bob uploads the same bytes: his own asset, and no hint that Alice has them.
    bobs = anonymous.post("/v1/assets:upload", headers={"content-type": "image/png", **bob.headers}, **upload)
    assert bobs.status_code == 200 and bobs.json()["name"] != first.json()["name"]
    again = anonymous.post("/v1/assets:upload", headers={"content-type": "image/png", **bob.headers}, **upload)
    body = expect_error(again, 409, 6, "DUPLICATE_ASSET")
    assert body["details"][0]["metadata"]["asset"] == bobs.json()["name"]


def test_sharing_with_the_instance_opens_reading_not_changing(anonymous, alice_and_bob, admin) -> None:
    alice, bob, asset, _ = alice_and_bob
    name = asset["name"]
    expect_error(
        anonymous.patch(
            f"/v1/{name}", params={"update_mask": "visibility"}, json={"visibility": "INSTANCE"}, headers=bob.headers
        ),
        404,
        5,
    )
    shared = anonymous.patch(
        f"/v1/{name}", params={"update_mask": "visibility"}, json={"visibility": "INSTANCE"}, headers=alice.headers
    )
    assert shared.json()["visibility"] == "INSTANCE"
    assert anonymous.get(f"/v1/{name}", headers=bob.headers).status_code == 200
    assert anonymous.get(f"/v1/{name}/content", headers=bob.headers).status_code == 200
    assert name in anonymous.get("/v1/assets", params={"page_size": 500}, headers=bob.headers).text
    for method, extra in (("DELETE", {}), ("PATCH", {"params": {"update_mask": "title"}, "json": {"title": "x"}})):
        expect_error(anonymous.request(method, f"/v1/{name}", headers=bob.headers, **extra), 403, 7, "NOT_OWNER")
    # Bob's API key acts for Bob, but reaches only Bob's own photos, never what others shared.
    bobs_key = anonymous.post(
        "/v1/users/me/apiKeys", json={"displayName": "b", "scopes": ["ASSETS_READ"]}, headers=bob.headers
    ).json()["secret"]
    expect_error(anonymous.get(f"/v1/{name}", headers={"x-api-key": bobs_key}), 404, 5)
    # Admins see and manage everything.
    assert anonymous.get(f"/v1/{name}", headers=admin.headers).json()["owner"] == alice.name
    private = anonymous.patch(
        f"/v1/{name}", params={"update_mask": "visibility"}, json={"visibility": "PRIVATE"}, headers=admin.headers
    )
    assert private.json()["visibility"] == "PRIVATE"
    expect_error(anonymous.get(f"/v1/{name}", headers=bob.headers), 404, 5)


def test_signed_content_urls_are_exact_and_expire(anonymous, alice_and_bob, stack) -> None:
    alice, _, asset, _ = alice_and_bob
    url = asset["contentUrls"]["original"]
    assert anonymous.get(url).status_code == 200  # no credential needed
    parts = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert set(query) == {"variant", "expires", "signature"}
    tampered = {
        "signature": {
            **query,
            "signature": query["signature"][:-2] + ("AA" if query["signature"][-2:] != "AA" else "BB"),
        },
        "expiry pushed out": {**query, "expires": str(int(query["expires"]) + 86400)},
        "another variant": {**query, "variant": "PREVIEW"},
        "expired": {**query, "expires": str(int(time.time()) - 10)},
    }
    for label, params in tampered.items():
        reply = anonymous.get(f"{parts.path}?{urlencode(params)}")
        assert reply.status_code == 403, (label, reply.status_code, reply.text)
    other = _upload(anonymous, alice, "other.png")
    moved = url.replace(asset["name"].removeprefix("assets/"), other["name"].removeprefix("assets/"))
    expect_error(anonymous.get(moved), 403, 7, "INVALID_SIGNATURE")
    # URLs stay the same within a window, so browsers cache the images.
    assert anonymous.get(f"/v1/{asset['name']}", headers=alice.headers).json()["contentUrls"]["original"] == url


def test_the_caller_travels_with_internal_calls(stack, anonymous, new_user) -> None:
    """Catalog writes the bytes through storage; storage's log shows the call came from the
    catalog on behalf of the uploading user (and no credential is ever logged)."""
    person = new_user()
    reply = anonymous.post(
        "/v1/assets:upload",
        params={"filename": "traced.png"},
        content=unique_png(),
        headers={"content-type": "image/png", **person.headers},
    )
    assert reply.status_code == 200, reply.text
    log = stack.logs_dir / "storage.log"
    deadline, writes = time.monotonic() + 5, []
    while time.monotonic() < deadline and not writes:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        writes = [
            e for e in lines if e.get("method", "").endswith("/WriteObject") and e.get("principal") == person.name
        ]
        time.sleep(0.1)
    (write,) = writes
    assert (write["via"], write["credential"]) == ("catalog", "access_token")
    assert person.access_token not in log.read_text() and person.refresh_token not in log.read_text()
