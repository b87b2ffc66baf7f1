"""Replication: every object on its PRIMARY is copied to every enabled BACKUP through the durable
job queue; a copy is VERIFIED only once the bytes read back from the target have the object's
SHA-256. Copies are incremental (a VERIFIED replica is never copied again; bytes already on the
target are only verified), repairs take the bytes from another VERIFIED replica whose SHA-256
is checked on the way, scrubs re-verify a whole endpoint, and deletes reach every replica."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imgtag_common.errors import DataLoss, FailedPrecondition, ImgTagError, NotFound, Unavailable
from imgtag_common.filtering import parse_filter
from imgtag_storage.domain.endpoints import EndpointService, parse_order
from imgtag_storage.domain.executors import Executors
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointRole,
    ObjectReplica,
    ReplicaState,
    ReplicationOverview,
    Scrub,
    ScrubState,
    StoredObject,
)
from imgtag_storage.domain.ports import BackendFactory, JobScheduler, ObjectBackend, ObjectReader, StorageRepository
from imgtag_storage.domain.reading import read_order

log = logging.getLogger(__name__)

REPLICATE = "storage.replicate"
DELETE_REPLICA = "storage.delete_replica"
SCRUB = "storage.scrub"
_COPY_CHUNK = 1024 * 1024
_SCRUB_PAGE = 100
_REPLICA_ORDERS = ("next_attempt_time", "key", "attempt_count")


class SourceFailed(Exception):
    """Reading the source replica failed (so try another source, not another target)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class SourceCorrupt(Exception):
    """The source replica's bytes do not have the object's SHA-256."""


class _CheckedSource:
    """The source replica as a file for the target's put: its SHA-256 is checked as it is read,
    and a mismatch raises before the last byte is handed over, so the target never completes
    a wrong copy (S3 aborts the upload, a local write removes its temporary file)."""

    def __init__(self, reader: ObjectReader, *, size: int, sha256: str) -> None:
        self._reader = reader
        self._size = size
        self._sha256 = sha256
        self._digest = hashlib.sha256()
        self._read = 0

    def read(self, n: int = -1) -> bytes:
        try:
            chunk = self._reader.read(n if n > 0 else _COPY_CHUNK)
        except Exception as error:
            raise SourceFailed(error) from error
        self._read += len(chunk)
        self._digest.update(chunk)
        complete = not chunk or self._read == self._size
        if self._read > self._size or (complete and self._digest.hexdigest() != self._sha256):
            raise SourceCorrupt()
        return chunk


def _copy(source: ObjectBackend, target: ObjectBackend, obj: StoredObject) -> None:
    try:
        reader = source.open(obj.key)
    except Exception as error:
        raise SourceFailed(error) from error
    try:
        target.put(obj.key, _CheckedSource(reader, size=obj.size_bytes, sha256=obj.sha256), obj.content_type)
    finally:
        reader.close()


