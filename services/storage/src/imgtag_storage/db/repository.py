"""SQL for the storage service; keyword-only functions, one transaction per call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_common.filtering import Expr, FieldCompiler, boolean_field, compile_filter, enum_field, integer_field
from imgtag_common.filtering import invalid as invalid_filter
from imgtag_storage.db.tables import endpoints, objects, replicas, scrubs
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointKind,
    EndpointRole,
    HealthState,
    LocalConfig,
    ObjectReplica,
    ObjectState,
    Replica,
    ReplicaState,
    ReplicationOverview,
    ReplicationTotals,
    S3Config,
    Scrub,
    ScrubState,
    StoredObject,
)


def _config(kind: str, raw: dict[str, Any]) -> S3Config | LocalConfig:
    if kind == EndpointKind.LOCAL:
        return LocalConfig(root_path=raw.get("root_path") or raw.get("root", ""))
    known = {k: v for k, v in raw.items() if k in S3Config.__dataclass_fields__}
    return S3Config(**known)


def plain_secret_of(raw: dict[str, Any]) -> str:
    """A secret stored in plain text by an older version (sealed on start)."""
    return raw.get("secret_access_key", "")


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        display_name=row.display_name,
        role=EndpointRole(row.role),
        config=_config(row.kind, dict(row.config)),
        read_priority=row.read_priority,
        read_weight=row.read_weight,
        is_default_upload=row.is_default_upload,
        enabled=row.enabled,
        health_state=HealthState(row.health_state),
        consecutive_failures=row.consecutive_failures,
        last_check_time=row.last_check_time,
        last_healthy_time=row.last_healthy_time,
        last_error=row.last_error,
        latency_ms=row.latency_ms,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def _replica(row: Any) -> Replica:
    return Replica(
        endpoint_id=row.endpoint_id,
        state=ReplicaState(row.state),
        verify_time=row.verify_time,
        last_error=row.last_error,
        attempt_count=row.attempt_count,
        next_attempt_time=row.next_attempt_time,
        create_time=row.create_time,
    )


def _scrub(row: Any) -> Scrub:
    return Scrub(
        id=row.id,
        endpoint_id=row.endpoint_id,
        state=ScrubState(row.state),
        total_count=row.total_count,
        checked_count=row.checked_count,
        verified_count=row.verified_count,
        missing_count=row.missing_count,
        corrupt_count=row.corrupt_count,
        error_count=row.error_count,
        error=row.error,
        last_key=row.last_key,
        create_time=row.create_time,
        end_time=row.end_time,
    )


def _health_field(op: str, value: str, position: int):
    return enum_field(
        endpoints.c.health_state,
        "health.state",
        {s.name: s.value for s in HealthState} | {"STATE_UNSPECIFIED": HealthState.UNKNOWN.value},
    )(op, value, position)


ENDPOINT_FILTER_FIELDS: dict[str, FieldCompiler] = {
    "type": enum_field(endpoints.c.kind, "type", {"LOCAL": "local", "S3": "s3"}),
    "role": enum_field(endpoints.c.role, "role", {"PRIMARY": "primary", "BACKUP": "backup"}),
    "enabled": boolean_field(endpoints.c.enabled, "enabled"),
    "health.state": _health_field,
}
ENDPOINT_ORDER = {
    "read_priority": endpoints.c.read_priority,
    "display_name": endpoints.c.display_name,
    "create_time": endpoints.c.create_time,
}


def _endpoint_ref(op: str, value: str, position: int):
    if op not in ("=", "!="):
        raise invalid_filter("endpoint supports = and !=", position)
    endpoint_id = value.removeprefix("endpoints/")
    return replicas.c.endpoint_id == endpoint_id if op == "=" else replicas.c.endpoint_id != endpoint_id


def _key_field(op: str, value: str, position: int):
    if op == ":":
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return replicas.c.object_key.like(f"{escaped}%", escape="\\")
    if op in ("=", "!="):
        return replicas.c.object_key == value if op == "=" else replicas.c.object_key != value
    raise invalid_filter("key supports =, != and : (prefix)", position)


REPLICA_FILTER_FIELDS: dict[str, FieldCompiler] = {
    "state": enum_field(
        replicas.c.state, "state", {s.name: s.value for s in ReplicaState if s is not ReplicaState.DELETING}
    ),
    "endpoint": _endpoint_ref,
    "key": _key_field,
    "attempt_count": integer_field(replicas.c.attempt_count, "attempt_count"),
}
# next_attempt_time is NULL for verified replicas: sort those as the far future.
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
REPLICA_ORDER = {
    "next_attempt_time": func.coalesce(replicas.c.next_attempt_time, literal(_FAR_FUTURE)),
    "key": replicas.c.object_key,
    "attempt_count": replicas.c.attempt_count,
}


class SqlStorageRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------------ endpoints

    async def list_endpoints(self) -> list[Endpoint]:
        async with self._sessions() as session:
            rows = (await session.execute(select(endpoints).order_by(endpoints.c.read_priority, endpoints.c.id))).all()
        return [_endpoint(r) for r in rows]

    async def raw_configs(self) -> list[tuple[str, dict[str, Any]]]:
        async with self._sessions() as session:
            return [(r.id, dict(r.config)) for r in (await session.execute(select(endpoints.c.id, endpoints.c.config)))]

    async def replace_config(self, *, endpoint_id: str, config: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(endpoints).where(endpoints.c.id == endpoint_id).values(config=config))

    async def page_endpoints(
        self, *, filter_expr: Expr | None, order_by: str, descending: bool, after: tuple[Any, str] | None, limit: int
    ) -> list[Endpoint]:
        column = ENDPOINT_ORDER[order_by]
        query = select(endpoints)
        if filter_expr is not None:
            query = query.where(compile_filter(filter_expr, ENDPOINT_FILTER_FIELDS))
        if after is not None:
            position = tuple_(column, endpoints.c.id)
            query = query.where(position < tuple_(*after) if descending else position > tuple_(*after))
        order = (column.desc(), endpoints.c.id.desc()) if descending else (column, endpoints.c.id)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(*order).limit(limit))).all()
        return [_endpoint(r) for r in rows]

    async def get_endpoint(self, *, endpoint_id: str) -> Endpoint | None:
        async with self._sessions() as session:
            row = (await session.execute(select(endpoints).where(endpoints.c.id == endpoint_id))).first()
        return _endpoint(row) if row else None

    async def default_upload_endpoint(self) -> Endpoint | None:
        async with self._sessions() as session:
            row = (
                await session.execute(select(endpoints).where(endpoints.c.is_default_upload, endpoints.c.enabled))
            ).first()
        return _endpoint(row) if row else None

    async def insert_endpoint(self, *, endpoint: Endpoint) -> Endpoint | None:
        """None when the id is taken."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    pg_insert(endpoints)
                    .values(
                        id=endpoint.id,
                        display_name=endpoint.display_name,
                        kind=endpoint.kind.value,
                        role=endpoint.role.value,
                        config=endpoint.config.to_dict(),
                        read_priority=endpoint.read_priority,
                        read_weight=endpoint.read_weight,
                        is_default_upload=endpoint.is_default_upload,
                        enabled=endpoint.enabled,
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                    .returning(endpoints)
                )
            ).first()
        return _endpoint(row) if row else None

    async def update_endpoint(self, *, endpoint: Endpoint, expected_update_time: datetime | None) -> Endpoint | None:
        condition = endpoints.c.id == endpoint.id
        if expected_update_time is not None:
            condition = and_(condition, endpoints.c.update_time == expected_update_time)
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(endpoints)
                    .where(condition)
                    .values(
                        display_name=endpoint.display_name,
                        role=endpoint.role.value,
                        config=endpoint.config.to_dict(),
                        read_priority=endpoint.read_priority,
                        read_weight=endpoint.read_weight,
                        enabled=endpoint.enabled,
                        update_time=func.clock_timestamp(),
                    )
                    .returning(endpoints)
                )
            ).first()
        return _endpoint(row) if row else None

    async def set_default_upload(self, *, endpoint_id: str) -> Endpoint | None:
        """Move the flag in one transaction; None unless the endpoint is an enabled PRIMARY."""
        async with self._sessions.begin() as session:
            target = (
                await session.execute(select(endpoints).where(endpoints.c.id == endpoint_id).with_for_update())
            ).first()
            if target is None or not target.enabled or target.role != EndpointRole.PRIMARY:
                return None
            await session.execute(
                update(endpoints)
                .where(endpoints.c.is_default_upload, endpoints.c.id != endpoint_id)
                .values(is_default_upload=False, update_time=func.clock_timestamp())
            )
            row = (
                await session.execute(
                    update(endpoints)
                    .where(endpoints.c.id == endpoint_id)
                    .values(is_default_upload=True, update_time=func.clock_timestamp())
                    .returning(endpoints)
                )
            ).one()
        return _endpoint(row)

    async def delete_endpoint(self, *, endpoint_id: str, force: bool) -> int:
        async with self._sessions.begin() as session:
            await session.execute(select(endpoints.c.id).where(endpoints.c.id == endpoint_id).with_for_update())
            other = replicas.alias("other")
            other_verified = select(literal(1)).where(
                other.c.object_key == replicas.c.object_key,
                other.c.endpoint_id != endpoint_id,
                other.c.state == ReplicaState.VERIFIED.value,
            )
            only_copies = (
                await session.execute(
                    select(func.count())
                    .select_from(replicas)
                    .where(
                        replicas.c.endpoint_id == endpoint_id,
                        replicas.c.state == ReplicaState.VERIFIED.value,
                        ~exists(other_verified),
                    )
                )
            ).scalar_one()
            if only_copies and not force:
                return only_copies
            await session.execute(delete(replicas).where(replicas.c.endpoint_id == endpoint_id))
            await session.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))
        return only_copies

    async def record_probe(
        self,
        *,
        endpoint_id: str,
        ok: bool,
        error: str,
        degraded: bool,
        at: datetime,
        latency_ms: float,
        unreachable_after: int,
    ) -> tuple[HealthState, HealthState] | None:
        """Count a probe: UNREACHABLE after `unreachable_after` failures in a row, DEGRADED
        before that (or when it works only partly), HEALTHY after a success."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    select(endpoints.c.health_state, endpoints.c.consecutive_failures)
                    .where(endpoints.c.id == endpoint_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None
            before = HealthState(row.health_state)
            if ok:
                after, failures = (HealthState.DEGRADED if degraded else HealthState.HEALTHY), 0
                values: dict[str, Any] = {"last_healthy_time": at, "last_error": error[:500]}
            else:
                failures = row.consecutive_failures + 1
                after = HealthState.UNREACHABLE if failures >= unreachable_after else HealthState.DEGRADED
                values = {"last_error": error[:500]}
            await session.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint_id)
                .values(
                    health_state=after.value,
                    consecutive_failures=failures,
                    last_check_time=at,
                    latency_ms=latency_ms,
                    **values,
                )
            )
        return before, after

    async def usage(self, *, endpoint_id: str) -> tuple[int, int]:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(func.count(), func.coalesce(func.sum(objects.c.size_bytes), 0))
                    .select_from(replicas.join(objects, objects.c.key == replicas.c.object_key))
                    .where(replicas.c.endpoint_id == endpoint_id, replicas.c.state == ReplicaState.VERIFIED.value)
                )
            ).one()
        return int(row[0]), int(row[1])

    # ------------------------------------------------------------------ objects

    async def _object(self, session: AsyncSession, key: str) -> StoredObject | None:
        row = (await session.execute(select(objects).where(objects.c.key == key))).first()
        if row is None:
            return None
        reps = (
            await session.execute(select(replicas).where(replicas.c.object_key == key).order_by(replicas.c.endpoint_id))
        ).all()
        return StoredObject(
            key=row.key,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            content_type=row.content_type,
            state=ObjectState(row.state),
            create_time=row.create_time,
            replicas=[_replica(r) for r in reps],
        )

    async def get_object(self, *, key: str) -> StoredObject | None:
        async with self._sessions() as session:
            return await self._object(session, key)

    async def claim_key(
        self, *, key: str, content_type: str, state: ObjectState, endpoint_id: str, staging_key: str = ""
    ) -> StoredObject | None:
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    pg_insert(objects)
                    .values(
                        key=key,
                        size_bytes=0,
                        sha256="",
                        content_type=content_type,
                        state=state.value,
                        staging_key=staging_key,
                        claim_endpoint_id=endpoint_id,
                    )
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(objects)
                )
            ).first()
        if row is None:
            return None
        return StoredObject(key=key, size_bytes=0, sha256="", content_type=content_type, state=state)

    async def staging_key(self, *, key: str) -> tuple[str, str, str] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(objects.c.claim_endpoint_id, objects.c.staging_key, objects.c.content_type).where(
                        objects.c.key == key, objects.c.state == ObjectState.UPLOADING.value
                    )
                )
            ).first()
        return (row.claim_endpoint_id, row.staging_key, row.content_type) if row else None

    async def release_claim(self, *, key: str, state: ObjectState) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(objects).where(objects.c.key == key, objects.c.state == state.value))

    async def stale_claims(self, *, older_than: datetime) -> list[tuple[str, str, str, str]]:
        """(key, state, endpoint id, staging key) of claims left by writers that never finished."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(objects.c.key, objects.c.state, objects.c.claim_endpoint_id, objects.c.staging_key).where(
                        objects.c.state.in_([ObjectState.WRITING.value, ObjectState.UPLOADING.value]),
                        objects.c.create_time < older_than,
                    )
                )
            ).all()
        return [(r.key, r.state, r.claim_endpoint_id or "", r.staging_key) for r in rows]

    async def complete_write(
        self, *, key: str, size_bytes: int, sha256: str, endpoint_id: str, backups: Sequence[str]
    ) -> StoredObject:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            await session.execute(
                update(objects)
                .where(objects.c.key == key)
                .values(size_bytes=size_bytes, sha256=sha256, state=ObjectState.STORED.value, staging_key="")
            )
            rows = [
                {
                    "object_key": key,
                    "endpoint_id": endpoint_id,
                    "state": ReplicaState.VERIFIED.value,
                    "verify_time": now,
                    "attempt_count": 1,
                    "next_attempt_time": None,
                }
            ] + [
                {
                    "object_key": key,
                    "endpoint_id": backup,
                    "state": ReplicaState.PENDING.value,
                    "verify_time": None,
                    "attempt_count": 0,
                    "next_attempt_time": now,
                }
                for backup in backups
                if backup != endpoint_id
            ]
            await session.execute(insert(replicas), rows)
            obj = await self._object(session, key)
        assert obj is not None
        return obj

    async def list_objects(self, *, prefix: str, after: str, limit: int) -> list[StoredObject]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            select(objects)
            .where(objects.c.state == ObjectState.STORED.value, objects.c.key.like(f"{escaped}%", escape="\\"))
            .order_by(objects.c.key)
            .limit(limit)
        )
        if after:
            query = query.where(objects.c.key > after)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            keys = [r.key for r in rows]
            reps = (
                (await session.execute(select(replicas).where(replicas.c.object_key.in_(keys)))).all() if keys else []
            )
        by_key: dict[str, list[Replica]] = {}
        for r in reps:
            by_key.setdefault(r.object_key, []).append(_replica(r))
        return [
            StoredObject(
                key=r.key,
                size_bytes=r.size_bytes,
                sha256=r.sha256,
                content_type=r.content_type,
                state=ObjectState(r.state),
                create_time=r.create_time,
                replicas=by_key.get(r.key, []),
            )
            for r in rows
        ]

    async def mark_deleting(self, *, key: str) -> StoredObject | None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(objects)
                .where(
                    objects.c.key == key, objects.c.state.in_([ObjectState.STORED.value, ObjectState.DELETING.value])
                )
                .values(state=ObjectState.DELETING.value)
            )
            await session.execute(
                update(replicas).where(replicas.c.object_key == key).values(state=ReplicaState.DELETING.value)
            )
            obj = await self._object(session, key)
            if obj is not None and obj.state is ObjectState.DELETING and not obj.replicas:
                await session.execute(delete(objects).where(objects.c.key == key))
        return obj

    async def drop_replica(self, *, key: str, endpoint_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(replicas).where(replicas.c.object_key == key, replicas.c.endpoint_id == endpoint_id)
            )
            await session.execute(
                delete(objects).where(
                    objects.c.key == key,
                    objects.c.state == ObjectState.DELETING.value,
                    ~exists(select(literal(1)).where(replicas.c.object_key == key)),
                )
            )

    # ------------------------------------------------------------------ replicas

    async def begin_copy(self, *, key: str, endpoint_id: str) -> tuple[StoredObject, ReplicaState, int] | None:
        async with self._sessions.begin() as session:
            row = (await session.execute(select(objects.c.state).where(objects.c.key == key).with_for_update())).first()
            if row is None or row.state != ObjectState.STORED.value:
                return None
            current = (
                await session.execute(
                    select(replicas.c.state, replicas.c.attempt_count).where(
                        replicas.c.object_key == key, replicas.c.endpoint_id == endpoint_id
                    )
                )
            ).first()
            if current is not None and current.state == ReplicaState.VERIFIED.value:
                return None
            before = ReplicaState(current.state) if current is not None else ReplicaState.PENDING
            await session.execute(
                pg_insert(replicas)
                .values(
                    object_key=key,
                    endpoint_id=endpoint_id,
                    state=ReplicaState.PENDING.value,
                    attempt_count=1,
                    next_attempt_time=None,
                )
                .on_conflict_do_update(
                    index_elements=["object_key", "endpoint_id"],
                    set_={"attempt_count": replicas.c.attempt_count + 1, "next_attempt_time": None},
                )
            )
            obj = await self._object(session, key)
        assert obj is not None
        return obj, before, current.attempt_count if current is not None else 0

    async def finish_copy(self, *, key: str, endpoint_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(replicas)
                .where(
                    replicas.c.object_key == key,
                    replicas.c.endpoint_id == endpoint_id,
                    replicas.c.state != ReplicaState.DELETING.value,
                    exists(select(literal(1)).where(objects.c.key == key, objects.c.state == ObjectState.STORED.value)),
                )
                .values(
                    state=ReplicaState.VERIFIED.value,
                    verify_time=func.now(),
                    last_error="",
                    next_attempt_time=None,
                )
            )
        return result.rowcount == 1

    async def record_copy_failure(
        self, *, key: str, endpoint_id: str, error: str, next_attempt: datetime | None
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(replicas)
                .where(
                    replicas.c.object_key == key,
                    replicas.c.endpoint_id == endpoint_id,
                    replicas.c.state.in_(
                        [
                            s.value
                            for s in (
                                ReplicaState.PENDING,
                                ReplicaState.FAILED,
                                ReplicaState.MISSING,
                                ReplicaState.CORRUPT,
                            )
                        ]
                    ),
                )
                .values(
                    state=case(
                        (literal(next_attempt is None), ReplicaState.FAILED.value),
                        else_=replicas.c.state,
                    ),
                    last_error=error[:500],
                    next_attempt_time=next_attempt,
                )
            )

    async def mark_replica(self, *, key: str, endpoint_id: str, state: ReplicaState, error: str = "") -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(replicas)
                .where(
                    replicas.c.object_key == key,
                    replicas.c.endpoint_id == endpoint_id,
                    replicas.c.state != ReplicaState.DELETING.value,
                )
                .values(state=state.value, last_error=error[:500], next_attempt_time=func.now())
            )

    async def reset_for_copy(
        self, *, states: Sequence[ReplicaState], endpoint_id: str | None, keys: Sequence[str]
    ) -> list[tuple[str, str]]:
        condition = [replicas.c.state.in_([s.value for s in states])]
        if endpoint_id is not None:
            condition.append(replicas.c.endpoint_id == endpoint_id)
        if keys:
            condition.append(replicas.c.object_key.in_(list(keys)))
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    update(replicas)
                    .where(*condition)
                    .values(
                        state=case(
                            (replicas.c.state == ReplicaState.FAILED.value, ReplicaState.PENDING.value),
                            else_=replicas.c.state,
                        ),
                        next_attempt_time=func.now(),
                    )
                    .returning(replicas.c.object_key, replicas.c.endpoint_id)
                )
            ).all()
        return [(r.object_key, r.endpoint_id) for r in rows]

    async def missing_on(self, *, endpoint_id: str, role: EndpointRole) -> list[str]:
        async with self._sessions.begin() as session:
            if role is EndpointRole.BACKUP:
                # A backup holds every object: give it a PENDING record of each one it lacks.
                await session.execute(
                    pg_insert(replicas)
                    .from_select(
                        ["object_key", "endpoint_id", "state", "next_attempt_time"],
                        select(
                            objects.c.key, literal(endpoint_id), literal(ReplicaState.PENDING.value), func.now()
                        ).where(objects.c.state == ObjectState.STORED.value),
                    )
                    .on_conflict_do_nothing(index_elements=["object_key", "endpoint_id"])
                )
            rows = (
                await session.execute(
                    select(replicas.c.object_key)
                    .join(objects, objects.c.key == replicas.c.object_key)
                    .where(
                        replicas.c.endpoint_id == endpoint_id,
                        replicas.c.state.in_(
                            [
                                s.value
                                for s in (
                                    ReplicaState.PENDING,
                                    ReplicaState.FAILED,
                                    ReplicaState.MISSING,
                                    ReplicaState.CORRUPT,
                                )
                            ]
                        ),
                        objects.c.state == ObjectState.STORED.value,
                    )
                    .order_by(replicas.c.object_key)
                )
            ).all()
        return [r.object_key for r in rows]

    async def replicas_on(self, *, endpoint_id: str, after: str, limit: int) -> list[StoredObject]:
        query = (
            select(objects, replicas.c.state.label("replica_state"))
            .join(replicas, replicas.c.object_key == objects.c.key)
            .where(
                replicas.c.endpoint_id == endpoint_id,
                objects.c.state == ObjectState.STORED.value,
                objects.c.key > after,
            )
            .order_by(objects.c.key)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            StoredObject(
                key=r.key,
                size_bytes=r.size_bytes,
                sha256=r.sha256,
                content_type=r.content_type,
                replicas=[Replica(endpoint_id=endpoint_id, state=ReplicaState(r.replica_state))],
            )
            for r in rows
        ]

    async def count_replicas_on(self, *, endpoint_id: str) -> int:
        async with self._sessions() as session:
            return (
                await session.execute(
                    select(func.count())
                    .select_from(replicas.join(objects, objects.c.key == replicas.c.object_key))
                    .where(replicas.c.endpoint_id == endpoint_id, objects.c.state == ObjectState.STORED.value)
                )
            ).scalar_one()

    async def overview(self) -> ReplicationOverview:
        stored = objects.c.state == ObjectState.STORED.value
        async with self._sessions() as session:
            per_state = (
                await session.execute(
                    select(
                        replicas.c.endpoint_id,
                        replicas.c.state,
                        func.count(),
                        func.coalesce(func.sum(objects.c.size_bytes), 0),
                        func.min(replicas.c.create_time),
                        func.max(replicas.c.verify_time),
                    )
                    .join(objects, objects.c.key == replicas.c.object_key)
                    .where(stored)
                    .group_by(replicas.c.endpoint_id, replicas.c.state)
                )
            ).all()
            all_endpoints = (
                await session.execute(
                    select(endpoints.c.id, endpoints.c.role, endpoints.c.enabled).order_by(
                        endpoints.c.read_priority, endpoints.c.id
                    )
                )
            ).all()
            object_count = (await session.execute(select(func.count()).where(stored))).scalar_one()
            verified_count = (
                select(func.count())
                .where(replicas.c.object_key == objects.c.key, replicas.c.state == ReplicaState.VERIFIED.value)
                .correlate(objects)
                .scalar_subquery()
            )
            # What an object should have: its own primary replica plus every enabled backup.
            enabled_backups = (
                await session.execute(
                    select(func.count()).where(endpoints.c.role == EndpointRole.BACKUP.value, endpoints.c.enabled)
                )
            ).scalar_one()
            under = (
                await session.execute(select(func.count()).where(stored, verified_count < 1 + enabled_backups))
            ).scalar_one()
            unavailable = (await session.execute(select(func.count()).where(stored, verified_count == 0))).scalar_one()
        totals: dict[str, ReplicationTotals] = {
            e.id: ReplicationTotals(
                endpoint_id=e.id,
                role=EndpointRole(e.role),
                counts={s: 0 for s in ReplicaState},
                pending_bytes=0,
                oldest_unverified=None,
                last_verify_time=None,
            )
            for e in all_endpoints
        }
        for endpoint_id, state, count, size, oldest, last_verified in per_state:
            t = totals.get(endpoint_id)
            if t is None:
                continue
            replica_state = ReplicaState(state)
            t.counts[replica_state] = int(count)
            if replica_state is not ReplicaState.VERIFIED:
                t.pending_bytes += int(size)
                if oldest is not None and (t.oldest_unverified is None or oldest < t.oldest_unverified):
                    t.oldest_unverified = oldest
            if last_verified is not None and (t.last_verify_time is None or last_verified > t.last_verify_time):
                t.last_verify_time = last_verified
        return ReplicationOverview(
            endpoints=list(totals.values()),
            object_count=int(object_count),
            under_replicated_count=int(under),
            unavailable_count=int(unavailable),
        )

    async def page_replicas(
        self,
        *,
        filter_expr: Expr | None,
        order_by: str,
        descending: bool,
        after: tuple[Any, str, str] | None,
        limit: int,
    ) -> list[ObjectReplica]:
        column = REPLICA_ORDER[order_by]
        query = (
            select(replicas, objects.c.size_bytes, column.label("sort_value"))
            .join(objects, objects.c.key == replicas.c.object_key)
            .where(objects.c.state == ObjectState.STORED.value)
        )
        if filter_expr is not None:
            query = query.where(compile_filter(filter_expr, REPLICA_FILTER_FIELDS))
        position = tuple_(column, replicas.c.object_key, replicas.c.endpoint_id)
        if after is not None:
            query = query.where(position < tuple_(*after) if descending else position > tuple_(*after))
        order = (
            (column.desc(), replicas.c.object_key.desc(), replicas.c.endpoint_id.desc())
            if descending
            else (column, replicas.c.object_key, replicas.c.endpoint_id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(*order).limit(limit))).all()
        return [ObjectReplica(key=r.object_key, size_bytes=r.size_bytes, replica=_replica(r)) for r in rows]

    # ------------------------------------------------------------------ scrubs

    async def insert_scrub(self, *, scrub: Scrub) -> Scrub:
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    insert(scrubs)
                    .values(
                        id=scrub.id,
                        endpoint_id=scrub.endpoint_id,
                        state=scrub.state.value,
                        total_count=scrub.total_count,
                    )
                    .returning(scrubs)
                )
            ).one()
        return _scrub(row)

    async def get_scrub(self, *, scrub_id: str) -> Scrub | None:
        async with self._sessions() as session:
            row = (await session.execute(select(scrubs).where(scrubs.c.id == scrub_id))).first()
        return _scrub(row) if row else None

    async def save_scrub(self, *, scrub: Scrub) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(scrubs)
                .where(scrubs.c.id == scrub.id)
                .values(
                    state=scrub.state.value,
                    total_count=scrub.total_count,
                    checked_count=scrub.checked_count,
                    verified_count=scrub.verified_count,
                    missing_count=scrub.missing_count,
                    corrupt_count=scrub.corrupt_count,
                    error_count=scrub.error_count,
                    error=scrub.error[:500],
                    last_key=scrub.last_key,
                    end_time=scrub.end_time,
                )
            )
