"""Durable background jobs kept in the service's own PostgreSQL database, over `pgqueuer`.

A job is a name and a JSON payload in a table (pgqueuer's `pgqueuer`), so it survives a restart
or a kill -9 of any process: a job that was picked but whose worker stopped sending heartbeats
for `heartbeat_timeout_s` is picked again by the next worker (so handlers must be idempotent).

    queue = JobQueue(settings.database_url, heartbeat_timeout_s=30)

    @queue.consumer("storage.replicate", concurrency=8, retry=Retry(max_attempts=8))
    async def replicate(job: Job) -> None:          # raise to fail this attempt
        ...

    await queue.start()                              # in build_server; queue.stop in cleanups
    await queue.enqueue("storage.replicate", {"key": k}, dedupe_key=f"replicate:{k}")
    await queue.enqueue("storage.scrub", {...}, delay_s=60)   # or not_before=datetime

- `enqueue` returns the job id, or None when `dedupe_key` matches a job still queued or
  running (the same work is not queued twice). `enqueue_many` does the same for a batch.
- A consumer runs at most `concurrency` jobs of its name at once, across every process
  sharing the database (pgqueuer enforces it in SQL).
- A handler that raises is retried after `Retry.delay(attempt)` (exponential backoff, capped)
  until `max_attempts` attempts have failed; then the job is dropped from the queue. Every
  failure is recorded with its error: in pgqueuer's log table (`failures()` reads it back) and
  through the consumer's `on_failure(job, error, retry_in)` hook (`retry_in` None: it was the
  last attempt), where a service records the reason on its own rows.
- `stop()` stops taking jobs and waits up to `grace_s` for running ones; those still running
  then are put back in the queue for the next start.

Each service installs the tables in its own database through its alembic migration
(`op.execute` of `install_sql()`); `PGQUEUER_TABLES` names them so schema checks can skip them.
When pgqueuer is upgraded, add a migration that applies `Queries.plan_upgrade()`'s statements."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pgqueuer.adapters.drivers.asyncpg import AsyncpgPoolDriver
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain import errors as pgq_errors
from pgqueuer.domain import models as pgq_models

log = logging.getLogger("imgtag.jobs")

# pgqueuer's own tables (and its enum type), installed by each service's migration.
PGQUEUER_TABLES = frozenset({"pgqueuer", "pgqueuer_log", "pgqueuer_schedules", "pgqueuer_statistics"})


def install_sql() -> str:
    """pgqueuer's DDL for the pinned version (tables in the public schema, durable), for a migration."""
    return QueryBuilderEnvironment().build_install_query(create_schema=False)


@dataclass(frozen=True)
class Retry:
    """Exponential backoff: attempt n (1-based) that fails waits initial * multiplier**(n-1), capped."""

    max_attempts: int = 5
    initial_delay_s: float = 1.0
    max_delay_s: float = 300.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> timedelta:
        return timedelta(seconds=min(self.initial_delay_s * self.multiplier ** max(attempt - 1, 0), self.max_delay_s))


@dataclass(frozen=True)
class Job:
    """One attempt at a job: `attempt` counts from 1."""

    id: int
    name: str
    payload: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class JobFailure:
    """A failed attempt as pgqueuer logged it."""

    job_id: int
    name: str
    time: datetime
    error: str


Handler = Callable[[Job], Awaitable[None]]
# (job, error, retry_in): retry_in is None when no attempt is left.
FailureHook = Callable[[Job, BaseException, timedelta | None], Awaitable[None]]


def asyncpg_dsn(database_url: str) -> str:
    """SQLAlchemy's "postgresql+asyncpg://..." as the plain URL asyncpg takes."""
    scheme, _, rest = database_url.partition("://")
    return "postgresql://" + rest if scheme.startswith("postgresql") else database_url