class ReplicationService:
    def __init__(
        self,
        repository: StorageRepository,
        backends: BackendFactory,
        endpoints: EndpointService,
        executors: Executors,
        jobs: JobScheduler,
    ) -> None:
        self._repo = repository
        self._backends = backends
        self._endpoints = endpoints
        self._executors = executors
        self._jobs = jobs
        endpoints.on_sync_enabled = self.backfill
        endpoints.on_recovered = self.recover

    # ------------------------------------------------------------------ scheduling

    async def schedule(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Queue a copy of each (key, endpoint id); one queued job per pair at most."""
        if not pairs:
            return 0
        await self._jobs.enqueue_many(
            REPLICATE,
            [{"key": key, "endpoint": endpoint_id} for key, endpoint_id in pairs],
            dedupe_keys=[f"replicate:{endpoint_id}:{key}" for key, endpoint_id in pairs],
        )
        return len(pairs)

    async def backfill(self, endpoint: Endpoint) -> int:
        """Queue what the endpoint lacks (only that: VERIFIED replicas are never copied again)."""
        keys = await self._repo.missing_on(endpoint_id=endpoint.id, role=endpoint.role)
        log.info("backfill scheduled", extra={"endpoint": endpoint.name, "objects": len(keys)})
        return await self.schedule([(key, endpoint.id) for key in keys])

    async def resync(self, endpoint_id: str) -> int:
        endpoint = await self._endpoints.get(endpoint_id)
        if not endpoint.enabled:
            raise FailedPrecondition(f"{endpoint.name} is disabled", reason="ENDPOINT_DISABLED")
        await self._repo.reset_for_copy(states=[ReplicaState.FAILED], endpoint_id=endpoint.id, keys=[])
        return await self.backfill(endpoint)

    async def retry(self, *, keys: Sequence[str], endpoint_id: str | None) -> int:
        if endpoint_id is not None:
            await self._endpoints.get(endpoint_id)
        pairs = await self._repo.reset_for_copy(
            states=[ReplicaState.FAILED, ReplicaState.MISSING, ReplicaState.CORRUPT],
            endpoint_id=endpoint_id,
            keys=keys,
        )
        return await self.schedule(pairs)

    async def recover(self, endpoint: Endpoint) -> None:
        """An endpoint answers again: retry what failed there and finish deletes left behind."""
        pairs = await self._repo.reset_for_copy(states=[ReplicaState.FAILED], endpoint_id=endpoint.id, keys=[])
        await self.schedule(pairs)
        deleting = await self._repo.reset_for_copy(states=[ReplicaState.DELETING], endpoint_id=endpoint.id, keys=[])
        await self.schedule_deletes(deleting)

    async def schedule_deletes(self, pairs: Sequence[tuple[str, str]]) -> None:
        if pairs:
            await self._jobs.enqueue_many(
                DELETE_REPLICA,
                [{"key": key, "endpoint": endpoint_id} for key, endpoint_id in pairs],
                dedupe_keys=[f"delete:{endpoint_id}:{key}" for key, endpoint_id in pairs],
            )

    # ------------------------------------------------------------------ copying (job handlers)

    async def replicate(self, key: str, endpoint_id: str) -> None:
        """Make the replica of `key` on `endpoint_id` VERIFIED; raises to be retried."""
        target = await self._repo.get_endpoint(endpoint_id=endpoint_id)
        if target is None or not target.enabled:
            return  # deleted or disabled: enabling it again back-fills
        begun = await self._repo.begin_copy(key=key, endpoint_id=endpoint_id)
        if begun is None:
            return  # deleted, or already VERIFIED: never copied twice
        obj, before, attempts_before = begun
        target_backend = self._backends.backend(target)
        # A first attempt at a new replica cannot find bytes of ours; any later one may (a copy
        # that finished just before a crash, a MISSING replica that came back).
        maybe_there = attempts_before > 0 or before is ReplicaState.MISSING
        if maybe_there and await self._holds(target_backend, obj):
            # The bytes are there already (a copy finished just before a crash, or an import).
            await self._finish(target_backend, obj, endpoint_id)
            return
        by_id = {e.id: e for e in await self._repo.list_endpoints()}
        sources = read_order(
            [
                by_id[r.endpoint_id]
                for r in obj.replicas
                if r.state is ReplicaState.VERIFIED
                and r.endpoint_id != endpoint_id
                and r.endpoint_id in by_id
                and by_id[r.endpoint_id].enabled
            ]
        )
        errors: list[str] = []
        for source in sources:
            try:
                await self._executors.background.run(_copy, self._backends.backend(source), target_backend, obj)
            except SourceCorrupt:
                errors.append(f"{source.name}: corrupt")
                await self._found_bad(obj.key, source.id, ReplicaState.CORRUPT, "sha256 mismatch while copying")
                continue
            except SourceFailed as failure:
                errors.append(f"{source.name}: {failure.error}")
                if isinstance(failure.error, NotFound):
                    await self._found_bad(obj.key, source.id, ReplicaState.MISSING, "missing while copying")
                continue
            # The target failed: raise so the queue retries with backoff.
            await self._verify_copy(target_backend, obj, endpoint_id)
            return
        raise Unavailable(
            f"no readable source for {key!r}: " + ("; ".join(errors) or "no other verified replica"),
            reason="NO_SOURCE_REPLICA",
        )

    async def _holds(self, backend: ObjectBackend, obj: StoredObject) -> bool:
        try:
            if not await self._executors.background.run(backend.exists, obj.key):
                return False
            size, sha256 = await self._executors.background.run(backend.checksum, obj.key)
        except NotFound:
            return False
        return (size, sha256) == (obj.size_bytes, obj.sha256)

    async def _verify_copy(self, backend: ObjectBackend, obj: StoredObject, endpoint_id: str) -> None:
        size, sha256 = await self._executors.background.run(backend.checksum, obj.key)
        if (size, sha256) != (obj.size_bytes, obj.sha256):
            raise DataLoss(f"endpoints/{endpoint_id} stored other bytes than were copied", reason="VERIFY_FAILED")
        await self._finish(backend, obj, endpoint_id)

    async def _finish(self, backend: ObjectBackend, obj: StoredObject, endpoint_id: str) -> None:
        if not await self._repo.finish_copy(key=obj.key, endpoint_id=endpoint_id):
            # Deleted while we copied: do not leave the bytes behind.
            await self._executors.background.run(backend.delete, obj.key)

    async def _found_bad(self, key: str, endpoint_id: str, state: ReplicaState, why: str) -> None:
        log.warning("bad replica found", extra={"key": key, "endpoint": endpoint_id, "state": state.value})
        await self._repo.mark_replica(key=key, endpoint_id=endpoint_id, state=state, error=why)
        await self.schedule([(key, endpoint_id)])

    async def copy_failed(self, payload: dict[str, Any], error: BaseException, retry_in: timedelta | None) -> None:
        """Record a failed copy attempt with its reason (FAILED when no attempt is left)."""
        reason = error.message if isinstance(error, ImgTagError) else f"{type(error).__name__}: {error}"
        await self._repo.record_copy_failure(
            key=payload["key"],
            endpoint_id=payload["endpoint"],
            error=reason,
            next_attempt=datetime.now(UTC) + retry_in if retry_in is not None else None,
        )

    async def found_missing(self, key: str, endpoint_id: str) -> None:
        """A read found no bytes where a VERIFIED replica should be: record it, repair it."""
        await self._found_bad(key, endpoint_id, ReplicaState.MISSING, "missing when read")

    # ------------------------------------------------------------------ deleting (job handler)

    async def delete_replica(self, key: str, endpoint_id: str) -> None:
        endpoint = await self._repo.get_endpoint(endpoint_id=endpoint_id)
        if endpoint is not None:
            await self._executors.background.run(self._backends.backend(endpoint).delete, key)
        await self._repo.drop_replica(key=key, endpoint_id=endpoint_id)

    # ------------------------------------------------------------------ scrubs

    async def start_scrub(self, endpoint_id: str) -> Scrub:
        endpoint = await self._endpoints.get(endpoint_id)
        if not endpoint.enabled:
            raise FailedPrecondition(f"{endpoint.name} is disabled", reason="ENDPOINT_DISABLED")
        scrub = await self._repo.insert_scrub(
            scrub=Scrub(
                id=uuid.uuid4().hex[:16],
                endpoint_id=endpoint.id,
                state=ScrubState.RUNNING,
                total_count=await self._repo.count_replicas_on(endpoint_id=endpoint.id),
            )
        )
        await self._jobs.enqueue(SCRUB, {"scrub": scrub.id}, dedupe_key=f"scrub:{scrub.id}")
        return scrub

    async def get_scrub(self, endpoint_id: str, scrub_id: str) -> Scrub:
        scrub = await self._repo.get_scrub(scrub_id=scrub_id)
        if scrub is None or scrub.endpoint_id != endpoint_id:
            raise NotFound(f"endpoints/{endpoint_id}/scrubs/{scrub_id} does not exist", reason="SCRUB_NOT_FOUND")
        return scrub

    async def run_scrub(self, scrub_id: str) -> None:
        """Check every replica recorded on the endpoint (resuming after the last key checked)."""
        scrub = await self._repo.get_scrub(scrub_id=scrub_id)
        if scrub is None or scrub.state is not ScrubState.RUNNING:
            return
        endpoint = await self._repo.get_endpoint(endpoint_id=scrub.endpoint_id)
        if endpoint is None:
            return
        backend = self._backends.backend(endpoint)
        semaphore = asyncio.Semaphore(4)  # a few reads at once: a scrub must not crowd out copies

        async def check(obj: StoredObject) -> None:
            async with semaphore:
                await self._scrub_one(scrub, backend, endpoint, obj)

        while True:
            page = await self._repo.replicas_on(endpoint_id=endpoint.id, after=scrub.last_key, limit=_SCRUB_PAGE)
            if not page:
                break
            await asyncio.gather(*(check(obj) for obj in page))
            scrub.last_key = page[-1].key
            await self._repo.save_scrub(scrub=scrub)
        checked_any = scrub.checked_count > scrub.error_count
        scrub.state = ScrubState.SUCCEEDED if checked_any or scrub.error_count == 0 else ScrubState.FAILED
        scrub.end_time = datetime.now(UTC)
        await self._repo.save_scrub(scrub=scrub)
        log.info(
            "scrub finished",
            extra={
                "endpoint": endpoint.name,
                "checked": scrub.checked_count,
                "missing": scrub.missing_count,
                "corrupt": scrub.corrupt_count,
                "errors": scrub.error_count,
            },
        )

    async def _scrub_one(self, scrub: Scrub, backend: ObjectBackend, endpoint: Endpoint, obj: StoredObject) -> None:
        state = obj.replicas[0].state
        if state not in (ReplicaState.VERIFIED, ReplicaState.MISSING, ReplicaState.CORRUPT):
            return  # not copied yet: the queue owns it
        scrub.checked_count += 1
        try:
            size, sha256 = await self._executors.background.run(backend.checksum, obj.key)
        except NotFound:
            scrub.missing_count += 1
            await self._found_bad(obj.key, endpoint.id, ReplicaState.MISSING, "missing at scrub")
            return
        except ImgTagError as error:
            scrub.error_count += 1
            scrub.error = error.message
            return
        if (size, sha256) == (obj.size_bytes, obj.sha256):
            scrub.verified_count += 1
            if state is not ReplicaState.VERIFIED:
                await self._repo.finish_copy(key=obj.key, endpoint_id=endpoint.id)
            return
        scrub.corrupt_count += 1
        await self._found_bad(obj.key, endpoint.id, ReplicaState.CORRUPT, "sha256 mismatch at scrub")

    async def scrub_failed(self, payload: dict[str, Any], error: BaseException, retry_in: timedelta | None) -> None:
        if retry_in is not None:
            return
        scrub = await self._repo.get_scrub(scrub_id=payload["scrub"])
        if scrub is not None:
            scrub.state = ScrubState.FAILED
            scrub.error = str(error)
            scrub.end_time = datetime.now(UTC)
            await self._repo.save_scrub(scrub=scrub)

    # ------------------------------------------------------------------ status

    async def overview(self) -> ReplicationOverview:
        return await self._repo.overview()

    async def list_page(
        self, *, filter_text: str, order_by: str, after: tuple[Any, str, str] | None, limit: int
    ) -> list[ObjectReplica]:
        field, descending = parse_order(order_by, _REPLICA_ORDERS, default="next_attempt_time")
        expr = parse_filter(filter_text or "state != VERIFIED")
        return await self._repo.page_replicas(
            filter_expr=expr, order_by=field, descending=descending, after=after, limit=limit
        )


def backup_ids(endpoints: Sequence[Endpoint]) -> list[str]:
    return [e.id for e in endpoints if e.role is EndpointRole.BACKUP and e.enabled]
