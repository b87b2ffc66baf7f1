"""Accounts: registration under the instance's registration mode, the first admin, profiles,
and what admins do to users (approve, reject, disable, enable, role, password, delete).

Rules enforced here: names and emails follow `identity`; a user sees only themselves unless
they are an admin (another user is NOT_FOUND, as if absent); the last active admin can never
be disabled, demoted or deleted; an admin cannot lock themselves out."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imgtag_auth.domain.identity import (
    PasswordPolicy,
    clean_display_name,
    clean_email,
    clean_username,
    email_key,
    username_key,
)
from imgtag_auth.domain.models import Page, RegistrationMode, UserRecord, UserState
from imgtag_auth.domain.passwords import Passwords
from imgtag_auth.domain.ports import AuthStore
from imgtag_common.auth import Principal, Role
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import FailedPrecondition, InvalidArgument, NotFound
from imgtag_common.filtering import parse_filter
from imgtag_common.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor
from imgtag_common.resources import parse_resource_id

log = logging.getLogger(__name__)

REGISTRATION_SETTING = "registration"


@dataclass(frozen=True)
class NewAccount:
    username: str
    email: str
    password: str
    display_name: str = ""
    role: Role = Role.USER


class Accounts:
    def __init__(
        self,
        store: AuthStore,
        passwords: Passwords,
        executor: BlockingExecutor,
        *,
        policy: PasswordPolicy,
        default_registration_mode: RegistrationMode,
        end_sessions: Callable[[uuid.UUID, str], Awaitable[None]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._executor = executor
        self.policy = policy
        self._default_mode = default_registration_mode
        # Ends every session of a user (`Sessions.end_all`).
        self._end_sessions = end_sessions
        self._clock = clock

    # ------------------------------------------------------------------ registration

    async def registration_mode(self) -> RegistrationMode:
        stored = await self._store.get_setting(name=REGISTRATION_SETTING)
        return RegistrationMode(stored["mode"]) if stored else self._default_mode

    async def set_registration_mode(self, mode: RegistrationMode) -> RegistrationMode:
        await self._store.put_setting(name=REGISTRATION_SETTING, value={"mode": mode.value})
        return mode

    async def register(self, account: NewAccount) -> UserRecord:
        mode = await self.registration_mode()
        if mode is RegistrationMode.CLOSED:
            raise FailedPrecondition(
                "self-registration is closed on this instance; ask an administrator for an account",
                reason="REGISTRATION_CLOSED",
            )
        state = UserState.ACTIVE if mode is RegistrationMode.AUTO_APPROVE else UserState.PENDING
        return await self._create(account, state=state)

    async def create_user(self, account: NewAccount) -> UserRecord:
        """An admin creates an ACTIVE account."""
        return await self._create(account, state=UserState.ACTIVE)

    async def _create(self, account: NewAccount, *, state: UserState, allow_no_email: bool = False) -> UserRecord:
        username = clean_username(account.username)
        email = clean_email(account.email) if account.email or not allow_no_email else ""
        password = self.policy.clean(account.password)
        now = self._clock()
        record = UserRecord(
            id=uuid.uuid4(),
            username=username,
            email=email,
            display_name=clean_display_name(account.display_name, fallback=username),
            password_hash=await self._executor.run(self._passwords.hash, password),
            role=account.role,
            state=state,
            create_time=now,
            update_time=now,
            approve_time=now if state is UserState.ACTIVE else None,
        )
        created = await self._store.insert_user(
            user=record, username_key=username_key(username), email_key=email_key(email) if email else None
        )
        log.info("account created", extra={"user": created.name, "state": state.value, "role": created.role.value})
        return created

    async def ensure_admin(self, *, username: str, password: str, email: str) -> str | None:
        """Create the first admin if no active admin exists. Returns the generated password when
        none was configured (the caller shows it once); None when nothing was created."""
        if await self._store.any_active_admin():
            return None
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(18)
        await self._create(
            NewAccount(username=username, email=email, password=password, role=Role.ADMIN),
            state=UserState.ACTIVE,
            allow_no_email=True,
        )
        return generated

    # ------------------------------------------------------------------ reading

    def user_id(self, principal: Principal, name: str) -> uuid.UUID:
        """The id in "users/{id}" or "users/me"; another user's id only for admins."""
        if name == "users/me":
            return principal.user_id
        user_id = parse_resource_id(name, "users")
        if user_id != principal.user_id and not principal.is_admin:
            raise NotFound(f"{name} does not exist", reason="USER_NOT_FOUND")
        return user_id

    async def get(self, principal: Principal, name: str) -> UserRecord:
        return await self._existing(self.user_id(principal, name))

    async def _existing(self, user_id: uuid.UUID) -> UserRecord:
        user = await self._store.get_user(user_id=user_id)
        if user is None:
            raise NotFound(f"users/{user_id} does not exist", reason="USER_NOT_FOUND")
        return user

    async def list(self, *, filter_text: str, page_size: int, page_token: str) -> Page[UserRecord]:
        limit = clamp_page_size(page_size, default=50, maximum=500)
        users, total = await self._store.list_users(
            filter_expr=parse_filter(filter_text), cursor=decode_cursor(page_token), limit=limit + 1
        )
        page, more = users[:limit], len(users) > limit
        token = encode_cursor(Cursor(page[-1].create_time, page[-1].id)) if more else ""
        return Page(items=page, next_page_token=token, total_size=total)

    # ------------------------------------------------------------------ changing

    async def update_profile(
        self, principal: Principal, name: str, *, display_name: str | None, email: str | None
    ) -> UserRecord:
        user = await self.get(principal, name)
        changes: dict[str, Any] = {}
        if display_name is not None:
            changes["display_name"] = clean_display_name(display_name, fallback=user.username)
        if email is not None:
            address = clean_email(email)
            changes |= {"email": address, "email_key": email_key(address)}
        if not changes:
            raise InvalidArgument("update_mask names no updatable field (display_name, email)", reason="EMPTY_UPDATE")
        return await self._update(user.id, changes)

    async def _update(self, user_id: uuid.UUID, changes: dict[str, Any], *, keep_an_admin: bool = False) -> UserRecord:
        updated = await self._store.update_user(
            user_id=user_id, changes={**changes, "update_time": self._clock()}, keep_an_admin=keep_an_admin
        )
        if updated is None:
            raise NotFound(f"users/{user_id} does not exist", reason="USER_NOT_FOUND")
        return updated

    def _not_self(self, principal: Principal, user_id: uuid.UUID, action: str) -> None:
        if user_id == principal.user_id:
            raise FailedPrecondition(f"you cannot {action} your own account", reason="SELF_LOCKOUT")

    async def approve(self, principal: Principal, name: str, role: Role) -> UserRecord:
        user = await self.get(principal, name)
        if user.state not in (UserState.PENDING, UserState.REJECTED):
            raise FailedPrecondition(f"{user.name} is {user.state.value}, not pending", reason="NOT_PENDING")
        return await self._update(user.id, {"state": UserState.ACTIVE, "role": role, "approve_time": self._clock()})

    async def reject(self, principal: Principal, name: str) -> UserRecord:
        user = await self.get(principal, name)
        if user.state is not UserState.PENDING:
            raise FailedPrecondition(f"{user.name} is {user.state.value}, not pending", reason="NOT_PENDING")
        return await self._update(user.id, {"state": UserState.REJECTED})

    async def disable(self, principal: Principal, name: str) -> UserRecord:
        user = await self.get(principal, name)
        self._not_self(principal, user.id, "disable")
        if user.state is not UserState.ACTIVE:
            raise FailedPrecondition(f"{user.name} is {user.state.value}, not active", reason="NOT_ACTIVE")
        updated = await self._update(user.id, {"state": UserState.DISABLED}, keep_an_admin=True)
        await self._end_sessions(user.id, "user disabled")
        return updated

    async def enable(self, principal: Principal, name: str) -> UserRecord:
        user = await self.get(principal, name)
        if user.state is not UserState.DISABLED:
            raise FailedPrecondition(f"{user.name} is {user.state.value}, not disabled", reason="NOT_DISABLED")
        return await self._update(user.id, {"state": UserState.ACTIVE})

    async def set_role(self, principal: Principal, name: str, role: Role) -> UserRecord:
        user = await self.get(principal, name)
        if role is Role.USER:
            self._not_self(principal, user.id, "demote")
        return await self._update(user.id, {"role": role}, keep_an_admin=role is not Role.ADMIN)

    async def set_password(self, principal: Principal, name: str, new_password: str) -> UserRecord:
        user = await self.get(principal, name)
        password = self.policy.clean(new_password)
        updated = await self._update(
            user.id, {"password_hash": await self._executor.run(self._passwords.hash, password)}
        )
        await self._end_sessions(user.id, "password set by an admin")
        return updated

    async def delete(self, principal: Principal, name: str) -> None:
        user = await self.get(principal, name)
        self._not_self(principal, user.id, "delete")
        if not await self._store.delete_user(user_id=user.id):
            raise NotFound(f"{name} does not exist", reason="USER_NOT_FOUND")
        log.info("account deleted", extra={"user": user.name, "by": principal.user})
