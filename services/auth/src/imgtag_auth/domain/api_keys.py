"""API keys: long-lived credentials for scripts and web pages, limited by scopes, an optional
expiry and an optional restriction. The secret is shown once and stored as a SHA-256 hash (it
has 256 random bits, so a slow hash adds nothing and a fast one allows lookup by hash)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from imgtag_auth.domain.models import ApiKeyRecord, Page, UserState
from imgtag_auth.domain.ports import AuthStore
from imgtag_auth.domain.ratelimit import FailureLimiter
from imgtag_common.access import API_KEY_PREFIX
from imgtag_common.auth import SCOPES, CredentialKind, Principal
from imgtag_common.errors import InvalidArgument, NotFound, Unauthenticated
from imgtag_common.filtering import parse_filter
from imgtag_common.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor
from imgtag_common.resources import parse_resource_id

_MAX_DISPLAY_NAME = 100
_MAX_SECRET_LENGTH = 200
# last_use_time is written at most this often per key, so heavy use does not mean heavy writes.
_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiKey:
    display_name: str
    scopes: frozenset[str]
    expire_time: datetime | None = None
    restriction_filter: str = ""
    restriction_collection: str = ""


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_api_key_name(name: str) -> tuple[str, uuid.UUID]:
    """("users/{user}" or "users/me", key id) from "users/{user}/apiKeys/{key}"."""
    parent, sep, key = name.rpartition("/apiKeys/")
    if not sep or not parent.startswith("users/"):
        raise InvalidArgument(
            f"{name!r} is not an API key name (users/{{user}}/apiKeys/{{key}})", reason="INVALID_NAME"
        )
    return parent, parse_resource_id(f"apiKeys/{key}", "apiKeys")


class ApiKeys:
    def __init__(
        self,
        store: AuthStore,
        *,
        failures_per_address: FailureLimiter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._failures = failures_per_address
        self._clock = clock

    async def create(self, owner_id: uuid.UUID, request: NewApiKey) -> tuple[ApiKeyRecord, str]:
        display_name = "".join(ch for ch in request.display_name if ch.isprintable()).strip()
        if not display_name or len(display_name) > _MAX_DISPLAY_NAME:
            raise InvalidArgument(
                f"an API key needs a display name of 1-{_MAX_DISPLAY_NAME} characters", reason="INVALID_DISPLAY_NAME"
            )
        if not request.scopes or not request.scopes <= SCOPES:
            raise InvalidArgument(
                "an API key needs at least one scope of " + ", ".join(sorted(SCOPES)), reason="INVALID_SCOPES"
            )
        now = self._clock()
        if request.expire_time is not None and request.expire_time <= now:
            raise InvalidArgument("expire_time must be in the future", reason="INVALID_EXPIRE_TIME")
        parse_filter(request.restriction_filter)  # a malformed restriction is refused now, not at use
        if request.restriction_collection:
            parse_resource_id(request.restriction_collection, "collections")
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=uuid.uuid4(),
            user_id=owner_id,
            display_name=display_name,
            scopes=request.scopes,
            secret_hash=secret_hash(secret),
            secret_prefix=secret[: len(API_KEY_PREFIX) + 6],
            create_time=now,
            expire_time=request.expire_time,
            restriction_filter=request.restriction_filter.strip(),
            restriction_collection=request.restriction_collection,
        )
        return await self._store.insert_api_key(key=record), secret

    async def list(
        self, owner_id: uuid.UUID | None, *, page_size: int, page_token: str, show_inactive: bool
    ) -> Page[ApiKeyRecord]:
        limit = clamp_page_size(page_size, default=50, maximum=500)
        keys = await self._store.list_api_keys(
            user_id=owner_id,
            cursor=decode_cursor(page_token),
            limit=limit + 1,
            active_at=None if show_inactive else self._clock(),
        )
        page, more = keys[:limit], len(keys) > limit
        token = encode_cursor(Cursor(page[-1].create_time, page[-1].id)) if more else ""
        return Page(items=page, next_page_token=token)

    async def revoke(self, owner_id: uuid.UUID | None, key_id: uuid.UUID) -> ApiKeyRecord:
        """Revoke a key of `owner_id` (None: any owner, for admins). Idempotent."""
        key = await self._store.get_api_key(key_id=key_id)
        if key is None or (owner_id is not None and key.user_id != owner_id):
            raise NotFound("this API key does not exist", reason="API_KEY_NOT_FOUND")
        revoked = await self._store.revoke_api_key(key_id=key_id, at=self._clock())
        assert revoked is not None
        return revoked

    async def authenticate(self, secret: str, *, client_address: str) -> Principal:
        address_key = f"ip:{client_address}"
        self._failures.check(address_key)
        refused = Unauthenticated("this API key is not valid", reason="INVALID_API_KEY")
        found = None
        if secret.startswith(API_KEY_PREFIX) and len(secret) <= _MAX_SECRET_LENGTH:
            found = await self._store.find_api_key(secret_hash=secret_hash(secret))
        now = self._clock()
        if found is None:
            self._failures.record(address_key)
            raise refused
        key, user = found
        if key.revoke_time is not None:
            raise Unauthenticated("this API key has been revoked", reason="API_KEY_REVOKED")
        if key.expire_time is not None and key.expire_time <= now:
            raise Unauthenticated("this API key has expired", reason="API_KEY_EXPIRED")
        if user.state is not UserState.ACTIVE:
            raise Unauthenticated(f"the account of this API key is {user.state.value}", reason="USER_NOT_ACTIVE")
        if key.last_use_time is None or key.last_use_time + _TOUCH_INTERVAL <= now:
            await self._store.touch_api_key(key_id=key.id, at=now)
        return Principal(
            user=user.name,
            username=user.username,
            role=user.role,
            credential=CredentialKind.API_KEY,
            scopes=key.scopes,
            api_key=key.name,
            restriction_filter=key.restriction_filter,
            restriction_collection=key.restriction_collection,
        )
