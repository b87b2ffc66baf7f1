"""SQL for the storage service; keyword-only functions, one transaction per call site."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_storage.db.tables import endpoints, objects, replicas
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointKind,
    EndpointRole,
    HealthState,
    Replica,
    ReplicaState,
    StoredObject,
)


def _endpoint(row) -> Endpoint:
    return Endpoint(
        id=row.id,
        display_name=row.display_name,
        kind=EndpointKind(row.kind),
        role=EndpointRole(row.role),
        config=dict(row.config),
        read_priority=row.read_priority,
        read_weight=row.read_weight,
        is_default_upload=row.is_default_upload,
        enabled=row.enabled,
        health_state=HealthState(row.health_state),
        last_check_time=row.last_check_time,
        last_error=row.last_error,
        create_time=row.create_time,
        update_time=row.update_time,
    )


class StorageRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list_endpoints(self, *, after: uuid.UUID | None = None, limit: int = 1000) -> list[Endpoint]:
        query = select(endpoints).order_by(endpoints.c.id).limit(limit)
        if after is not None:
            query = query.where(endpoints.c.id > after)
        async with self._sessions() as session:
            return [_endpoint(r) for r in (await session.execute(query)).all()]

    async def get_endpoint(self, *, endpoint_id: uuid.UUID) -> Endpoint | None:
        async with self._sessions() as session:
            row = (await session.execute(select(endpoints).where(endpoints.c.id == endpoint_id))).first()
        return _endpoint(row) if row else None

    async def default_upload_endpoint(self) -> Endpoint | None:
        async with self._sessions() as session:
            row = (
                await session.execute(select(endpoints).where(endpoints.c.is_default_upload, endpoints.c.enabled))
            ).first()
        return _endpoint(row) if row else None

    async def insert_endpoint(self, *, endpoint: Endpoint) -> Endpoint:
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    insert(endpoints)
                    .values(
                        id=endpoint.id,
                        display_name=endpoint.display_name,
                        kind=endpoint.kind.value,
                        role=endpoint.role.value,
                        config=endpoint.config,
                        read_priority=endpoint.read_priority,
                        read_weight=endpoint.read_weight,
                        is_default_upload=endpoint.is_default_upload,
                        enabled=endpoint.enabled,
                    )
                    .returning(endpoints)
                )
            ).one()
        return _endpoint(row)

    async def record_health(self, *, endpoint_id: uuid.UUID, state: HealthState, error: str, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint_id)
                .values(health_state=state.value, last_error=error, last_check_time=at)
            )

    async def get_object(self, *, key: str) -> StoredObject | None:
        async with self._sessions() as session:
            row = (await session.execute(select(objects).where(objects.c.key == key))).first()
            if row is None:
                return None
            reps = (await session.execute(select(replicas).where(replicas.c.object_key == key))).all()
        return StoredObject(
            key=row.key,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            content_type=row.content_type,
            create_time=row.create_time,
            replicas=[
                Replica(
                    endpoint_id=r.endpoint_id,
                    state=ReplicaState(r.state),
                    verify_time=r.verify_time,
                    last_error=r.last_error,
                    attempt_count=r.attempt_count,
                )
                for r in reps
            ],
        )

    async def insert_object(self, *, obj: StoredObject) -> None:
        """Record an object and its replicas in one transaction."""
        async with self._sessions.begin() as session:
            await session.execute(
                insert(objects).values(
                    key=obj.key, size_bytes=obj.size_bytes, sha256=obj.sha256, content_type=obj.content_type
                )
            )
            for replica in obj.replicas:
                await session.execute(
                    insert(replicas).values(
                        object_key=obj.key,
                        endpoint_id=replica.endpoint_id,
                        state=replica.state.value,
                        verify_time=replica.verify_time,
                        last_error=replica.last_error,
                        attempt_count=replica.attempt_count,
                    )
                )

    async def delete_object(self, *, key: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(objects.delete().where(objects.c.key == key))
