"""Accounts through the real gateway: registration awaiting approval, the registration modes an
admin sets at runtime, what admins do to users, the rules for names, emails and passwords (with
Unicode look-alikes), and that bad input changes nothing."""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from imgtag_dev.testing import USER_PASSWORD, Account, expect_error, login, register_and_approve

pytestmark = pytest.mark.e2e


def _name() -> str:
    return "u" + secrets.token_hex(5)


def _register(client: httpx.Client, username: str, password: str = USER_PASSWORD, email: str | None = None):
    return client.post(
        "/v1/users:register",
        json={"username": username, "email": email or f"{username}@example.com", "password": password},
    )


def _fullwidth(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01..), which NFKC maps back."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _user_count(stack) -> int:
    return int(stack.postgres.query("SELECT count(*) FROM users", "imgtag_auth"))


@pytest.fixture
def registration_mode(anonymous: httpx.Client, admin: Account) -> Iterator:
    """Set the registration mode for one test and put the default back afterwards."""

    def set_mode(mode: str) -> httpx.Response:
        return anonymous.patch(
            "/v1/registrationSettings",
            params={"update_mask": "mode"},
            json={"mode": mode},
            headers=admin.headers,
        )

    yield set_mode
    assert set_mode("APPROVAL_REQUIRED").status_code == 200


def test_a_registered_account_waits_for_approval_then_signs_in(anonymous: httpx.Client, admin: Account) -> None:
    username = _name()
    registered = _register(anonymous, username)
    assert registered.status_code == 200, registered.text
    user = registered.json()
    assert user["state"] == "PENDING" and user["role"] == "USER"
    assert "password" not in registered.text.lower().replace("password_", "")
    # Right password, pending account: told so (only after the password was right).
    expect_error(
        anonymous.post("/v1/auth:login", json={"login": username, "password": USER_PASSWORD}),
        403,
        7,
        "USER_PENDING_APPROVAL",
    )
    # Wrong password: the same answer as for anybody, revealing nothing about the account.
    expect_error(
        anonymous.post("/v1/auth:login", json={"login": username, "password": "not-the-password"}),
        401,
        16,
        "INVALID_LOGIN",
    )
    pending = anonymous.get("/v1/users", params={"filter": "state = PENDING"}, headers=admin.headers).json()
    assert user["name"] in [u["name"] for u in pending["users"]]
    assert all(u["state"] == "PENDING" for u in pending["users"])
    approved = anonymous.post(f"/v1/{user['name']}:approve", json={}, headers=admin.headers)
    assert approved.json()["state"] == "ACTIVE"
    signed_in = login(str(anonymous.base_url), username, USER_PASSWORD)
    me = anonymous.get("/v1/users/me", headers=signed_in.headers).json()
    assert me["name"] == user["name"] and me["lastLoginTime"]


def test_rejected_accounts_cannot_sign_in(anonymous: httpx.Client, admin: Account) -> None:
    username = _name()
    user = _register(anonymous, username).json()
    rejected = anonymous.post(f"/v1/{user['name']}:reject", json={"reason": "unknown"}, headers=admin.headers)
    assert rejected.json()["state"] == "REJECTED"
    expect_error(
        anonymous.post("/v1/auth:login", json={"login": username, "password": USER_PASSWORD}), 403, 7, "USER_REJECTED"
    )
    # Rejecting twice is a state error, not a silent success.
    expect_error(anonymous.post(f"/v1/{user['name']}:reject", json={}, headers=admin.headers), 400, 9, "NOT_PENDING")


def test_registration_modes_are_set_at_runtime_by_an_admin(
    anonymous: httpx.Client, admin: Account, user: Account, registration_mode, stack
) -> None:
    assert anonymous.get("/v1/registrationSettings").json()["mode"] == "APPROVAL_REQUIRED"
    expect_error(
        anonymous.patch(
            "/v1/registrationSettings", params={"update_mask": "mode"}, json={"mode": "CLOSED"}, headers=user.headers
        ),
        403,
        7,
        "ADMIN_REQUIRED",
    )
    assert registration_mode("CLOSED").json()["mode"] == "CLOSED"
    before = _user_count(stack)
    expect_error(_register(anonymous, _name()), 400, 9, "REGISTRATION_CLOSED")
    assert _user_count(stack) == before
    # With registration closed, admins create accounts themselves.
    username = _name()
    created = anonymous.post(
        "/v1/users",
        json={"username": username, "email": f"{username}@example.com", "password": USER_PASSWORD},
        headers=admin.headers,
    )
    assert created.json()["state"] == "ACTIVE"
    login(str(anonymous.base_url), username, USER_PASSWORD)
    assert registration_mode("AUTO_APPROVE").json()["mode"] == "AUTO_APPROVE"
    auto = _name()
    assert _register(anonymous, auto).json()["state"] == "ACTIVE"
    login(str(anonymous.base_url), auto, USER_PASSWORD)


