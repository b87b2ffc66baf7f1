"""Sessions: login, rotating refresh tokens with reuse detection, logout, password changes, and
resolving an access token into a principal.

A session is one sign-in. Its refresh tokens form a chain: each refresh uses up the presented
token and issues the next. Presenting a used-up token means it was copied, so the whole session
ends. Access tokens name their session (`sid`), and `authenticate` checks the session and the
user on every request, so logging out, disabling a user or changing a password takes effect at
once, not when the access token expires."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from imgtag_auth.domain.identity import PasswordPolicy, login_key, nfkc
from imgtag_auth.domain.models import RefreshTokenRecord, SessionRecord, UserRecord, UserState
from imgtag_auth.domain.passwords import Passwords
from imgtag_auth.domain.ports import AuthStore
from imgtag_auth.domain.ratelimit import FailureLimiter
from imgtag_auth.domain.tokens import AccessTokens
from imgtag_common.auth import CredentialKind, Principal
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import InvalidArgument, PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)

REFRESH_TOKEN_PREFIX = "itr_"
_MAX_LOGIN_LENGTH = 320


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    access_expire_time: datetime
    refresh_token: str
    refresh_expire_time: datetime
    session_id: uuid.UUID


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _refused_state(user: UserRecord) -> PermissionDenied | None:
    messages = {
        UserState.PENDING: ("this account is waiting for an administrator's approval", "USER_PENDING_APPROVAL"),
        UserState.REJECTED: ("this account's registration was declined", "USER_REJECTED"),
        UserState.DISABLED: ("this account has been disabled by an administrator", "USER_DISABLED"),
    }
    found = messages.get(user.state)
    return PermissionDenied(found[0], reason=found[1]) if found else None


class Sessions:
    def __init__(
        self,
        store: AuthStore,
        passwords: Passwords,
        tokens: AccessTokens,
        executor: BlockingExecutor,
        *,
        policy: PasswordPolicy,
        refresh_ttl: timedelta,
        failures_per_address: FailureLimiter,
        failures_per_login: FailureLimiter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._tokens = tokens
        self._executor = executor
        self._policy = policy
        self._refresh_ttl = refresh_ttl
        self._per_address = failures_per_address
        self._per_login = failures_per_login
        self._clock = clock

    # ------------------------------------------------------------------ signing in and out

    async def login(self, login: str, password: str, *, client_address: str) -> tuple[IssuedTokens, UserRecord]:
        if not login.strip() or not password:
            raise InvalidArgument("enter a username or email and a password", reason="CREDENTIALS_REQUIRED")
        if len(login) > _MAX_LOGIN_LENGTH or len(password) > self._policy.max_length * 4:
            raise Unauthenticated("wrong username or password", reason="INVALID_LOGIN")
        key = login_key(login)
        address_key, login_attempt_key = f"ip:{client_address}", f"login:{client_address}:{key}"
        self._per_address.check(address_key)
        self._per_login.check(login_attempt_key)
        user = await self._store.find_user_by_login(key=key)
        # An unknown login does the same argon2 work as a wrong password (see Passwords.verify).
        matches = await self._executor.run(self._passwords.verify, user.password_hash if user else None, nfkc(password))
        if user is None or not matches:
            self._per_address.record(address_key)
            self._per_login.record(login_attempt_key)
            log.info("login failed", extra={"client_address": client_address})
            raise Unauthenticated("wrong username or password", reason="INVALID_LOGIN")
        refused = _refused_state(user)
        if refused is not None:
            raise refused
        self._per_login.reset(login_attempt_key)
        now = self._clock()
        changes: dict[str, object] = {"last_login_time": now}
        if self._passwords.needs_rehash(user.password_hash):
            changes["password_hash"] = await self._executor.run(self._passwords.hash, nfkc(password))
        user = await self._store.update_user(user_id=user.id, changes=changes) or user
        return await self._start_session(user), user

    async def _start_session(self, user: UserRecord) -> IssuedTokens:
        now = self._clock()
        session = SessionRecord(id=uuid.uuid4(), user_id=user.id, create_time=now, expire_time=now + self._refresh_ttl)
        refresh, record = self._new_refresh_token(session.id, now)
        await self._store.create_session(session_record=session, first_token=record)
        return self._issue(user, session.id, refresh, record.expire_time)

    def _new_refresh_token(self, session_id: uuid.UUID, now: datetime) -> tuple[str, RefreshTokenRecord]:
        token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = RefreshTokenRecord(
            token_hash=token_hash(token), session_id=session_id, create_time=now, expire_time=now + self._refresh_ttl
        )
        return token, record

    def _issue(self, user: UserRecord, session_id: uuid.UUID, refresh: str, refresh_expire: datetime) -> IssuedTokens:
        access, access_expire = self._tokens.issue(
            user_id=user.id, username=user.username, role=user.role.value, session_id=session_id
        )
        return IssuedTokens(access, access_expire, refresh, refresh_expire, session_id)

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        invalid = Unauthenticated("the session has ended; sign in again", reason="INVALID_REFRESH_TOKEN")
        if not refresh_token.startswith(REFRESH_TOKEN_PREFIX) or len(refresh_token) > 200:
            raise invalid
        found = await self._store.find_refresh_token(token_hash=token_hash(refresh_token))
        if found is None:
            raise invalid
        token, session, user = found
        now = self._clock()
        if session.revoke_time is not None or token.expire_time <= now or session.expire_time <= now:
            raise invalid
        if token.used_time is not None:
            await self._reuse_detected(session)
        refused = _refused_state(user)
        if refused is not None:
            raise invalid
        successor_token, successor = self._new_refresh_token(session.id, now)
        if not await self._store.rotate_refresh_token(used_hash=token.token_hash, at=now, successor=successor):
            await self._reuse_detected(session)  # someone used it between our read and our write
        return self._issue(user, session.id, successor_token, successor.expire_time)

    async def _reuse_detected(self, session: SessionRecord) -> None:
        await self._store.revoke_session(session_id=session.id, at=self._clock(), reason="refresh token reused")
        log.warning("refresh token reused; session revoked", extra={"session": str(session.id)})
        raise Unauthenticated(
            "this refresh token was already used, so the session has been ended for safety; sign in again",
            reason="REFRESH_TOKEN_REUSED",
        )

    async def logout(self, refresh_token: str) -> None:
        found = await self._store.find_refresh_token(token_hash=token_hash(refresh_token)) if refresh_token else None
        if found is not None:
            await self._store.revoke_session(session_id=found[1].id, at=self._clock(), reason="logout")

    async def end_all(self, user_id: uuid.UUID, reason: str) -> None:
        await self._store.revoke_user_sessions(user_id=user_id, at=self._clock(), reason=reason)

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        user = await self._store.get_user(user_id=principal.user_id)
        if user is None or not await self._executor.run(self._passwords.verify, user.password_hash, nfkc(current)):
            raise Unauthenticated("the current password is wrong", reason="INVALID_PASSWORD")
        password = self._policy.clean(new)
        now = self._clock()
        await self._store.update_user(
            user_id=user.id,
            changes={"password_hash": await self._executor.run(self._passwords.hash, password), "update_time": now},
        )
        keep = uuid.UUID(principal.session) if principal.session else None
        ended = await self._store.revoke_user_sessions(user_id=user.id, at=now, reason="password changed", keep=keep)
        log.info("password changed", extra={"user": user.name, "sessions_ended": ended})

    # ------------------------------------------------------------------ checking a request

    async def authenticate(self, access_token: str) -> Principal:
        claims = self._tokens.verify(access_token)
        found = await self._store.session_with_user(session_id=claims.session_id)
        ended = Unauthenticated("the session has ended; sign in again", reason="SESSION_ENDED")
        if found is None:
            raise ended
        session, user = found
        if session.user_id != claims.user_id or session.revoke_time is not None:
            raise ended
        if user.state is not UserState.ACTIVE:
            raise Unauthenticated(f"this account is {user.state.value}", reason="USER_NOT_ACTIVE")
        return Principal(
            user=user.name,
            username=user.username,
            role=user.role,
            credential=CredentialKind.ACCESS_TOKEN,
            session=str(session.id),
        )
