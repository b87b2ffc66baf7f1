"""SQL for assets; keyword-only functions. Every query that returns assets to a caller takes a
`ViewScope`, so no listing can forget whose assets it may show."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_catalog.db.filters import ASSET_FILTER_FIELDS
from imgtag_catalog.db.tables import assets
from imgtag_catalog.domain.models import AssetRecord, AssetState, Visibility
from imgtag_catalog.domain.visibility import ViewScope
from imgtag_common.filtering import Expr, compile_filter
from imgtag_common.pagination import Cursor


def _record(row: Any) -> AssetRecord:
    data = row._asdict()
    data["state"] = AssetState(data["state"])
    data["visibility"] = Visibility(data["visibility"])
    return AssetRecord(**data)


def _in_scope(scope: ViewScope) -> ColumnElement[bool]:
    if scope.owner is None:
        return true()
    if scope.include_shared:
        return or_(assets.c.owner == scope.owner, assets.c.visibility == Visibility.INSTANCE.value)
    return assets.c.owner == scope.owner


def _filtered(query: Select, scope: ViewScope, filters: list[Expr]) -> Select:
    query = query.where(_in_scope(scope))
    for expr in filters:
        query = query.where(compile_filter(expr, ASSET_FILTER_FIELDS))
    return query


class AssetRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def insert(self, *, asset: AssetRecord) -> None:
        values = {**asset.__dict__, "state": asset.state.value, "visibility": asset.visibility.value}
        async with self._sessions.begin() as session:
            await session.execute(insert(assets).values(**values))

    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(assets).where(assets.c.id == asset_id))).first()
        return _record(row) if row else None

    async def find_by_sha256(self, *, owner: str, sha256: str) -> AssetRecord | None:
        """The owner's asset with exactly these bytes, in their library or their trash."""
        query = select(assets).where(assets.c.owner == owner, assets.c.sha256 == sha256).limit(1)
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return _record(row) if row else None

    async def list_page(
        self, *, scope: ViewScope, filters: list[Expr], cursor: Cursor | None, limit: int, include_trashed: bool
    ) -> list[AssetRecord]:
        """Newest first; `limit` rows after `cursor` (keyset, stable under inserts)."""
        query = _filtered(select(assets), scope, filters)
        query = query.order_by(assets.c.create_time.desc(), assets.c.id.desc()).limit(limit)
        if not include_trashed:
            query = query.where(assets.c.state == AssetState.ACTIVE.value)
        if cursor is not None:
            query = query.where(
                or_(
                    assets.c.create_time < cursor.create_time,
                    and_(assets.c.create_time == cursor.create_time, assets.c.id < cursor.id),
                )
            )
        async with self._sessions() as session:
            return [_record(r) for r in (await session.execute(query)).all()]

    async def random(self, *, scope: ViewScope, filters: list[Expr], count: int) -> list[AssetRecord]:
        """Up to `count` distinct ACTIVE assets, starting at a random point of the id space and
        wrapping around: an index range scan, never ORDER BY random() over the whole table."""
        pivot = uuid.uuid4()
        base = _filtered(select(assets), scope, filters).where(assets.c.state == AssetState.ACTIVE.value)
        async with self._sessions() as session:
            after = (await session.execute(base.where(assets.c.id >= pivot).order_by(assets.c.id).limit(count))).all()
            before = []
            if len(after) < count:
                before = (
                    await session.execute(
                        base.where(assets.c.id < pivot).order_by(assets.c.id).limit(count - len(after))
                    )
                ).all()
        return [_record(r) for r in [*after, *before]]

    async def count(self, *, scope: ViewScope, filters: list[Expr], include_trashed: bool) -> int:
        query = _filtered(select(func.count()).select_from(assets), scope, filters)
        if not include_trashed:
            query = query.where(assets.c.state == AssetState.ACTIVE.value)
        async with self._sessions() as session:
            return (await session.execute(query)).scalar_one()

    async def update(self, *, asset_id: uuid.UUID, changes: dict[str, Any]) -> AssetRecord | None:
        values = {k: (v.value if isinstance(v, AssetState | Visibility) else v) for k, v in changes.items()}
        async with self._sessions.begin() as session:
            row = (
                await session.execute(update(assets).where(assets.c.id == asset_id).values(**values).returning(assets))
            ).first()
        return _record(row) if row else None