def test_disabling_a_user_ends_their_sessions_at_once_and_enabling_restores_access(
    anonymous: httpx.Client, admin: Account, new_user
) -> None:
    person = new_user()
    assert anonymous.get("/v1/users/me", headers=person.headers).status_code == 200
    disabled = anonymous.post(f"/v1/{person.name}:disable", json={}, headers=admin.headers)
    assert disabled.json()["state"] == "DISABLED"
    # Not within the token's lifetime: now (the services ask the auth service on every call).
    expect_error(anonymous.get("/v1/users/me", headers=person.headers), 401, 16)
    expect_error(anonymous.get("/v1/assets", headers=person.headers), 401, 16)
    expect_error(anonymous.post("/v1/auth/session:refresh", json={"refreshToken": person.refresh_token}), 401, 16)
    expect_error(
        anonymous.post("/v1/auth:login", json={"login": person.username, "password": USER_PASSWORD}),
        403,
        7,
        "USER_DISABLED",
    )
    assert anonymous.post(f"/v1/{person.name}:enable", json={}, headers=admin.headers).json()["state"] == "ACTIVE"
    again = login(str(anonymous.base_url), person.username, USER_PASSWORD)
    assert anonymous.get("/v1/users/me", headers=again.headers).status_code == 200


def test_admin_sets_roles_and_passwords_and_deletes_users(anonymous: httpx.Client, admin: Account, new_user) -> None:
    person = new_user()
    promoted = anonymous.post(f"/v1/{person.name}:setRole", json={"role": "ADMIN"}, headers=admin.headers)
    assert promoted.json()["role"] == "ADMIN"
    # The role takes effect on the next request, not the next token.
    assert anonymous.get("/v1/users", headers=person.headers).status_code == 200
    assert anonymous.post(f"/v1/{person.name}:setRole", json={"role": "USER"}, headers=admin.headers).status_code == 200
    expect_error(anonymous.get("/v1/users", headers=person.headers), 403, 7, "ADMIN_REQUIRED")

    new_password = "a brand new passphrase"
    reset = anonymous.post(f"/v1/{person.name}:setPassword", json={"newPassword": new_password}, headers=admin.headers)
    assert reset.status_code == 200
    expect_error(anonymous.get("/v1/users/me", headers=person.headers), 401, 16)  # sessions ended
    expect_error(anonymous.post("/v1/auth:login", json={"login": person.username, "password": USER_PASSWORD}), 401, 16)
    fresh = login(str(anonymous.base_url), person.username, new_password)

    assert anonymous.delete(f"/v1/{person.name}", headers=admin.headers).status_code == 200
    expect_error(anonymous.get("/v1/users/me", headers=fresh.headers), 401, 16)
    expect_error(anonymous.get(f"/v1/{person.name}", headers=admin.headers), 404, 5, "USER_NOT_FOUND")
    expect_error(anonymous.post("/v1/auth:login", json={"login": person.username, "password": new_password}), 401, 16)


def test_admins_cannot_lock_themselves_out(anonymous: httpx.Client, admin: Account) -> None:
    for action, body in ((":disable", {}), (":setRole", {"role": "USER"})):
        expect_error(
            anonymous.post(f"/v1/{admin.name}{action}", json=body, headers=admin.headers), 400, 9, "SELF_LOCKOUT"
        )
    expect_error(anonymous.delete(f"/v1/{admin.name}", headers=admin.headers), 400, 9, "SELF_LOCKOUT")
    me = anonymous.get("/v1/users/me", headers=admin.headers).json()
    assert (me["role"], me["state"]) == ("ADMIN", "ACTIVE")


def test_users_see_only_themselves(anonymous: httpx.Client, new_user) -> None:
    alice, bob = new_user(), new_user()
    assert anonymous.get(f"/v1/{alice.name}", headers=alice.headers).json()["username"] == alice.username
    assert anonymous.get("/v1/users/me", headers=alice.headers).json()["name"] == alice.name
    expect_error(anonymous.get(f"/v1/{alice.name}", headers=bob.headers), 404, 5, "USER_NOT_FOUND")
    expect_error(anonymous.get("/v1/users", headers=bob.headers), 403, 7, "ADMIN_REQUIRED")
    expect_error(
        anonymous.patch(
            f"/v1/{alice.name}", params={"update_mask": "display_name"}, json={"displayName": "x"}, headers=bob.headers
        ),
        404,
        5,
    )
    mine = anonymous.patch(
        "/v1/users/me", params={"update_mask": "display_name"}, json={"displayName": "爱丽丝"}, headers=alice.headers
    )
    assert mine.json()["displayName"] == "爱丽丝"


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("ab", "INVALID_USERNAME"),
        ("x" * 33, "INVALID_USERNAME"),
        ("has space", "INVALID_USERNAME"),
        ("slash/name", "INVALID_USERNAME"),
        ("\u0430lice" + secrets.token_hex(2), "INVALID_USERNAME"),  # Cyrillic a
        ("bad\x00name", "INVALID_USERNAME"),
    ],
)
def test_bad_usernames_are_refused_and_nothing_is_stored(anonymous: httpx.Client, stack, username, reason) -> None:
    before = _user_count(stack)
    expect_error(_register(anonymous, username, email=f"{_name()}@example.com"), 400, 3, reason)
    assert _user_count(stack) == before


