"""Object I/O. A write claims its key in PostgreSQL before any byte is stored (so concurrent
writers never overwrite each other), streams to the endpoint with bounded memory while the
SHA-256 and size are computed on the way, reads the stored bytes back to check them, and only
then records the object VERIFIED and queues its copies. Reads pick a replica by priority and
weight and fall over to the next one, also in the middle of a stream. Deletes reach every
replica, through the queue for endpoints that are down."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from imgtag_common.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    ImgTagError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)
from imgtag_common.streams import ChunkReader
from imgtag_storage.domain.endpoints import EndpointService
from imgtag_storage.domain.executors import Executors
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointKind,
    EndpointRole,
    ObjectState,
    PresignedUrl,
    ReplicaState,
    StoredObject,
    WriteSpec,
    validate_key,
)
from imgtag_storage.domain.ports import BackendFactory, ObjectBackend, ObjectReader, StorageRepository
from imgtag_storage.domain.reading import read_order
from imgtag_storage.domain.replication import ReplicationService, backup_ids

log = logging.getLogger(__name__)

STAGING_PREFIX = ".imgtag/staging/"
DEFAULT_PRESIGN_TTL = timedelta(minutes=15)
MAX_PRESIGN_TTL = timedelta(days=7)


class ObjectService:
    def __init__(
        self,
        repository: StorageRepository,
        backends: BackendFactory,
        endpoints: EndpointService,
        replication: ReplicationService,
        executors: Executors,
        *,
        read_chunk_bytes: int,
        max_object_bytes: int,
    ) -> None:
        self._repo = repository
        self._backends = backends
        self._endpoints = endpoints
        self._replication = replication
        self._executors = executors
        self._read_chunk_bytes = read_chunk_bytes
        self._max_object_bytes = max_object_bytes

    # ------------------------------------------------------------------ writing

    async def _write_target(self, endpoint_id: str | None) -> Endpoint:
        if endpoint_id is None:
            endpoint = await self._repo.default_upload_endpoint()
            if endpoint is None:
                raise FailedPrecondition("no default upload endpoint is configured", reason="NO_UPLOAD_ENDPOINT")
        else:
            endpoint = await self._endpoints.get(endpoint_id)
            if not endpoint.enabled:
                raise FailedPrecondition(f"{endpoint.name} is disabled", reason="ENDPOINT_DISABLED")
            if endpoint.role is not EndpointRole.PRIMARY:
                raise FailedPrecondition(
                    f"{endpoint.name} is a backup and receives copies only", reason="NOT_AN_UPLOAD_TARGET"
                )
        return endpoint

    def _too_large(self) -> ResourceExhausted:
        return ResourceExhausted(f"object exceeds {self._max_object_bytes} bytes", reason="OBJECT_TOO_LARGE")

    async def write(self, spec: WriteSpec, chunks: AsyncIterator[bytes]) -> StoredObject:
        validate_key(spec.key)
        expected = spec.expected_sha256.lower()
        endpoint = await self._write_target(spec.endpoint_id)
        claim = await self._repo.claim_key(
            key=spec.key, content_type=spec.content_type, state=ObjectState.WRITING, endpoint_id=endpoint.id
        )
        if claim is None:
            return await self._write_to_taken_key(spec, chunks)
        backend = self._backends.backend(endpoint)
        reader = ChunkReader(
            chunks, asyncio.get_running_loop(), max_bytes=self._max_object_bytes, too_large=self._too_large()
        )
        stored_bytes = False
        try:
            await self._executors.writes.run(backend.put, spec.key, reader, spec.content_type)
            stored_bytes = True
            if expected and expected != reader.sha256:
                raise DataLoss(
                    f"content sha256 {reader.sha256} does not match the expected {expected}",
                    reason="CHECKSUM_MISMATCH",
                )
            # VERIFIED means checked against what the endpoint stores: read it back.
            stored = await self._executors.reads.run(backend.checksum, spec.key)
            if stored != (reader.size, reader.sha256):
                raise DataLoss(f"{endpoint.name} stored other bytes than were sent", reason="VERIFY_FAILED")
            backups = [] if spec.skip_replication else backup_ids(await self._repo.list_endpoints())
            obj = await self._repo.complete_write(
                key=spec.key, size_bytes=reader.size, sha256=reader.sha256, endpoint_id=endpoint.id, backups=backups
            )
        except BaseException as error:
            await asyncio.shield(self._abandon(spec.key, backend, stored_bytes))
            if isinstance(error, ImgTagError) or not isinstance(error, Exception):
                raise
            log.warning("write to %s failed: %r", endpoint.name, error)
            raise Unavailable(f"{endpoint.name} did not accept the write", reason="ENDPOINT_WRITE_FAILED") from error
        await self._replication.schedule([(obj.key, backup) for backup in backups])
        return obj

    async def _abandon(self, key: str, backend: ObjectBackend, delete_bytes: bool) -> None:
        """Undo a failed write: remove what may have been stored, then free the key."""
        try:
            if delete_bytes:
                await self._executors.writes.run(backend.delete, key)
            await self._repo.release_claim(key=key, state=ObjectState.WRITING)
        except Exception:
            log.exception("cleaning up a failed write failed; the claim is reaped later", extra={"key": key})

    async def _write_to_taken_key(self, spec: WriteSpec, chunks: AsyncIterator[bytes]) -> StoredObject:
        """Same bytes again is an idempotent retry; anything else is refused, never overwritten."""
        digest, size = hashlib.sha256(), 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self._max_object_bytes:
                raise self._too_large()
            digest.update(chunk)
        existing = await self._repo.get_object(key=spec.key)
        if existing is not None and existing.state is ObjectState.STORED and existing.sha256 == digest.hexdigest():
            return existing
        if existing is not None and existing.state is not ObjectState.STORED:
            raise AlreadyExists(f"object {spec.key!r} is being written or deleted", reason="OBJECT_BUSY")
        raise AlreadyExists(f"object {spec.key!r} already exists with other content", reason="OBJECT_EXISTS")

    # ------------------------------------------------------------------ reading

    async def stat(self, key: str) -> StoredObject:
        obj = await self._repo.get_object(key=validate_key(key))
        if obj is None or obj.state is not ObjectState.STORED:
            raise NotFound(f"object {key!r} does not exist", reason="OBJECT_NOT_FOUND")
        return obj

    async def _readable_replicas(self, obj: StoredObject, endpoint_id: str | None) -> list[Endpoint]:
        verified = {r.endpoint_id for r in obj.replicas if r.state is ReplicaState.VERIFIED}
        candidates = [
            e
            for e in await self._repo.list_endpoints()
            if e.id in verified and e.enabled and endpoint_id in (None, e.id)
        ]
        return read_order(candidates)

    async def read(
        self, key: str, *, offset: int = 0, limit: int = 0, endpoint_id: str | None = None
    ) -> tuple[StoredObject, AsyncIterator[bytes]]:
        """Metadata plus the bytes of [offset, offset+limit) from the best replica."""
        obj = await self.stat(key)
        if offset < 0 or limit < 0 or offset > obj.size_bytes:
            raise InvalidArgument(
                f"range offset={offset} limit={limit} is outside 0..{obj.size_bytes}", reason="INVALID_RANGE"
            )
        end = obj.size_bytes if not limit else min(obj.size_bytes, offset + limit)
        candidates = await self._readable_replicas(obj, endpoint_id)
        opened = await self._open_next(obj, candidates, offset, end)
        return obj, self._stream(obj, candidates, opened, offset, end)

    async def _open_next(
        self, obj: StoredObject, candidates: list[Endpoint], offset: int, end: int
    ) -> tuple[Endpoint, ObjectReader]:
        """Open the range on the first candidate that works (consuming the list)."""
        errors: list[str] = []
        while candidates:
            endpoint = candidates.pop(0)
            try:
                reader = await self._executors.reads.run(
                    self._backends.backend(endpoint).open, obj.key, offset, end - offset
                )
                return endpoint, reader
            except NotFound:
                errors.append(f"{endpoint.name}: missing")
                await self._replication.found_missing(obj.key, endpoint.id)
            except ImgTagError as error:
                errors.append(f"{endpoint.name}: {error.message}")
                await self._endpoints.record_probe(endpoint, error=error, latency_ms=0.0)
        raise Unavailable(
            f"no replica of {obj.key!r} could be read: " + ("; ".join(errors) or "none verified"),
            reason="NO_READABLE_REPLICA",
        )

    async def _stream(
        self,
        obj: StoredObject,
        candidates: list[Endpoint],
        opened: tuple[Endpoint, ObjectReader],
        offset: int,
        end: int,
    ) -> AsyncIterator[bytes]:
        endpoint, reader = opened
        position = offset
        try:
            while position < end:
                try:
                    chunk = await self._executors.reads.run(reader.read, min(self._read_chunk_bytes, end - position))
                    if not chunk:
                        raise Unavailable(f"{endpoint.name} ended the object early", reason="SHORT_READ")
                except ImgTagError as error:
                    # Carry on from the same position on the next replica.
                    log.warning("read from %s failed mid-stream: %s", endpoint.name, error.message)
                    await self._executors.reads.run(reader.close)
                    endpoint, reader = await self._open_next(obj, candidates, position, end)
                    continue
                position += len(chunk)
                yield chunk
        finally:
            await self._executors.reads.run(reader.close)

    async def list(self, *, prefix: str, endpoint_id: str | None, after: str, limit: int) -> list[StoredObject]:
        if endpoint_id is not None:
            raise Unimplemented("listing raw files on an endpoint (imports) is not available yet")
        return await self._repo.list_objects(prefix=prefix, after=after, limit=limit)

    # ------------------------------------------------------------------ deleting

    async def delete(self, key: str) -> None:
        """Remove every replica; absent keys succeed. Endpoints that fail get a queued delete."""
        validate_key(key)
        obj = await self._repo.mark_deleting(key=key)
        if obj is None or obj.state is not ObjectState.DELETING:
            return  # absent, or a write in progress that never became an object
        by_id = {e.id: e for e in await self._repo.list_endpoints()}
        left: list[tuple[str, str]] = []
        for replica in obj.replicas:
            endpoint = by_id.get(replica.endpoint_id)
            try:
                if endpoint is not None:
                    await self._executors.writes.run(self._backends.backend(endpoint).delete, key)
                await self._repo.drop_replica(key=key, endpoint_id=replica.endpoint_id)
            except ImgTagError as error:
                log.warning("delete on %s deferred: %s", replica.endpoint_id, error.message)
                left.append((key, replica.endpoint_id))
        await self._replication.schedule_deletes(left)

    async def reap_stale_claims(self, *, older_than: datetime) -> int:
        """Free keys claimed by writers that died (their partial bytes removed first)."""
        reaped = 0
        for key, state, endpoint_id, staging_key in await self._repo.stale_claims(older_than=older_than):
            endpoint = await self._repo.get_endpoint(endpoint_id=endpoint_id)
            try:
                if endpoint is not None:
                    backend = self._backends.backend(endpoint)
                    await self._executors.background.run(backend.delete, staging_key or key)
                await self._repo.release_claim(key=key, state=ObjectState(state))
                reaped += 1
            except ImgTagError as error:
                log.warning("stale claim on %s kept for now: %s", key, error.message)
        return reaped

    # ------------------------------------------------------------------ presigned URLs

    async def presign(
        self, key: str, *, method: str, ttl: timedelta | None, content_type: str, endpoint_id: str | None
    ) -> PresignedUrl:
        validate_key(key)
        ttl = ttl or DEFAULT_PRESIGN_TTL
        if not timedelta(seconds=1) <= ttl <= MAX_PRESIGN_TTL:
            raise InvalidArgument("ttl must be between 1 second and 7 days", reason="INVALID_TTL")
        expire = datetime.now(UTC) + ttl
        if method == "GET":
            obj = await self.stat(key)
            for endpoint in await self._readable_replicas(obj, endpoint_id):
                if endpoint.kind is EndpointKind.S3:
                    url = self._backends.backend(endpoint).presign(key, method="GET", ttl=ttl, content_type="")
                    return PresignedUrl(url=url, expire_time=expire, headers={})
            raise FailedPrecondition(
                f"no S3 replica of {key!r} can be presigned; use ReadObject", reason="NOT_PRESIGNABLE"
            )
        if method != "PUT":
            raise InvalidArgument("method must be GET or PUT", reason="INVALID_METHOD")
        endpoint = await self._write_target(endpoint_id)
        if endpoint.kind is not EndpointKind.S3:
            raise FailedPrecondition(f"{endpoint.name} cannot presign; use WriteObject", reason="NOT_PRESIGNABLE")
        staging_key = f"{STAGING_PREFIX}{uuid.uuid4()}"
        claim = await self._repo.claim_key(
            key=key,
            content_type=content_type,
            state=ObjectState.UPLOADING,
            endpoint_id=endpoint.id,
            staging_key=staging_key,
        )
        if claim is None:
            raise AlreadyExists(f"object {key!r} already exists or is being written", reason="OBJECT_EXISTS")
        url = self._backends.backend(endpoint).presign(staging_key, method="PUT", ttl=ttl, content_type=content_type)
        headers = {"Content-Type": content_type} if content_type else {}
        return PresignedUrl(url=url, expire_time=expire, headers=headers)

    async def commit(self, key: str, *, size_bytes: int, sha256: str) -> StoredObject:
        """Finish a presigned PUT: check size and SHA-256 of the upload, move it under the key,
        read it back, record it. A mismatch discards the upload and frees the key."""
        validate_key(key)
        staging = await self._repo.staging_key(key=key)
        if staging is None:
            raise NotFound(f"no presigned upload was started for {key!r}", reason="UPLOAD_NOT_FOUND")
        endpoint_id, staging_key, _ = staging
        endpoint = await self._endpoints.get(endpoint_id)
        backend = self._backends.backend(endpoint)
        if not await self._executors.reads.run(backend.exists, staging_key):
            raise FailedPrecondition(f"nothing was uploaded for {key!r} yet", reason="UPLOAD_INCOMPLETE")
        uploaded = await self._executors.reads.run(backend.checksum, staging_key)
        if uploaded != (size_bytes, sha256.lower()):
            await self._executors.writes.run(backend.delete, staging_key)
            await self._repo.release_claim(key=key, state=ObjectState.UPLOADING)
            raise InvalidArgument(
                f"the upload has {uploaded[0]} bytes with sha256 {uploaded[1]}, not {size_bytes} / {sha256}",
                reason="UPLOAD_MISMATCH",
            )
        await self._executors.writes.run(backend.move, staging_key, key)
        if await self._executors.reads.run(backend.checksum, key) != uploaded:
            await self._executors.writes.run(backend.delete, key)
            await self._repo.release_claim(key=key, state=ObjectState.UPLOADING)
            raise DataLoss(f"{endpoint.name} stored other bytes than were uploaded", reason="VERIFY_FAILED")
        backups = backup_ids(await self._repo.list_endpoints())
        obj = await self._repo.complete_write(
            key=key, size_bytes=size_bytes, sha256=uploaded[1], endpoint_id=endpoint.id, backups=backups
        )
        await self._replication.schedule([(key, backup) for backup in backups])
        return obj
