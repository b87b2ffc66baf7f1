"""SQL for assets; keyword-only functions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_catalog.db.tables import assets
from imgtag_catalog.domain.models import AssetRecord, AssetState
from imgtag_catalog.domain.pagination import Cursor


def _record(row) -> AssetRecord:
    data = row._asdict()
    data["state"] = AssetState(data["state"])
    return AssetRecord(**data)


class AssetRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def insert(self, *, asset: AssetRecord) -> None:
        values = {**asset.__dict__, "state": asset.state.value}
        async with self._sessions.begin() as session:
            await session.execute(insert(assets).values(**values))

    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(assets).where(assets.c.id == asset_id))).first()
        return _record(row) if row else None

    async def find_by_sha256(self, *, sha256: str) -> AssetRecord | None:
        """An asset with exactly these bytes, in the (shared) library or its trash."""
        query = select(assets).where(assets.c.sha256 == sha256).limit(1)
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return _record(row) if row else None

    async def list_page(self, *, cursor: Cursor | None, limit: int, include_trashed: bool) -> list[AssetRecord]:
        """Newest first; `limit` rows after `cursor` (keyset, stable under inserts)."""
        query = select(assets).order_by(assets.c.create_time.desc(), assets.c.id.desc()).limit(limit)
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

    async def set_state(
        self,
        *,
        asset_id: uuid.UUID,
        state: AssetState,
        at: datetime,
        delete_time: datetime | None,
        purge_time: datetime | None,
    ) -> AssetRecord | None:
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(assets)
                    .where(assets.c.id == asset_id)
                    .values(state=state.value, update_time=at, delete_time=delete_time, purge_time=purge_time)
                    .returning(assets)
                )
            ).first()
        return _record(row) if row else None