def test_usernames_and_emails_are_unique_across_case_and_width(anonymous: httpx.Client, stack) -> None:
    base = "Case" + secrets.token_hex(3)
    assert _register(anonymous, base, email=f"{base}@Example.com").status_code == 200
    before = _user_count(stack)
    for other in (base.lower(), base.upper(), _fullwidth(base)):
        expect_error(_register(anonymous, other, email=f"{_name()}@example.com"), 409, 6, "USERNAME_TAKEN")
    expect_error(_register(anonymous, _name(), email=f"{base.lower()}@EXAMPLE.COM"), 409, 6, "EMAIL_TAKEN")
    assert _user_count(stack) == before


@pytest.mark.parametrize(
    ("email", "reason"),
    [("not-an-email", "INVALID_EMAIL"), ("a@b", "INVALID_EMAIL"), ("\u0430dmin@example.com", "INVALID_EMAIL")],
)
def test_bad_emails_are_refused(anonymous: httpx.Client, email: str, reason: str) -> None:
    expect_error(_register(anonymous, _name(), email=email), 400, 3, reason)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "PASSWORD_REQUIRED"),
        ("short", "PASSWORD_TOO_SHORT"),
        ("x" * 257, "PASSWORD_TOO_LONG"),
        ("y" * 1_000_000, "PASSWORD_TOO_LONG"),
        ("ten chars\x07!", "INVALID_PASSWORD"),
    ],
)
def test_bad_passwords_are_refused_and_nothing_is_stored(anonymous: httpx.Client, stack, password, reason) -> None:
    before = _user_count(stack)
    expect_error(_register(anonymous, _name(), password=password), 400, 3, reason)
    assert _user_count(stack) == before


def test_non_utf8_and_malformed_bodies_are_400_json(anonymous: httpx.Client, stack) -> None:
    before = _user_count(stack)
    body = (
        b'{"username": "u' + secrets.token_hex(3).encode() + b'", "email": "x@example.com", "password": "\xff\xfe\xfd"}'
    )
    expect_error(
        anonymous.post("/v1/users:register", content=body, headers={"content-type": "application/json"}), 400, 3
    )
    expect_error(
        anonymous.post("/v1/auth:login", content=b"\xff{", headers={"content-type": "application/json"}), 400, 3
    )
    assert _user_count(stack) == before


def test_passwords_are_unicode_normalized(anonymous: httpx.Client, admin: Account) -> None:
    """A password typed with full-width characters (some Chinese input methods) signs in as the
    same password typed in ASCII, and argon2id is what is stored."""
    username = _name()
    account = register_and_approve(str(anonymous.base_url), admin, username, password=_fullwidth("password123"))
    assert login(str(anonymous.base_url), username, "password123").name == account.name


def test_passwords_are_stored_only_as_argon2id_hashes(stack, user: Account) -> None:
    stored = stack.postgres.query(
        f"SELECT password_hash FROM users WHERE id = '{user.name.removeprefix('users/')}'", "imgtag_auth"
    )
    assert stored.startswith("$argon2id$") and USER_PASSWORD not in stored


def test_unknown_login_and_wrong_password_look_the_same(anonymous: httpx.Client, user: Account) -> None:
    def attempt(login_name: str) -> tuple[float, dict]:
        started = time.perf_counter()
        reply = anonymous.post("/v1/auth:login", json={"login": login_name, "password": "wrong password!"})
        elapsed = time.perf_counter() - started
        body = expect_error(reply, 401, 16, "INVALID_LOGIN")
        return elapsed, body

    unknown = [attempt("nobody-" + secrets.token_hex(4)) for _ in range(5)]
    wrong = [attempt(user.username) for _ in range(5)]
    assert {b["message"] for _, b in unknown} == {b["message"] for _, b in wrong}
    # Both paths run one argon2 verification: their times are of the same order.
    ratio = statistics.median(t for t, _ in unknown) / statistics.median(t for t, _ in wrong)
    assert 0.33 < ratio < 3, ratio
