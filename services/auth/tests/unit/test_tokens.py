"""The signing key ring's schedule, with a fake clock: a new key is published before it signs,
the old one verifies until its tokens have expired, then it is retired; tokens of every other
algorithm or key are refused."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from imgtag_auth.adapters.keyfiles import FixedKey, KeyDirectory
from imgtag_auth.domain.tokens import AccessTokens, KeyRing
from imgtag_common.errors import Unauthenticated

TTL = timedelta(minutes=10)
PREPUBLISH = timedelta(minutes=5)
ROTATION = timedelta(days=30)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ring(directory: Path, clock: Clock) -> KeyRing:
    return KeyRing(KeyDirectory(directory), rotation=ROTATION, prepublish=PREPUBLISH, token_ttl=TTL, clock=clock)


def tokens(keys: KeyRing, clock: Clock) -> AccessTokens:
    return AccessTokens(keys, issuer="imgtag", audience="imgtag", ttl=TTL, clock=clock)


def issue(access: AccessTokens) -> str:
    return access.issue(user_id=uuid.uuid4(), username="u", role="user", session_id=uuid.uuid4())[0]


def test_first_key_is_made_private_and_signs_at_once(tmp_path: Path, clock: Clock) -> None:
    keys = ring(tmp_path / "keys", clock)
    keys.refresh()
    (path,) = (tmp_path / "keys").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert jwt.get_unverified_header(issue(tokens(keys, clock)))["kid"] == keys.signing_key().kid


def test_rotation_publishes_first_signs_later_and_retires_after_the_last_token_expires(
    tmp_path: Path, clock: Clock
) -> None:
    keys = ring(tmp_path, clock)
    keys.refresh()
    access = tokens(keys, clock)
    old_key = keys.signing_key()
    clock.now += ROTATION - timedelta(minutes=1)
    old_token = issue(access)  # signed a minute before the key is due to be replaced

    clock.now += timedelta(minutes=1)
    keys.refresh()  # due: a new key is made
    new_key = keys.verification_keys()[-1]
    assert new_key.kid != old_key.kid
    assert {k["kid"] for k in access.jwks()} == {old_key.kid, new_key.kid}  # published ...
    assert keys.signing_key().kid == old_key.kid  # ... but not signing until the gateway has it
    clock.now += PREPUBLISH
    assert keys.signing_key().kid == new_key.kid
    assert access.verify(old_token)  # the old key still verifies what it signed

    clock.now += TTL + timedelta(minutes=1)
    keys.refresh()  # every token of the old key has expired: retired, file deleted
    assert [k.kid for k in keys.verification_keys()] == [new_key.kid]
    assert len(list(tmp_path.glob("*.pem"))) == 1
    with pytest.raises(Unauthenticated):
        access.verify(old_token)


def test_a_restart_reloads_the_same_keys(tmp_path: Path, clock: Clock) -> None:
    first = ring(tmp_path, clock)
    first.refresh()
    token = issue(tokens(first, clock))
    second = ring(tmp_path, clock)
    second.refresh()
    assert tokens(second, clock).verify(token)


def test_a_fixed_key_from_settings_signs_and_never_rotates(clock: Clock) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    keys = KeyRing(FixedKey(pem), rotation=ROTATION, prepublish=PREPUBLISH, token_ttl=TTL, clock=clock)
    keys.refresh()
    clock.now += ROTATION * 3
    keys.refresh()
    assert len(keys.verification_keys()) == 1
    with pytest.raises(RuntimeError):
        keys.rotate_now()
    assert tokens(keys, clock).verify(issue(tokens(keys, clock)))


def test_tokens_outside_their_lifetime_are_refused(tmp_path: Path, clock: Clock) -> None:
    keys = ring(tmp_path, clock)
    keys.refresh()
    access = tokens(keys, clock)
    token = issue(access)
    clock.now += TTL + timedelta(minutes=1)  # past the lifetime and the clock skew allowed
    with pytest.raises(Unauthenticated) as caught:
        access.verify(token)
    assert caught.value.reason == "ACCESS_TOKEN_EXPIRED"


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_other_algorithms_are_refused_even_with_a_known_kid(tmp_path: Path, clock: Clock, algorithm: str) -> None:
    keys = ring(tmp_path, clock)
    keys.refresh()
    access = tokens(keys, clock)
    claims = jwt.decode(issue(access), options={"verify_signature": False})
    forged = jwt.encode(
        claims, "secret" if algorithm == "HS256" else None, algorithm=algorithm, headers={"kid": keys.signing_key().kid}
    )
    with pytest.raises(Unauthenticated) as caught:
        access.verify(forged)
    assert caught.value.reason == "INVALID_ACCESS_TOKEN"
