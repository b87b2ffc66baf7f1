"""The kit's durable job queue (imgtag_common.jobs over pgqueuer) against the session's real
PostgreSQL, each test in a fresh database: retries with backoff and a last attempt, failures
recorded, dedupe, delays, per-name concurrency, requeue on stop, and recovery of a job whose
worker was killed with SIGKILL."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import textwrap
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from imgtag_common.jobs import Job, JobQueue, Retry, asyncpg_dsn, install_sql

pytestmark = pytest.mark.integration


@pytest.fixture
async def database_url(stack) -> str:
    name = "imgtag_jobs_" + uuid.uuid4().hex[:8]
    stack.postgres.query(f'CREATE DATABASE "{name}"')
    url = stack.postgres.url(name)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(install_sql())
    finally:
        await connection.close()
    return url


async def _eventually(check, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_a_failing_job_is_retried_with_backoff_then_given_up_with_its_errors_recorded(database_url) -> None:
    queue = JobQueue(database_url, poll_interval_s=0.2)
    attempts: list[tuple[int, float]] = []
    hooks: list[tuple[int, str, float | None]] = []

    async def on_failure(job: Job, error: BaseException, retry_in) -> None:
        hooks.append((job.attempt, str(error), retry_in.total_seconds() if retry_in else None))

    @queue.consumer("flaky", retry=Retry(max_attempts=3, initial_delay_s=0.3, multiplier=2), on_failure=on_failure)
    async def flaky(job: Job) -> None:
        attempts.append((job.attempt, time.monotonic()))
        raise RuntimeError(f"boom {job.payload['n']} #{job.attempt}")

    await queue.start()
    try:
        await queue.enqueue("flaky", {"n": 7})
        await _eventually(lambda: _true(len(hooks) == 3))
        await _eventually(lambda: _equal(queue.pending("flaky"), 0))
        assert [a for a, _ in attempts] == [1, 2, 3]
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(attempts)]
        assert gaps[0] >= 0.3 and gaps[1] >= 0.6, gaps  # exponential backoff
        assert hooks == [(1, "boom 7 #1", 0.3), (2, "boom 7 #2", 0.6), (3, "boom 7 #3", None)]
        failures = await queue.failures("flaky")
        assert len(failures) == 3 and "boom 7 #3" in failures[0].error
    finally:
        await queue.stop()


async def _true(value: bool) -> bool:
    return value


async def _equal(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def test_dedupe_keys_and_delays(database_url) -> None:
    queue = JobQueue(database_url, poll_interval_s=0.2)
    ran: list[tuple[str, float]] = []

    @queue.consumer("work")
    async def work(job: Job) -> None:
        ran.append((job.payload["id"], time.monotonic()))

    await queue.open()
    first = await queue.enqueue("work", {"id": "a"}, dedupe_key="a")
    assert first is not None
    assert await queue.enqueue("work", {"id": "a"}, dedupe_key="a") is None  # already queued
    assert await queue.enqueue_many("work", [{"id": "a"}, {"id": "b"}], dedupe_keys=["a", "b"]) == 1
    queued_at = time.monotonic()
    await queue.enqueue("work", {"id": "later"}, delay_s=1.0)
    await queue.start()
    try:
        await _eventually(lambda: _true(len(ran) == 3))
        assert sorted(r for r, _ in ran) == ["a", "b", "later"]
        assert dict(ran)["later"] - queued_at >= 1.0
        # Once done, the same dedupe key may be queued again.
        assert await queue.enqueue("work", {"id": "a"}, dedupe_key="a") is not None
    finally:
        await queue.stop()


async def test_concurrency_is_limited_per_job_name(database_url) -> None:
    queue = JobQueue(database_url, poll_interval_s=0.2)
    running, peak, done = 0, 0, 0

    @queue.consumer("limited", concurrency=2)
    async def limited(job: Job) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1
        done += 1

    await queue.open()
    await queue.enqueue_many("limited", [{"n": i} for i in range(8)])
    await queue.start()
    try:
        await _eventually(lambda: _true(done == 8))
        assert peak == 2
    finally:
        await queue.stop()


async def test_stopping_puts_running_jobs_back_in_the_queue(database_url) -> None:
    queue = JobQueue(database_url, poll_interval_s=0.2)
    started = asyncio.Event()

    @queue.consumer("long")
    async def long(job: Job) -> None:
        started.set()
        await asyncio.sleep(60)

    await queue.start()
    await queue.enqueue("long", {})
    await asyncio.wait_for(started.wait(), 20)
    await queue.stop(grace_s=0.5)

    second = JobQueue(database_url, poll_interval_s=0.2)
    picked_again = asyncio.Event()

    @second.consumer("long")
    async def again(job: Job) -> None:
        picked_again.set()

    await second.start()
    try:
        await asyncio.wait_for(picked_again.wait(), 20)
    finally:
        await second.stop()


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from imgtag_common.jobs import Job, JobQueue

    async def main():
        queue = JobQueue(sys.argv[1], poll_interval_s=0.2, heartbeat_timeout_s=2)

        @queue.consumer("copy")
        async def copy(job: Job) -> None:
            Path(sys.argv[2]).write_text(str(job.attempt))
            await asyncio.sleep(3600)

        await queue.start()
        await queue.enqueue("copy", {"what": "photo"})
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_job_whose_worker_was_killed_with_sigkill_is_picked_up_again(database_url, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER, database_url, str(marker), start_new_session=True
    )
    try:
        await _eventually(lambda: _true(marker.exists()), timeout_s=30)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        await worker.wait()
    queue = JobQueue(database_url, poll_interval_s=0.2, heartbeat_timeout_s=2)
    finished: list[Job] = []

    @queue.consumer("copy")
    async def copy(job: Job) -> None:
        finished.append(job)

    await queue.start()
    try:
        await _eventually(lambda: _true(len(finished) == 1), timeout_s=30)
        assert finished[0].payload == {"what": "photo"}
        await _eventually(lambda: _equal(queue.pending(), 0))
    finally:
        await queue.stop()