class JobQueue:
    """Producer and (once started) consumer of one database's jobs."""

    def __init__(
        self,
        database_url: str,
        *,
        heartbeat_timeout_s: float = 30.0,
        poll_interval_s: float = 5.0,
        batch_size: int = 10,
        pool_size: int = 4,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)
        self._poll_interval = timedelta(seconds=poll_interval_s)
        self._batch_size = batch_size
        self._pool_size = max(pool_size, 3)  # pgqueuer keeps one connection for LISTEN
        self._consumers: dict[str, tuple[Handler, int, Retry, FailureHook | None]] = {}
        self._pool: asyncpg.Pool | None = None
        self._queries: Queries | None = None
        self._manager: QueueManager | None = None
        self._worker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ declaring consumers

    def consumer(
        self,
        name: str,
        *,
        concurrency: int = 1,
        retry: Retry = Retry(),
        on_failure: FailureHook | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the handler of jobs called `name` (before `start`)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if retry.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

        def register(handler: Handler) -> Handler:
            if name in self._consumers:
                raise ValueError(f"a consumer for {name!r} is already registered")
            self._consumers[name] = (handler, concurrency, retry, on_failure)
            return handler

        return register

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect (enqueue works after this; `start` calls it)."""
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._pool_size)
            self._queries = Queries(AsyncpgPoolDriver(self._pool))

    async def start(self) -> None:
        """Connect and begin running registered consumers in a background task."""
        await self.open()
        if not self._consumers or self._worker is not None:
            return
        assert self._queries is not None
        manager = QueueManager(self._queries)
        for name, (handler, concurrency, retry, on_failure) in self._consumers.items():
            manager.entrypoint(name, concurrency_limit=concurrency)(self._attempt(name, handler, retry, on_failure))
        self._manager = manager
        self._worker = asyncio.create_task(
            manager.run(
                dequeue_timeout=self._poll_interval,
                batch_size=self._batch_size,
                heartbeat_timeout=self._heartbeat_timeout,
            ),
            name="imgtag-jobs",
        )
        self._worker.add_done_callback(_log_worker_end)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking jobs, give running ones `grace_s`, requeue the rest, close the pool."""
        if self._manager is not None and self._worker is not None:
            self._manager.shutdown.set()
            done, _ = await asyncio.wait({self._worker}, timeout=grace_s)
            if not done:
                self._worker.cancel()  # running handlers see CancelledError and are requeued
                await asyncio.wait({self._worker}, timeout=5)
        self._worker = self._manager = None
        if self._pool is not None:
            await self._pool.close()
        self._pool = self._queries = None

    def _attempt(self, name: str, handler: Handler, retry: Retry, on_failure: FailureHook | None):
        async def run(job: pgq_models.Job) -> None:
            payload = json.loads(job.payload) if job.payload else {}
            current = Job(id=int(job.id), name=name, payload=payload, attempt=job.attempts + 1)
            try:
                await handler(current)
            except asyncio.CancelledError:
                # Stopping: not a failure of the job; back into the queue, due now.
                raise pgq_errors.RetryRequested(delay=timedelta(0), reason="worker stopped") from None
            except Exception as error:
                last = current.attempt >= retry.max_attempts
                retry_in = None if last else retry.delay(current.attempt)
                log.warning(
                    "job failed",
                    extra={"job": name, "job_id": current.id, "attempt": current.attempt, "error": str(error)},
                )
                if on_failure is not None:
                    try:
                        await on_failure(current, error, retry_in)
                    except Exception:
                        log.exception("recording a job failure failed", extra={"job": name})
                if last:
                    raise
                raise pgq_errors.RetryRequested(delay=retry_in, reason=f"{type(error).__name__}: {error}") from error

        return run

    # ------------------------------------------------------------------ producing

    def _ready(self) -> Queries:
        if self._queries is None:
            raise RuntimeError("JobQueue is not open: call open() or start() first")
        return self._queries

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        delay_s: float = 0.0,
        not_before: datetime | None = None,
    ) -> int | None:
        """Queue one job; None when `dedupe_key` is already queued or running."""
        ids = await self.enqueue_many(
            name, [payload], dedupe_keys=[dedupe_key], delay_s=delay_s, not_before=not_before, ids=True
        )
        return ids[0]

    async def enqueue_many(
        self,
        name: str,
        payloads: Sequence[dict[str, Any]],
        *,
        dedupe_keys: Sequence[str | None] | None = None,
        delay_s: float = 0.0,
        not_before: datetime | None = None,
        ids: bool = False,
    ) -> Any:
        """Queue a batch in one statement. Returns how many were queued (or, with ids=True,
        each job's id or None where its dedupe key was taken)."""
        if not payloads:
            return [] if ids else 0
        delay = timedelta(seconds=delay_s)
        if not_before is not None:
            delay = max(delay, not_before - datetime.now(UTC))
        keys = list(dedupe_keys) if dedupe_keys is not None else [None] * len(payloads)
        result = await self._ready().enqueue(
            [name] * len(payloads),
            [json.dumps(p, separators=(",", ":")).encode() for p in payloads],
            [0] * len(payloads),
            [delay if delay > timedelta(0) else None] * len(payloads),
            keys,
            on_conflict="skip",
        )
        queued = [int(i) if i is not None else None for i in result]
        return queued if ids else sum(1 for i in queued if i is not None)

    # ------------------------------------------------------------------ looking

    async def pending(self, name: str | None = None) -> int:
        """Jobs queued or running (of `name`, or all)."""
        query = "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')"
        args: list[Any] = []
        if name is not None:
            query += " AND entrypoint = $1"
            args.append(name)
        assert self._pool is not None, "open() first"
        return int(await self._pool.fetchval(query, *args))

    async def failures(self, name: str, *, limit: int = 20) -> list[JobFailure]:
        """The latest failed attempts of `name` jobs, newest first, with their errors."""
        assert self._pool is not None, "open() first"
        rows = await self._pool.fetch(
            "SELECT job_id, created, traceback FROM pgqueuer_log WHERE entrypoint = $1 AND traceback IS NOT NULL "
            "ORDER BY created DESC, id DESC LIMIT $2",
            name,
            limit,
        )
        out = []
        for row in rows:
            trace = row["traceback"]
            trace = json.loads(trace) if isinstance(trace, str) else trace or {}
            context = trace.get("additional_context") or {}
            error = context.get("reason") or f"{trace.get('exception_type', '')}: {trace.get('exception_message', '')}"
            out.append(JobFailure(job_id=row["job_id"], name=name, time=row["created"], error=str(error)))
        return out


def _log_worker_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the job worker stopped", exc_info=task.exception())
