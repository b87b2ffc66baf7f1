"""Vision-provider rows (SQLAlchemy 2 async). Making one provider active clears the flag on the
others in the same transaction; a unique partial index keeps it at most one even when two
admins race (the loser gets ABORTED and may try again)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_common.errors import Aborted
from imgtag_inference.db.tables import vision_providers
from imgtag_inference.domain.vision import ProviderKind, VisionProvider

_COLUMNS = (
    "display_name",
    "kind",
    "endpoint",
    "model",
    "sealed_api_key",
    "prompt",
    "language",
    "concurrency",
    "timeout_s",
    "max_attempts",
    "json_mode",
    "max_output_tokens",
    "active",
)


def _provider(row: Any) -> VisionProvider:
    values = {name: getattr(row, name) for name in _COLUMNS}
    values["kind"] = ProviderKind(row.kind)
    return VisionProvider(id=row.id, create_time=row.create_time, update_time=row.update_time, **values)


def _values(provider: VisionProvider) -> dict[str, Any]:
    values = {name: getattr(provider, name) for name in _COLUMNS}
    values["kind"] = provider.kind.value
    return values


class VisionProviderRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, *, provider: VisionProvider) -> VisionProvider:
        try:
            async with self._sessions.begin() as session:
                if provider.active:
                    await self._deactivate_others(session, provider.id)
                row = (
                    await session.execute(
                        vision_providers.insert()
                        .values(
                            id=provider.id,
                            create_time=provider.create_time,
                            update_time=provider.update_time,
                            **_values(provider),
                        )
                        .returning(vision_providers)
                    )
                ).one()
        except IntegrityError as error:
            raise Aborted("another change to the vision providers got there first; try again") from error
        return _provider(row)

    async def get(self, *, provider_id: str) -> VisionProvider | None:
        async with self._sessions() as session:
            row = (await session.execute(select(vision_providers).where(vision_providers.c.id == provider_id))).first()
        return _provider(row) if row else None

    async def active(self) -> VisionProvider | None:
        async with self._sessions() as session:
            row = (await session.execute(select(vision_providers).where(vision_providers.c.active))).first()
        return _provider(row) if row else None

    async def list_page(self, *, after_id: str, limit: int) -> list[VisionProvider]:
        query = select(vision_providers).order_by(vision_providers.c.id).limit(limit)
        if after_id:
            query = query.where(vision_providers.c.id > after_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [_provider(r) for r in rows]

    async def update(self, *, provider: VisionProvider) -> VisionProvider | None:
        try:
            async with self._sessions.begin() as session:
                if provider.active:
                    await self._deactivate_others(session, provider.id)
                row = (
                    await session.execute(
                        update(vision_providers)
                        .where(vision_providers.c.id == provider.id)
                        .values(update_time=provider.update_time, **_values(provider))
                        .returning(vision_providers)
                    )
                ).first()
        except IntegrityError as error:
            raise Aborted("another change to the vision providers got there first; try again") from error
        return _provider(row) if row else None

    async def delete(self, *, provider_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(delete(vision_providers).where(vision_providers.c.id == provider_id))
        return result.rowcount > 0

    async def count(self) -> int:
        async with self._sessions() as session:
            return (await session.execute(select(func.count()).select_from(vision_providers))).scalar_one()

    @staticmethod
    async def _deactivate_others(session: AsyncSession, provider_id: str) -> None:
        await session.execute(
            update(vision_providers)
            .where(vision_providers.c.active, vision_providers.c.id != provider_id)
            .values(active=False, update_time=func.clock_timestamp())
        )
