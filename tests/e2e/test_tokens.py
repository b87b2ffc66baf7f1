"""Tokens through the real gateway (and straight at a service, past it): every kind of bad access
token is refused at both layers; refresh tokens rotate, and reuse ends the session; logout and
password changes end sessions at once; signing keys rotate without breaking anyone; forged
identity headers get nobody anywhere; failed attempts are rate limited with a clear 429."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from imgtag.catalog.v1 import assets_pb2, catalog_pb2_grpc
from imgtag_dev.testing import (
    FAILURE_WINDOW_S,
    USER_PASSWORD,
    Account,
    channel_as,
    expect_error,
    login,
)

pytestmark = pytest.mark.e2e


def _header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def _claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict, claims: dict, signature: bytes | None = None, hmac_key: bytes | None = None) -> str:
    """A JWT built by hand, so it can be anything a library would refuse to make."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature or b"")


def _signing_key(stack, kid: str) -> Ed25519PrivateKey:
    for path in (stack.settings.data_dir / "auth-keys").glob("*.pem"):
        if path.stem.endswith(kid):
            return load_pem_private_key(path.read_bytes(), password=None)
    raise AssertionError(f"no key file for {kid}")


def _refused_everywhere(stack, anonymous: httpx.Client, token: str, status: int = 401) -> None:
    """A JSON error at the gateway, and UNAUTHENTICATED from a service called directly."""
    code = {401: 16, 403: 7}[status]
    expect_error(anonymous.get("/v1/users/me", headers={"authorization": f"Bearer {token}"}), status, code)
    expect_error(anonymous.get("/v1/assets", headers={"authorization": f"Bearer {token}"}), status, code)

    async def direct() -> grpc.StatusCode:
        async with channel_as(stack.service_target("catalog"), lambda: (("authorization", f"Bearer {token}"),)) as ch:
            try:
                await catalog_pb2_grpc.CatalogServiceStub(ch).ListAssets(assets_pb2.ListAssetsRequest())
            except grpc.aio.AioRpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    import asyncio

    assert asyncio.run(direct()) is grpc.StatusCode.UNAUTHENTICATED


def test_bad_access_tokens_are_refused_at_the_edge_and_by_the_services(stack, anonymous, user: Account) -> None:
    real = user.access_token
    kid = _header(real)["kid"]
    key = _signing_key(stack, kid)
    claims = _claims(real)
    now = int(time.time())

    def signed(changes: dict, *, with_key=key, headers=None) -> str:
        return jwt.encode({**claims, **changes}, with_key, algorithm="EdDSA", headers=headers or {"kid": kid})

    public_key = key.public_key()
    public_forms = {
        "raw": public_key.public_bytes(Encoding.Raw, PublicFormat.Raw),
        "pem": public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "jwk x": _b64(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).encode(),
    }
    hs256 = {
        f"HS256 keyed with the public key ({form})": _hand_made({"alg": "HS256", "kid": kid}, claims, hmac_key=value)
        for form, value in public_forms.items()
    }
    bad = {
        "garbage": "not-a-token",
        "three dots": "a.b.c",
        "truncated": real[:-10],
        "expired": signed({"exp": now - 120, "iat": now - 900, "nbf": now - 900}),
        "not yet valid": signed({"nbf": now + 3600, "iat": now + 3600, "exp": now + 4000}),
        "wrong issuer": signed({"iss": "someone-else"}),
        "wrong audience": signed({"aud": "another-app"}),
        "other key, same kid": signed({}, with_key=Ed25519PrivateKey.generate()),
        "unknown kid": signed({}, headers={"kid": "no-such-key"}),
        "alg none": _hand_made({"alg": "none", "kid": kid}, claims),
        "alg none, real signature kept": real.rsplit(".", 1)[0].replace(real.split(".")[0], _b64(b'{"alg":"none"}'))
        + "."
        + real.rsplit(".", 1)[1],
        **hs256,
        "no session": signed({"sid": str(uuid.uuid4())}),
        "someone else's session": signed({"sub": f"users/{uuid.uuid4()}"}),
    }
    for label, token in bad.items():
        # Envoy answers a well-signed token meant for another audience with 403, the rest 401.
        status = 403 if label == "wrong audience" else 401
        try:
            _refused_everywhere(stack, anonymous, token, status)
        except AssertionError as error:
            raise AssertionError(f"{label}: {error}") from error
    # The genuine token still works: the refusals above are about the tokens.
    assert anonymous.get("/v1/users/me", headers=user.headers).status_code == 200


def test_oversized_authorization_headers_are_refused(anonymous: httpx.Client) -> None:
    reply = anonymous.get("/v1/users/me", headers={"authorization": "Bearer " + "a" * 100_000})
    assert reply.status_code in (401, 431), reply.status_code
    if reply.status_code == 401:
        expect_error(reply, 401, 16)


