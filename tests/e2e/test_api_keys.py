"""API keys through the real gateway: shown once and stored hashed, accepted in the Authorization
and X-API-Key headers (never a query string), limited by scopes and restrictions, revoked at once,
and a random-image key gets a reduced public view that cannot enumerate a library."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from imgtag_dev.testing import Account, expect_error, unique_png

pytestmark = pytest.mark.e2e


def _create_key(client: httpx.Client, owner: Account, scopes: list[str], **extra) -> dict:
    reply = client.post(
        "/v1/users/me/apiKeys", json={"displayName": "script", "scopes": scopes, **extra}, headers=owner.headers
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _upload(client: httpx.Client, owner: Account, filename: str = "x.png") -> dict:
    reply = client.post(
        "/v1/assets:upload",
        params={"filename": filename},
        content=unique_png(),
        headers={"content-type": "image/png", **owner.headers},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_key_is_shown_once_stored_hashed_and_listed_without_its_secret(stack, anonymous, new_user) -> None:
    owner = new_user()
    created = _create_key(anonymous, owner, ["ASSETS_READ", "SEARCH"])
    secret, key = created["secret"], created["apiKey"]
    assert secret.startswith("itk_") and len(secret) > 40
    assert key["secretPrefix"] == secret[:10] and key["state"] == "ACTIVE"
    stored = stack.postgres.query(
        f"SELECT encode(secret_hash, 'hex') FROM api_keys WHERE id = '{key['name'].rsplit('/', 1)[1]}'",
        "imgtag_auth",
    )
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stack.postgres.query("SELECT string_agg(secret_prefix, ',') FROM api_keys", "imgtag_auth")
    assert anonymous.get("/v1/assets", headers={"x-api-key": secret}).status_code == 200
    listed = anonymous.get("/v1/users/me/apiKeys", headers=owner.headers)
    assert secret not in listed.text
    (entry,) = listed.json()["apiKeys"]
    assert entry["scopes"] == ["ASSETS_READ", "SEARCH"]
    assert entry["createTime"] and entry["lastUseTime"] and entry["secretPrefix"] == key["secretPrefix"]


def test_keys_work_in_both_headers_but_never_in_a_query_string(anonymous, new_user) -> None:
    owner = new_user()
    secret = _create_key(anonymous, owner, ["ASSETS_READ"])["secret"]
    assert anonymous.get("/v1/assets", headers={"x-api-key": secret}).status_code == 200
    assert anonymous.get("/v1/assets", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    for param in ("key", "api_key", "access_token"):
        reply = anonymous.get("/v1/assets", params={param: secret})
        assert reply.status_code in (400, 401), (param, reply.status_code)


def test_scopes_limit_what_a_key_can_do(anonymous, new_user) -> None:
    owner = new_user()
    read_only = _create_key(anonymous, owner, ["ASSETS_READ"])["secret"]
    expect_error(
        anonymous.post(
            "/v1/assets:upload",
            params={"filename": "x.png"},
            content=unique_png(),
            headers={"content-type": "image/png", "x-api-key": read_only},
        ),
        403,
        7,
        "API_KEY_SCOPE_MISSING",
    )
    expect_error(anonymous.get("/v1/assets:random", headers={"x-api-key": read_only}), 403, 7, "API_KEY_SCOPE_MISSING")
    uploader = _create_key(anonymous, owner, ["ASSETS_UPLOAD"])["secret"]
    uploaded = anonymous.post(
        "/v1/assets:upload",
        params={"filename": "by-key.png"},
        content=unique_png(),
        headers={"content-type": "image/png", "x-api-key": uploader},
    )
    assert uploaded.status_code == 200 and uploaded.json()["owner"] == owner.name
    expect_error(anonymous.get("/v1/assets", headers={"x-api-key": uploader}), 403, 7, "API_KEY_SCOPE_MISSING")


def test_keys_never_reach_account_or_admin_routes(anonymous, admin) -> None:
    admins_key = _create_key(anonymous, admin, ["ASSETS_READ", "ASSETS_WRITE", "SEARCH", "RANDOM", "ASSETS_UPLOAD"])
    secret = admins_key["secret"]
    for method, path in (
        ("GET", "/v1/users/me"),
        ("GET", "/v1/users"),
        ("POST", "/v1/users/me/apiKeys"),
        ("GET", "/v1/endpoints"),
        ("POST", "/v1/auth/jwks:rotate"),
    ):
        for headers in ({"x-api-key": secret}, {"authorization": f"Bearer {secret}"}):
            reply = anonymous.request(method, path, headers=headers, json={} if method == "POST" else None)
            assert reply.status_code in (401, 403), (method, path, reply.status_code, reply.text)


def test_revocation_works_immediately(anonymous, new_user) -> None:
    owner = new_user()
    created = _create_key(anonymous, owner, ["ASSETS_READ"])
    secret, name = created["secret"], created["apiKey"]["name"]
    assert anonymous.get("/v1/assets", headers={"x-api-key": secret}).status_code == 200
    revoked = anonymous.post(f"/v1/{name}:revoke", json={}, headers=owner.headers)
    assert revoked.json()["state"] == "REVOKED" and revoked.json()["revokeTime"]
    expect_error(anonymous.get("/v1/assets", headers={"x-api-key": secret}), 401, 16, "API_KEY_REVOKED")
    assert anonymous.post(f"/v1/{name}:revoke", json={}, headers=owner.headers).status_code == 200  # idempotent
    assert anonymous.get("/v1/users/me/apiKeys", headers=owner.headers).json().get("apiKeys", []) == []
    shown = anonymous.get("/v1/users/me/apiKeys", params={"show_inactive": "true"}, headers=owner.headers).json()
    assert [k["state"] for k in shown["apiKeys"]] == ["REVOKED"]


def test_expired_keys_stop_working(anonymous, new_user) -> None:
    owner = new_user()
    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    secret = _create_key(anonymous, owner, ["ASSETS_READ"], expireTime=expires)["secret"]
    assert anonymous.get("/v1/assets", headers={"x-api-key": secret}).status_code == 200
    time.sleep(2.5)
    expect_error(anonymous.get("/v1/assets", headers={"x-api-key": secret}), 401, 16, "API_KEY_EXPIRED")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    expect_error(
        anonymous.post(
            "/v1/users/me/apiKeys",
            json={"displayName": "old", "scopes": ["ASSETS_READ"], "expireTime": past},
            headers=owner.headers,
        ),
        400,
        3,
        "INVALID_EXPIRE_TIME",
    )


def test_a_disabled_owner_disables_their_keys_until_re_enabled(anonymous, admin, new_user) -> None:
    owner = new_user()
    secret = _create_key(anonymous, owner, ["ASSETS_READ"])["secret"]
    anonymous.post(f"/v1/{owner.name}:disable", json={}, headers=admin.headers).raise_for_status()
    expect_error(anonymous.get("/v1/assets", headers={"x-api-key": secret}), 401, 16, "USER_NOT_ACTIVE")
    anonymous.post(f"/v1/{owner.name}:enable", json={}, headers=admin.headers).raise_for_status()
    assert anonymous.get("/v1/assets", headers={"x-api-key": secret}).status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"displayName": "k", "scopes": []}, "INVALID_SCOPES"),
        ({"displayName": "", "scopes": ["ASSETS_READ"]}, "INVALID_DISPLAY_NAME"),
        ({"displayName": "k" * 101, "scopes": ["ASSETS_READ"]}, "INVALID_DISPLAY_NAME"),
        ({"displayName": "k", "scopes": ["ASSETS_READ"], "restriction": {"filter": "tag = "}}, "INVALID_FILTER"),
        (
            {"displayName": "k", "scopes": ["ASSETS_READ"], "restriction": {"collection": "albums/1"}},
            "INVALID_COLLECTION_NAME",
        ),
    ],
)
def test_bad_key_requests_are_refused(anonymous, user, body, reason) -> None:
    expect_error(anonymous.post("/v1/users/me/apiKeys", json=body, headers=user.headers), 400, 3, reason)


def test_users_manage_only_their_own_keys(anonymous, admin, new_user) -> None:
    alice, bob = new_user(), new_user()
    alices = _create_key(anonymous, alice, ["ASSETS_READ"])
    key_name = alices["apiKey"]["name"]
    expect_error(anonymous.post(f"/v1/{key_name}:revoke", json={}, headers=bob.headers), 404, 5)
    expect_error(anonymous.get(f"/v1/{alice.name}/apiKeys", headers=bob.headers), 404, 5)
    expect_error(
        anonymous.post(
            f"/v1/{alice.name}/apiKeys",
            json={"displayName": "mine now", "scopes": ["ASSETS_READ"]},
            headers=bob.headers,
        ),
        404,
        5,
    )
    expect_error(anonymous.get("/v1/users/-/apiKeys", headers=bob.headers), 400, 3)
    # Admins see every user's keys, secrets never.
    everyone = anonymous.get("/v1/users/-/apiKeys", params={"page_size": 500}, headers=admin.headers)
    assert key_name in everyone.text and alices["secret"] not in everyone.text
    assert anonymous.get("/v1/assets", headers={"x-api-key": alices["secret"]}).status_code == 200


def test_a_restricted_key_sees_only_what_its_restriction_allows(anonymous, new_user) -> None:
    owner = new_user()
    cat = _upload(anonymous, owner, "cat-on-sofa.png")
    dog = _upload(anonymous, owner, "dog-in-park.png")
    secret = _create_key(anonymous, owner, ["ASSETS_READ"], restriction={"filter": 'filename:"cat"'})["secret"]
    listed = anonymous.get("/v1/assets", headers={"x-api-key": secret}).json()
    assert [a["name"] for a in listed["assets"]] == [cat["name"]]
    # A filter the client adds narrows further; it never widens the restriction.
    widened = anonymous.get("/v1/assets", params={"filter": 'filename:"dog"'}, headers={"x-api-key": secret})
    assert widened.json().get("assets", []) == []
    assert dog["name"] not in anonymous.get("/v1/assets:random", headers={"x-api-key": secret}).text


def test_a_random_image_key_gets_a_reduced_public_view(anonymous, new_user) -> None:
    owner = new_user()
    uploaded = _upload(anonymous, owner, "IMG_2024_home_address.png")
    secret = _create_key(anonymous, owner, ["RANDOM"])["secret"]
    reply = anonymous.get("/v1/assets:random", params={"count": 5}, headers={"x-api-key": secret})
    assert reply.status_code == 200, reply.text
    (asset,) = reply.json()["assets"]
    assert asset["name"] == uploaded["name"]
    for private in ("owner", "filename", "sha256", "camera", "location", "sizeBytes", "createTime"):
        assert not asset.get(private) or asset[private] == "0", private  # absent or empty
    assert owner.name not in reply.text and "home_address" not in reply.text
    # The page can show it: the signed URL needs no header.
    picture = anonymous.get(asset["contentUrls"]["original"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    # ...but the key cannot list, read or download the library.
    for path in ("/v1/assets", f"/v1/{uploaded['name']}", f"/v1/{uploaded['name']}/content"):
        expect_error(anonymous.get(path, headers={"x-api-key": secret}), 403, 7, "API_KEY_SCOPE_MISSING")
    expect_error(
        anonymous.get("/v1/assets:random", params={"count": 1000}, headers={"x-api-key": secret}),
        400,
        3,
        "INVALID_COUNT",
    )
