"""SQL for users, sessions, refresh tokens, API keys and instance settings; keyword-only
functions, one transaction per call."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_auth.db.tables import api_keys, instance_settings, refresh_tokens, sessions, users
from imgtag_auth.domain.models import ApiKeyRecord, RefreshTokenRecord, SessionRecord, UserRecord, UserState
from imgtag_common.auth import Role
from imgtag_common.errors import AlreadyExists, FailedPrecondition
from imgtag_common.filtering import Expr, FieldCompiler, compile_filter, enum_field, text_field
from imgtag_common.pagination import Cursor

USER_FILTER_FIELDS: Mapping[str, FieldCompiler] = {
    "state": enum_field(users.c.state, "state", {s.name: s.value for s in UserState}),
    "role": enum_field(users.c.role, "role", {r.name: r.value for r in Role}),
    "username": text_field(users.c.username, "username"),
    "email": text_field(users.c.email, "email"),
}


def _user(row: Any) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        role=Role(row.role),
        state=UserState(row.state),
        create_time=row.create_time,
        update_time=row.update_time,
        approve_time=row.approve_time,
        last_login_time=row.last_login_time,
    )


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user_id=row.user_id,
        create_time=row.create_time,
        expire_time=row.expire_time,
        revoke_time=row.revoke_time,
        revoke_reason=row.revoke_reason,
    )


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        user_id=row.user_id,
        display_name=row.display_name,
        scopes=frozenset(row.scopes),
        secret_hash=row.secret_hash,
        secret_prefix=row.secret_prefix,
        create_time=row.create_time,
        expire_time=row.expire_time,
        last_use_time=row.last_use_time,
        revoke_time=row.revoke_time,
        restriction_filter=row.restriction_filter,
        restriction_collection=row.restriction_collection,
    )


def _raise_taken(error: IntegrityError) -> None:
    text = str(error.orig)
    if "username_key" in text:
        raise AlreadyExists("this username is taken", reason="USERNAME_TAKEN") from error
    if "email_key" in text:
        raise AlreadyExists("this email address is already registered", reason="EMAIL_TAKEN") from error
    raise error


class AuthRepository:
    def __init__(self, sessions_: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions_

    # ------------------------------------------------------------------ users

    async def insert_user(self, *, user: UserRecord, username_key: str, email_key: str | None) -> UserRecord:
        values = {
            **{k: v for k, v in user.__dict__.items()},
            "role": user.role.value,
            "state": user.state.value,
            "username_key": username_key,
            "email_key": email_key,
        }
        try:
            async with self._sessions.begin() as session:
                row = (await session.execute(insert(users).values(**values).returning(users))).one()
        except IntegrityError as error:
            _raise_taken(error)
        return _user(row)

    async def get_user(self, *, user_id: uuid.UUID) -> UserRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def find_user_by_login(self, *, key: str) -> UserRecord | None:
        query = select(users).where(or_(users.c.username_key == key, users.c.email_key == key)).limit(1)
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return _user(row) if row else None

    async def any_active_admin(self) -> bool:
        query = select(users.c.id).where(users.c.role == Role.ADMIN.value, users.c.state == UserState.ACTIVE.value)
        async with self._sessions() as session:
            return (await session.execute(query.limit(1))).first() is not None

    async def list_users(
        self, *, filter_expr: Expr | None, cursor: Cursor | None, limit: int
    ) -> tuple[list[UserRecord], int]:
        """Newest first, keyset after `cursor`; also the total matching the filter."""
        condition = compile_filter(filter_expr, USER_FILTER_FIELDS) if filter_expr is not None else None
        query = select(users).order_by(users.c.create_time.desc(), users.c.id.desc()).limit(limit)
        count = select(func.count()).select_from(users)
        if condition is not None:
            query, count = query.where(condition), count.where(condition)
        if cursor is not None:
            query = query.where(
                or_(
                    users.c.create_time < cursor.create_time,
                    and_(users.c.create_time == cursor.create_time, users.c.id < cursor.id),
                )
            )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            total = (await session.execute(count)).scalar_one()
        return [_user(r) for r in rows], total

    async def update_user(
        self, *, user_id: uuid.UUID, changes: dict[str, Any], keep_an_admin: bool = False
    ) -> UserRecord | None:
        """Apply `changes`; with `keep_an_admin`, refuse (FAILED_PRECONDITION) when afterwards no
        ACTIVE admin would be left. Admin rows are locked first, so two admins demoting each
        other at the same moment cannot both succeed."""
        values = {k: (v.value if isinstance(v, Role | UserState) else v) for k, v in changes.items()}
        if "email_key" in values and values["email_key"] == "":
            values["email_key"] = None
        try:
            async with self._sessions.begin() as session:
                if keep_an_admin:
                    admins = (
                        await session.execute(
                            select(users.c.id)
                            .where(users.c.role == Role.ADMIN.value, users.c.state == UserState.ACTIVE.value)
                            .with_for_update()
                        )
                    ).scalars()
                    if not set(admins) - {user_id}:
                        raise FailedPrecondition(
                            "this is the last active admin; make another admin first", reason="LAST_ADMIN"
                        )
                row = (
                    await session.execute(update(users).where(users.c.id == user_id).values(**values).returning(users))
                ).first()
        except IntegrityError as error:
            _raise_taken(error)
        return _user(row) if row else None

    async def delete_user(self, *, user_id: uuid.UUID) -> bool:
        async with self._sessions.begin() as session:
            admins = (
                await session.execute(
                    select(users.c.id)
                    .where(users.c.role == Role.ADMIN.value, users.c.state == UserState.ACTIVE.value)
                    .with_for_update()
                )
            ).scalars()
            if set(admins) == {user_id}:
                raise FailedPrecondition("this is the last active admin", reason="LAST_ADMIN")
            deleted = (await session.execute(users.delete().where(users.c.id == user_id).returning(users.c.id))).first()
        return deleted is not None

    # ------------------------------------------------------------------ sessions

    async def create_session(self, *, session_record: SessionRecord, first_token: RefreshTokenRecord) -> None:
        async with self._sessions.begin() as session:
            await session.execute(insert(sessions).values(**session_record.__dict__))
            await session.execute(insert(refresh_tokens).values(**first_token.__dict__))

    async def find_refresh_token(
        self, *, token_hash: bytes
    ) -> tuple[RefreshTokenRecord, SessionRecord, UserRecord] | None:
        async with self._sessions() as session:
            token_row = (
                await session.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
            ).first()
            if token_row is None:
                return None
            found = await self._session_and_user(session, token_row.session_id)
        if found is None:
            return None
        token = RefreshTokenRecord(
            token_hash=token_row.token_hash,
            session_id=token_row.session_id,
            create_time=token_row.create_time,
            expire_time=token_row.expire_time,
            used_time=token_row.used_time,
        )
        return token, *found

    async def rotate_refresh_token(self, *, used_hash: bytes, at: datetime, successor: RefreshTokenRecord) -> bool:
        """Use up `used_hash` and store its successor in one transaction. False when the token
        was already used (someone presented it before us): the caller treats that as reuse."""
        async with self._sessions.begin() as session:
            used = (
                await session.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.token_hash == used_hash, refresh_tokens.c.used_time.is_(None))
                    .values(used_time=at)
                    .returning(refresh_tokens.c.token_hash)
                )
            ).first()
            if used is None:
                return False
            await session.execute(insert(refresh_tokens).values(**successor.__dict__))
        return True

    async def revoke_session(self, *, session_id: uuid.UUID, at: datetime, reason: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.revoke_time.is_(None))
                .values(revoke_time=at, revoke_reason=reason)
            )

    async def revoke_user_sessions(
        self, *, user_id: uuid.UUID, at: datetime, reason: str, keep: uuid.UUID | None = None
    ) -> int:
        condition = and_(sessions.c.user_id == user_id, sessions.c.revoke_time.is_(None))
        if keep is not None:
            condition = and_(condition, sessions.c.id != keep)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(sessions).where(condition).values(revoke_time=at, revoke_reason=reason)
            )
        return result.rowcount or 0

    async def session_with_user(self, *, session_id: uuid.UUID) -> tuple[SessionRecord, UserRecord] | None:
        async with self._sessions() as session:
            return await self._session_and_user(session, session_id)

    @staticmethod
    async def _session_and_user(
        session: AsyncSession, session_id: uuid.UUID
    ) -> tuple[SessionRecord, UserRecord] | None:
        session_row = (await session.execute(select(sessions).where(sessions.c.id == session_id))).first()
        if session_row is None:
            return None
        user_row = (await session.execute(select(users).where(users.c.id == session_row.user_id))).first()
        return (_session(session_row), _user(user_row)) if user_row else None

    # ------------------------------------------------------------------ API keys

    async def insert_api_key(self, *, key: ApiKeyRecord) -> ApiKeyRecord:
        values = {**key.__dict__, "scopes": sorted(key.scopes)}
        async with self._sessions.begin() as session:
            row = (await session.execute(insert(api_keys).values(**values).returning(api_keys))).one()
        return _api_key(row)

    async def get_api_key(self, *, key_id: uuid.UUID) -> ApiKeyRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return _api_key(row) if row else None

    async def find_api_key(self, *, secret_hash: bytes) -> tuple[ApiKeyRecord, UserRecord] | None:
        async with self._sessions() as session:
            row = (await session.execute(select(api_keys).where(api_keys.c.secret_hash == secret_hash))).first()
            if row is None:
                return None
            user_row = (await session.execute(select(users).where(users.c.id == row.user_id))).one()
        return _api_key(row), _user(user_row)

    async def list_api_keys(
        self, *, user_id: uuid.UUID | None, cursor: Cursor | None, limit: int, active_at: datetime | None
    ) -> list[ApiKeyRecord]:
        """Newest first; `user_id` None lists everyone's; `active_at` keeps only keys usable then."""
        query = select(api_keys).order_by(api_keys.c.create_time.desc(), api_keys.c.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        if active_at is not None:
            query = query.where(
                api_keys.c.revoke_time.is_(None),
                or_(api_keys.c.expire_time.is_(None), api_keys.c.expire_time > active_at),
            )
        if cursor is not None:
            query = query.where(
                or_(
                    api_keys.c.create_time < cursor.create_time,
                    and_(api_keys.c.create_time == cursor.create_time, api_keys.c.id < cursor.id),
                )
            )
        async with self._sessions() as session:
            return [_api_key(r) for r in (await session.execute(query)).all()]

    async def revoke_api_key(self, *, key_id: uuid.UUID, at: datetime) -> ApiKeyRecord | None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoke_time.is_(None)).values(revoke_time=at)
            )
            row = (await session.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return _api_key(row) if row else None

    async def revoke_user_api_keys(self, *, user_id: uuid.UUID, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(api_keys)
                .where(api_keys.c.user_id == user_id, api_keys.c.revoke_time.is_(None))
                .values(revoke_time=at)
            )

    async def touch_api_key(self, *, key_id: uuid.UUID, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_use_time=at))

    # ------------------------------------------------------------------ instance settings

    async def get_setting(self, *, name: str) -> Any | None:
        async with self._sessions() as session:
            return (
                await session.execute(select(instance_settings.c.value).where(instance_settings.c.name == name))
            ).scalar_one_or_none()

    async def put_setting(self, *, name: str, value: Any) -> None:
        statement = pg_insert(instance_settings).values(name=name, value=value)
        async with self._sessions.begin() as session:
            await session.execute(
                statement.on_conflict_do_update(index_elements=[instance_settings.c.name], set_={"value": value})
            )