def test_refresh_tokens_rotate_and_reuse_ends_the_session(anonymous: httpx.Client, gateway_url: str) -> None:
    account = login(gateway_url, "tester", USER_PASSWORD)
    first = anonymous.post("/v1/auth/session:refresh", json={"refreshToken": account.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()["tokens"]
    assert rotated["refreshToken"] != account.refresh_token
    assert _claims(rotated["accessToken"])["sid"] == _claims(account.access_token)["sid"]
    # The old token again: someone copied it. The whole session ends, newest tokens included.
    expect_error(
        anonymous.post("/v1/auth/session:refresh", json={"refreshToken": account.refresh_token}),
        401,
        16,
        "REFRESH_TOKEN_REUSED",
    )
    expect_error(anonymous.post("/v1/auth/session:refresh", json={"refreshToken": rotated["refreshToken"]}), 401, 16)
    expect_error(anonymous.get("/v1/users/me", headers={"authorization": f"Bearer {rotated['accessToken']}"}), 401, 16)


def test_the_refresh_cookie_is_http_only_scoped_and_works(gateway_url: str) -> None:
    with httpx.Client(base_url=gateway_url, timeout=30) as browser_like:
        reply = browser_like.post("/v1/auth:login", json={"login": "tester", "password": USER_PASSWORD})
        cookie = reply.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/v1/auth/" in cookie
        refreshed = browser_like.post("/v1/auth/session:refresh", json={})
        assert refreshed.status_code == 200, refreshed.text
        logout = browser_like.post("/v1/auth/session:logout", json={})
        assert logout.status_code == 200 and "Max-Age=0" in logout.headers["set-cookie"]
        expect_error(browser_like.post("/v1/auth/session:refresh", json={}), 401, 16)


def test_garbage_refresh_tokens_are_refused(anonymous: httpx.Client) -> None:
    for token in ("", "itr_" + "A" * 43, "x" * 5000, "itr_\u00e9\u00e9"):
        expect_error(anonymous.post("/v1/auth/session:refresh", json={"refreshToken": token}), 401, 16)


def test_logout_ends_the_session_at_once(anonymous: httpx.Client, gateway_url: str) -> None:
    account = login(gateway_url, "tester", USER_PASSWORD)
    assert anonymous.get("/v1/users/me", headers=account.headers).status_code == 200
    assert anonymous.post("/v1/auth/session:logout", json={"refreshToken": account.refresh_token}).status_code == 200
    expect_error(anonymous.get("/v1/users/me", headers=account.headers), 401, 16, "SESSION_ENDED")
    expect_error(anonymous.post("/v1/auth/session:refresh", json={"refreshToken": account.refresh_token}), 401, 16)
    # Logging out twice, or with nonsense, is fine (idempotent).
    assert anonymous.post("/v1/auth/session:logout", json={"refreshToken": account.refresh_token}).status_code == 200
    assert anonymous.post("/v1/auth/session:logout", json={"refreshToken": "itr_nonsense"}).status_code == 200


def test_changing_a_password_ends_the_other_sessions(anonymous: httpx.Client, new_user, gateway_url: str) -> None:
    person = new_user()
    laptop, phone = person, login(gateway_url, person.username, USER_PASSWORD)
    expect_error(
        anonymous.post(
            "/v1/users/me:changePassword",
            json={"currentPassword": "not it at all", "newPassword": "another passphrase"},
            headers=laptop.headers,
        ),
        401,
        16,
        "INVALID_PASSWORD",
    )
    expect_error(
        anonymous.post(
            "/v1/users/me:changePassword",
            json={"currentPassword": USER_PASSWORD, "newPassword": "short"},
            headers=laptop.headers,
        ),
        400,
        3,
        "PASSWORD_TOO_SHORT",
    )
    changed = anonymous.post(
        "/v1/users/me:changePassword",
        json={"currentPassword": USER_PASSWORD, "newPassword": "another passphrase"},
        headers=laptop.headers,
    )
    assert changed.status_code == 200, changed.text
    assert anonymous.get("/v1/users/me", headers=laptop.headers).status_code == 200  # this session stays
    expect_error(anonymous.get("/v1/users/me", headers=phone.headers), 401, 16)  # the others end now
    expect_error(anonymous.post("/v1/auth/session:refresh", json={"refreshToken": phone.refresh_token}), 401, 16)
    login(gateway_url, person.username, "another passphrase")


def test_signing_keys_rotate_without_breaking_anyone(stack, anonymous: httpx.Client, admin: Account, user) -> None:
    old_token = user.access_token
    old_kid = _header(old_token)["kid"]
    expect_error(anonymous.post("/v1/auth/jwks:rotate", json={}, headers=user.headers), 403, 7, "ADMIN_REQUIRED")
    rotated = anonymous.post("/v1/auth/jwks:rotate", json={}, headers=admin.headers).json()
    new_kid = rotated["kid"]
    assert new_kid != old_kid
    # Published at once, before it signs anything, next to the old key.
    kids = {k["kid"] for k in anonymous.get("/v1/auth/jwks").json()["keys"]}
    assert {old_kid, new_kid} <= kids
    sign_start = datetime.fromisoformat(rotated["signStartTime"])
    assert sign_start > datetime.now(UTC)
    time.sleep(max(0.0, (sign_start - datetime.now(UTC)).total_seconds()) + 2.5)  # + one gateway JWKS refresh
    fresh = login(str(anonymous.base_url), user.username, USER_PASSWORD)
    assert _header(fresh.access_token)["kid"] == new_kid
    assert anonymous.get("/v1/assets", headers=fresh.headers).status_code == 200
    # Tokens signed by the previous key keep working until they expire.
    assert anonymous.get("/v1/assets", headers={"authorization": f"Bearer {old_token}"}).status_code == 200


def test_signing_key_files_are_private(stack) -> None:
    keys_dir: Path = stack.settings.data_dir / "auth-keys"
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    files = list(keys_dir.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE((stack.settings.data_dir / "service-secret").stat().st_mode) == 0o600


def test_forged_identity_headers_get_nobody_anywhere(stack, anonymous: httpx.Client, user: Account) -> None:
    now = int(time.time())
    admin_claims = {"user": "users/" + str(uuid.uuid4()), "role": "admin", "cred": "access_token"}
    forged = {
        "guessed secret": jwt.encode(
            {
                "iss": "imgtag-services",
                "aud": "imgtag-internal",
                "sub": "catalog",
                "iat": now,
                "exp": now + 60,
                "obo": admin_claims,
            },
            "guess",
            algorithm="HS256",
        ),
        # Even the real secret does not help from outside: the gateway strips the header.
        "real secret": jwt.encode(
            {
                "iss": "imgtag-services",
                "aud": "imgtag-internal",
                "sub": "catalog",
                "iat": now,
                "exp": now + 60,
                "obo": admin_claims,
            },
            stack.service_secret,
            algorithm="HS256",
        ),
    }
    for label, token in forged.items():
        headers = {"x-imgtag-service-token": token, "x-imgtag-client-address": "10.9.8.7"}
        for path in ("/v1/users", "/v1/assets", "/v1/endpoints"):
            assert anonymous.get(path, headers=headers).status_code == 401, (label, path)
        # With a real user's token, a forged service credential changes nothing: still that user.
        expect_error(anonymous.get("/v1/users", headers={**headers, **user.headers}), 403, 7, "ADMIN_REQUIRED")
        assert anonymous.get("/v1/users/me", headers={**headers, **user.headers}).json()["name"] == user.name
    # Identity-looking headers a client might try are ignored too.
    spoof = {"x-user": "admin", "x-forwarded-user": "admin", "x-jwt-payload": "e30", "x-imgtag-principal": "admin"}
    expect_error(anonymous.get("/v1/users", headers=spoof), 401, 16)


def test_failed_logins_are_rate_limited_with_a_clear_429(anonymous: httpx.Client, new_user) -> None:
    person = new_user()
    for _ in range(10):
        # A forged client address does not spread the attempts: the gateway sets it.
        headers = {"x-imgtag-client-address": f"10.0.0.{_}", "x-forwarded-for": f"10.1.1.{_}"}
        expect_error(
            anonymous.post(
                "/v1/auth:login", json={"login": person.username, "password": "guess!guess!"}, headers=headers
            ),
            401,
            16,
            "INVALID_LOGIN",
        )
    body = expect_error(
        anonymous.post("/v1/auth:login", json={"login": person.username, "password": USER_PASSWORD}),
        429,
        8,
        "TOO_MANY_ATTEMPTS",
    )
    assert "try again" in body["message"]
    time.sleep(FAILURE_WINDOW_S + 0.5)  # the window passes; the right password works again
    login(str(anonymous.base_url), person.username, USER_PASSWORD)


def test_failed_api_keys_are_rate_limited_with_a_clear_429(anonymous: httpx.Client, new_user) -> None:
    person = new_user()
    key = anonymous.post(
        "/v1/users/me/apiKeys", json={"displayName": "k", "scopes": ["ASSETS_READ"]}, headers=person.headers
    ).json()["secret"]
    replies = [anonymous.get("/v1/assets", headers={"x-api-key": "itk_wrong" + str(i)}) for i in range(32)]
    assert {r.status_code for r in replies[:30]} == {401}
    expect_error(replies[-1], 429, 8, "TOO_MANY_ATTEMPTS")
    time.sleep(FAILURE_WINDOW_S + 0.5)
    assert anonymous.get("/v1/assets", headers={"x-api-key": key}).status_code == 200


def test_access_tokens_carry_the_documented_claims(stack, user: Account) -> None:
    header, claims = _header(user.access_token), _claims(user.access_token)
    assert header["alg"] == "EdDSA" and header["kid"]
    assert {"iss", "aud", "sub", "sid", "exp", "iat", "nbf", "jti", "role"} <= set(claims)
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("imgtag", "imgtag", user.name)
    # Short-lived: the configured lifetime, minutes not days.
    lifetime = timedelta(seconds=claims["exp"] - claims["iat"])
    assert lifetime == timedelta(seconds=stack.auth_settings.access_token_ttl_s) <= timedelta(hours=1)
