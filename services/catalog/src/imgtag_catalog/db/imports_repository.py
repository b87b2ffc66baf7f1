"""SQL for import jobs and their per-entry report; keyword-only functions. An entry's outcome
and the job's counters change in one transaction, and only once per entry, so a job resumed
after a crash never counts an entry twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_catalog.db.tables import import_items, import_jobs
from imgtag_catalog.domain.imports import (
    ImportItemRecord,
    ImportJobRecord,
    ImportState,
    ItemOutcome,
)
from imgtag_common.filtering import Expr, FieldCompiler, compile_filter, enum_field, text_field
from imgtag_common.pagination import Cursor

# Filter fields of ListImportJobs: `state = RUNNING`, `creator = "users/..."`.
IMPORT_JOB_FILTER_FIELDS: dict[str, FieldCompiler] = {
    "state": enum_field(
        import_jobs.c.state, "state", {s.name: s.value for s in ImportState if s is not ImportState.RECEIVING}
    ),
    "creator": text_field(import_jobs.c.creator, "creator"),
}
_COUNTER = {
    ItemOutcome.CREATED: import_jobs.c.imported_count,
    ItemOutcome.DUPLICATE: import_jobs.c.skipped_count,
    ItemOutcome.REJECTED: import_jobs.c.failed_count,
}


def _job(row: Any) -> ImportJobRecord:
    data = dict(row._mapping)
    data["state"] = ImportState(data["state"])
    data["source"], data["options"] = dict(data["source"] or {}), dict(data["options"] or {})
    return ImportJobRecord(**data)


def _item(row: Any) -> ImportItemRecord:
    return ImportItemRecord(
        index=row.entry_index,
        source_item=row.source_item,
        outcome=ItemOutcome(row.outcome) if row.outcome else None,
        asset_id=row.asset_id,
        error_code=row.error_code,
        error_reason=row.error_reason,
        error_message=row.error_message,
        attempts=row.attempts,
        start_time=row.start_time,
    )


def _job_values(job: ImportJobRecord) -> dict[str, Any]:
    values = {k: v for k, v in job.__dict__.items() if k != "items"}
    values["state"] = job.state.value
    return values


class ImportJobRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def insert(self, *, job: ImportJobRecord) -> None:
        async with self._sessions.begin() as session:
            await session.execute(insert(import_jobs).values(**_job_values(job)))

    async def get(self, *, job_id: uuid.UUID) -> ImportJobRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(import_jobs).where(import_jobs.c.id == job_id))).first()
        return _job(row) if row else None

    async def delete(self, *, job_id: uuid.UUID) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(import_jobs).where(import_jobs.c.id == job_id))

    async def transition(
        self, *, job_id: uuid.UUID, to: ImportState, only_from: frozenset[ImportState], changes: dict[str, Any]
    ) -> ImportJobRecord | None:
        """Move a job to `to` if it is in one of `only_from` (None otherwise): the one way states
        change, so a cancel and a finishing worker cannot overwrite each other."""
        statement = (
            update(import_jobs)
            .where(import_jobs.c.id == job_id, import_jobs.c.state.in_([s.value for s in only_from]))
            .values(state=to.value, **changes)
            .returning(import_jobs)
        )
        async with self._sessions.begin() as session:
            row = (await session.execute(statement)).first()
        return _job(row) if row else None

    async def clear_archive(self, *, job_id: uuid.UUID) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(import_jobs).where(import_jobs.c.id == job_id).values(archive_key=""))

    async def list_page(
        self, *, creator: str | None, filters: Sequence[Expr], cursor: Cursor | None, limit: int
    ) -> list[ImportJobRecord]:
        """Newest first, keyset on (create_time, id); RECEIVING jobs are never listed."""
        query = select(import_jobs).where(import_jobs.c.state != ImportState.RECEIVING.value)
        if creator is not None:
            query = query.where(import_jobs.c.creator == creator)
        for expr in filters:
            query = query.where(compile_filter(expr, IMPORT_JOB_FILTER_FIELDS))
        if cursor is not None:
            query = query.where(_before(cursor))
        query = query.order_by(import_jobs.c.create_time.desc(), import_jobs.c.id.desc()).limit(limit)
        async with self._sessions() as session:
            return [_job(r) for r in (await session.execute(query)).all()]

    async def items(self, *, job_id: uuid.UUID, limit: int) -> list[ImportItemRecord]:
        """Finished entries in archive order."""
        query = (
            select(import_items)
            .where(import_items.c.job_id == job_id, import_items.c.outcome.is_not(None))
            .order_by(import_items.c.entry_index)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_item(r) for r in (await session.execute(query)).all()]

    async def item_progress(self, *, job_id: uuid.UUID) -> dict[int, ImportItemRecord]:
        """Every entry begun or finished, by index."""
        async with self._sessions() as session:
            rows = (await session.execute(select(import_items).where(import_items.c.job_id == job_id))).all()
        return {r.entry_index: _item(r) for r in rows}

    async def begin_item(self, *, job_id: uuid.UUID, index: int, source_item: str) -> ImportItemRecord:
        """Record that an entry is being imported (again): attempts + 1, first start time kept."""
        statement = pg_insert(import_items).values(
            job_id=job_id, entry_index=index, source_item=source_item, attempts=1, start_time=datetime.now(UTC)
        )
        statement = statement.on_conflict_do_update(
            index_elements=[import_items.c.job_id, import_items.c.entry_index],
            set_={"attempts": import_items.c.attempts + 1},
        ).returning(import_items)
        async with self._sessions.begin() as session:
            return _item((await session.execute(statement)).one())

    async def note_item_failure(self, *, job_id: uuid.UUID, index: int, message: str, counts: bool) -> None:
        """Keep why an attempt at an entry failed; a failure that is not the entry's own does not
        count as an attempt."""
        values: dict[str, Any] = {"error_message": message}
        if not counts:
            values["attempts"] = func.greatest(import_items.c.attempts - 1, 0)
        async with self._sessions.begin() as session:
            await session.execute(
                update(import_items)
                .where(import_items.c.job_id == job_id, import_items.c.entry_index == index)
                .values(**values)
            )

    async def finish_item(self, *, job_id: uuid.UUID, item: ImportItemRecord) -> bool:
        """Record an entry's outcome and count it, once: False when it was already finished."""
        assert item.outcome is not None
        now = datetime.now(UTC)
        values = {
            "source_item": item.source_item,
            "outcome": item.outcome.value,
            "asset_id": item.asset_id,
            "error_code": item.error_code,
            "error_reason": item.error_reason,
            "error_message": item.error_message,
            "end_time": now,
        }
        statement = pg_insert(import_items).values(job_id=job_id, entry_index=item.index, start_time=now, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[import_items.c.job_id, import_items.c.entry_index],
            set_=values,
            where=import_items.c.outcome.is_(None),
        ).returning(import_items.c.entry_index)
        counter = _COUNTER[item.outcome]
        async with self._sessions.begin() as session:
            if (await session.execute(statement)).first() is None:
                return False
            await session.execute(
                update(import_jobs)
                .where(import_jobs.c.id == job_id)
                .values(
                    {
                        import_jobs.c.processed_count: import_jobs.c.processed_count + 1,
                        counter: counter + 1,
                    }
                )
            )
        return True

    async def in_states(
        self, *, states: frozenset[ImportState], older_than: datetime, limit: int
    ) -> list[ImportJobRecord]:
        query = (
            select(import_jobs)
            .where(import_jobs.c.state.in_([s.value for s in states]), import_jobs.c.create_time < older_than)
            .order_by(import_jobs.c.create_time)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_job(r) for r in (await session.execute(query)).all()]

    async def ended_with_archive(self, *, limit: int) -> list[ImportJobRecord]:
        """Ended jobs whose archive is still stored (its deletion was interrupted)."""
        ended = [s.value for s in (ImportState.SUCCEEDED, ImportState.FAILED, ImportState.CANCELLED)]
        query = (
            select(import_jobs)
            .where(import_jobs.c.state.in_(ended), import_jobs.c.archive_key != "")
            .order_by(import_jobs.c.create_time)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_job(r) for r in (await session.execute(query)).all()]


def _before(cursor: Cursor) -> ColumnElement[bool]:
    return or_(
        import_jobs.c.create_time < cursor.create_time,
        and_(import_jobs.c.create_time == cursor.create_time, import_jobs.c.id < cursor.id),
    )
