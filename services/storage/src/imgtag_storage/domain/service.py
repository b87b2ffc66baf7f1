"""Storage rules: where an object is written, which replica a read comes from, and that what was
written is exactly what the caller sent (size and sha256 checked before anything is recorded)."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from imgtag_common.streams import spooled
from imgtag_storage.db.repository import StorageRepository
from imgtag_storage.domain.backends import ObjectBackend, S3Backend, backend_for, validate_key
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointKind,
    EndpointRole,
    HealthState,
    Replica,
    ReplicaState,
    StoredObject,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteSpec:
    key: str
    content_type: str = ""
    expected_sha256: str = ""
    endpoint_id: uuid.UUID | None = None


def read_order(candidates: Sequence[Endpoint], rng: random.Random) -> list[Endpoint]:
    """Lowest read_priority first; within one priority, a weighted random order by read_weight."""
    ordered: list[Endpoint] = []
    for priority in sorted({e.read_priority for e in candidates}):
        group = [e for e in candidates if e.read_priority == priority]
        while group:
            weights = [max(e.read_weight, 0) + 1e-9 for e in group]
            pick = rng.choices(range(len(group)), weights=weights)[0]
            ordered.append(group.pop(pick))
    return ordered


class StorageService:
    def __init__(
        self,
        repository: StorageRepository,
        executor: BlockingExecutor,
        *,
        read_chunk_bytes: int,
        spool_memory_bytes: int,
        max_object_bytes: int,
    ) -> None:
        self._repo = repository
        self._executor = executor
        self._read_chunk_bytes = read_chunk_bytes
        self._spool_memory_bytes = spool_memory_bytes
        self._max_object_bytes = max_object_bytes
        self._rng = random.Random()

    # ------------------------------------------------------------------ endpoints

    async def bootstrap_s3_endpoint(
        self, *, endpoint_url: str, access_key: str, secret_key: str, bucket: str, region: str
    ) -> Endpoint | None:
        """On a fresh database, make the configured S3 bucket the primary, default upload endpoint."""
        if await self._repo.list_endpoints(limit=1):
            return None
        endpoint = Endpoint(
            id=uuid.uuid4(),
            display_name="Local S3",
            kind=EndpointKind.S3,
            role=EndpointRole.PRIMARY,
            config={
                "endpoint_url": endpoint_url,
                "access_key_id": access_key,
                "secret_access_key": secret_key,
                "bucket": bucket,
                "region": region,
                "prefix": "",
            },
            read_priority=10,
            is_default_upload=True,
        )
        backend = backend_for(endpoint)
        assert isinstance(backend, S3Backend)
        await self._executor.run(backend.ensure_bucket)
        return await self._repo.insert_endpoint(endpoint=endpoint)

    async def list_endpoints(self, *, after: uuid.UUID | None, limit: int) -> list[Endpoint]:
        return await self._repo.list_endpoints(after=after, limit=limit)

    async def get_endpoint(self, endpoint_id: uuid.UUID) -> Endpoint:
        endpoint = await self._repo.get_endpoint(endpoint_id=endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoints/{endpoint_id} does not exist", reason="ENDPOINT_NOT_FOUND")
        return endpoint

    async def _write_target(self, endpoint_id: uuid.UUID | None) -> Endpoint:
        if endpoint_id is None:
            endpoint = await self._repo.default_upload_endpoint()
            if endpoint is None:
                raise FailedPrecondition("no default upload endpoint is configured", reason="NO_UPLOAD_ENDPOINT")
            return endpoint
        endpoint = await self.get_endpoint(endpoint_id)
        if not endpoint.enabled:
            raise FailedPrecondition(f"{endpoint.name} is disabled", reason="ENDPOINT_DISABLED")
        return endpoint

    # ------------------------------------------------------------------ objects

    async def write_object(self, spec: WriteSpec, chunks: AsyncIterator[bytes]) -> StoredObject:
        """Spool, hash, verify, upload, then record. A failure at any step records nothing."""
        validate_key(spec.key)
        endpoint = await self._write_target(spec.endpoint_id)
        existing = await self._repo.get_object(key=spec.key)
        too_large = ResourceExhausted(f"object exceeds {self._max_object_bytes} bytes", reason="OBJECT_TOO_LARGE")
        async with spooled(
            chunks,
            self._executor,
            memory_bytes=self._spool_memory_bytes,
            max_bytes=self._max_object_bytes,
            too_large=too_large,
        ) as content:
            size, sha256 = content.size, content.sha256
            if spec.expected_sha256 and spec.expected_sha256.lower() != sha256:
                raise DataLoss(
                    f"content sha256 {sha256} does not match the expected {spec.expected_sha256}",
                    reason="CHECKSUM_MISMATCH",
                )
            if existing is not None:
                if existing.sha256 == sha256:
                    return existing  # idempotent retry of the same write
                raise AlreadyExists(f"object {spec.key!r} already exists with other content", reason="OBJECT_EXISTS")
            backend = backend_for(endpoint)
            try:
                await self._executor.run(backend.put, spec.key, content.file, size, spec.content_type, sha256)
                stored_size = await self._executor.run(backend.size, spec.key)
            except Exception as error:
                log.warning("write to %s failed: %s", endpoint.name, error)
                raise Unavailable(
                    f"{endpoint.name} did not accept the write: {error}", reason="ENDPOINT_WRITE_FAILED"
                ) from error
            if stored_size != size:
                raise DataLoss(f"{endpoint.name} stored {stored_size} of {size} bytes", reason="SHORT_WRITE")
        obj = StoredObject(
            key=spec.key,
            size_bytes=size,
            sha256=sha256,
            content_type=spec.content_type,
            create_time=datetime.now(UTC),
            replicas=[
                Replica(
                    endpoint_id=endpoint.id, state=ReplicaState.VERIFIED, verify_time=datetime.now(UTC), attempt_count=1
                )
            ],
        )
        await self._repo.insert_object(obj=obj)
        return obj

    async def stat_object(self, key: str) -> StoredObject:
        obj = await self._repo.get_object(key=validate_key(key))
        if obj is None:
            raise NotFound(f"object {key!r} does not exist", reason="OBJECT_NOT_FOUND")
        return obj

    async def read_object(
        self, key: str, *, offset: int = 0, limit: int = 0, endpoint_id: uuid.UUID | None = None
    ) -> tuple[StoredObject, AsyncIterator[bytes]]:
        """Metadata plus a chunk stream from the best verified replica (falling back in order),
        or from `endpoint_id` only when given."""
        obj = await self.stat_object(key)
        if offset < 0 or limit < 0 or offset > obj.size_bytes:
            raise InvalidArgument(f"range offset={offset} limit={limit} is outside 0..{obj.size_bytes}")
        verified = {r.endpoint_id for r in obj.replicas if r.state is ReplicaState.VERIFIED}
        candidates = [
            e
            for e in await self._repo.list_endpoints()
            if e.id in verified and e.enabled and endpoint_id in (None, e.id)
        ]
        errors = []
        for endpoint in read_order(candidates, self._rng):
            backend = backend_for(endpoint)
            try:
                reader = await self._executor.run(backend.open, key, offset, limit)
            except Exception as error:
                errors.append(f"{endpoint.name}: {error}")
                await self._repo.record_health(
                    endpoint_id=endpoint.id, state=HealthState.DEGRADED, error=str(error), at=datetime.now(UTC)
                )
                continue
            return obj, self._stream(reader)
        raise Unavailable(
            f"no replica of {key!r} could be read: " + "; ".join(errors or ["none verified"]),
            reason="NO_READABLE_REPLICA",
        )

    async def _stream(self, reader) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._executor.run(reader.read, self._read_chunk_bytes):
                yield chunk
        finally:
            await self._executor.run(reader.close)

    async def delete_object(self, key: str) -> None:
        obj = await self.stat_object(key)
        by_id = {e.id: e for e in await self._repo.list_endpoints()}
        for replica in obj.replicas:
            endpoint = by_id.get(replica.endpoint_id)
            if endpoint is not None:
                backend: ObjectBackend = backend_for(endpoint)
                await self._executor.run(backend.delete, key)
        await self._repo.delete_object(key=key)
