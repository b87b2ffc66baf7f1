"""Access tokens: EdDSA (Ed25519) JWTs signed by a rotating key ring.

Rotation without a gap: a new key is published in the JWKS at once but signs only after
`prepublish` (the gateway's JWKS refresh interval), so the gateway knows it before the first
token signed with it arrives. A replaced key keeps verifying until every token it signed has
expired, then it is retired and its file deleted."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from imgtag_common.errors import Unauthenticated

ALGORITHM = "EdDSA"
# Tolerated clock difference between the auth service and whoever checks a token.
CLOCK_SKEW = timedelta(seconds=30)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key; `create_time` is when it was published."""

    private_key: Ed25519PrivateKey
    create_time: datetime

    @property
    def public_jwk(self) -> dict[str, str]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key: stable, and derived, never stored."""
        canonical = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":")).encode()
        return _b64url(hashlib.sha256(canonical).digest())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


class KeyStore(Protocol):
    """Where signing keys are kept (a 0600 file per key, or fixed keys from settings)."""

    @property
    def can_rotate(self) -> bool: ...
    def load(self) -> list[SigningKey]: ...
    def add(self, key: SigningKey) -> None: ...
    def remove(self, key: SigningKey) -> None: ...


class KeyRing:
    """Which key signs now and which keys verify, following the rotation schedule."""

    def __init__(
        self,
        store: KeyStore,
        *,
        rotation: timedelta,
        prepublish: timedelta,
        token_ttl: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._rotation = rotation
        self._prepublish = prepublish
        self._token_ttl = token_ttl
        self._clock = clock
        self._keys: list[SigningKey] = []

    def refresh(self) -> None:
        """Reload the keys; make the first one or the next one when due; retire spent ones."""
        now = self._clock()
        self._keys = sorted(self._store.load(), key=lambda k: k.create_time)
        if self._store.can_rotate:
            if not self._keys or self._keys[-1].create_time + self._rotation <= now:
                self._add(now)
            for spent in self._spent(now):
                self._store.remove(spent)
                self._keys.remove(spent)
        if not self._keys:
            raise RuntimeError("no signing key is configured")

    def rotate_now(self) -> SigningKey:
        if not self._store.can_rotate:
            raise RuntimeError("signing keys come from settings; rotate them there")
        return self._add(self._clock())

    def sign_start(self, key: SigningKey) -> datetime:
        # The very first key signs at once: no token exists that a gateway could have missed.
        return key.create_time if key is self._keys[0] else key.create_time + self._prepublish

    def signing_key(self) -> SigningKey:
        now = self._clock()
        ready = [k for k in self._keys if self.sign_start(k) <= now]
        return ready[-1] if ready else self._keys[0]

    def verification_keys(self) -> list[SigningKey]:
        return list(self._keys)

    def find(self, kid: str) -> SigningKey | None:
        return next((k for k in self._keys if k.kid == kid), None)

    def _add(self, now: datetime) -> SigningKey:
        key = SigningKey(private_key=Ed25519PrivateKey.generate(), create_time=now)
        self._store.add(key)
        self._keys.append(key)
        return key

    def _spent(self, now: datetime) -> list[SigningKey]:
        """Keys replaced by a successor that has signed for longer than a token lives."""
        spent = []
        for older, newer in zip(self._keys, self._keys[1:], strict=False):
            if self.sign_start(newer) + self._token_ttl + CLOCK_SKEW < now and older is not self.signing_key():
                spent.append(older)
        return spent


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expire_time: datetime


class AccessTokens:
    """Issues and verifies access tokens (the gateway verifies them too, from the JWKS)."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl
        self._clock = clock

    def issue(self, *, user_id: uuid.UUID, username: str, role: str, session_id: uuid.UUID) -> tuple[str, datetime]:
        now = self._clock()
        expire = now + self._ttl
        key = self._keys.signing_key()
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": f"users/{user_id}",
            "sid": str(session_id),
            "role": role,
            "preferred_username": username,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expire.timestamp()),
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, expire

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; UNAUTHENTICATED (reason INVALID_ACCESS_TOKEN) for anything
        else: malformed, expired, not yet valid, another algorithm (none, HS256), unknown kid."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
            key = self._keys.find(str(header.get("kid", "")))
            if key is None:
                raise jwt.InvalidKeyError("unknown signing key")
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # Times are checked below against this service's clock (testable, one skew rule).
                options={
                    "require": ["exp", "iat", "nbf", "sub", "sid", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
            now = self._clock().timestamp()
            if float(claims["exp"]) + CLOCK_SKEW.total_seconds() <= now:
                raise jwt.ExpiredSignatureError("expired")
            if float(claims["nbf"]) - CLOCK_SKEW.total_seconds() > now:
                raise jwt.ImmatureSignatureError("not yet valid")
            return AccessClaims(
                user_id=uuid.UUID(str(claims["sub"]).removeprefix("users/")),
                session_id=uuid.UUID(str(claims["sid"])),
                expire_time=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the access token has expired", reason="ACCESS_TOKEN_EXPIRED") from error
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as error:
            raise Unauthenticated("the access token is not valid", reason="INVALID_ACCESS_TOKEN") from error

    def jwks(self) -> list[dict[str, str]]:
        return [{**k.public_jwk, "kid": k.kid, "use": "sig", "alg": ALGORITHM} for k in self._keys.verification_keys()]
