"""What the storage domain needs from the outside, as Protocols: object backends (adapters/),
the database (db/), the durable job queue (the kit's jobs) and the secret box (adapters/).

Backends are blocking (SDKs, file I/O) and are only called through the service's executors.
They raise the kit's errors with messages safe for any caller (no host, bucket or secret):
NotFound (the object is not there), Unavailable (cannot reach the endpoint) and
FailedPrecondition (it answers but refuses: credentials, missing bucket, read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Protocol

from imgtag_common.filtering import Expr
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointRole,
    HealthState,
    ObjectReplica,
    ObjectState,
    ReplicaState,
    ReplicationOverview,
    Scrub,
    StoredObject,
)


class ObjectReader(Protocol):
    def read(self, size: int) -> bytes: ...
    def close(self) -> None: ...


class ObjectBackend(Protocol):
    """One endpoint's storage. Keys are relative ('originals/<uuid>'), already validated."""

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        """Store everything `data.read` yields under `key`, atomically (all or nothing)."""
        ...

    def open(self, key: str, offset: int = 0, length: int = 0) -> ObjectReader: ...
    def checksum(self, key: str) -> tuple[int, str]:
        """(size, sha256 hex) of the bytes stored under `key`, read back in full."""
        ...

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None:
        """Remove `key`; absent is fine."""
        ...

    def move(self, source: str, target: str) -> None:
        """Rename/copy `source` to `target` on this endpoint, then remove `source`."""
        ...

    def probe(self) -> None:
        """Check the endpoint works: write, read back and delete a small object. A backend
        that can read but not write raises FailedPrecondition with reason READ_ONLY."""
        ...

    def check_readable(self) -> None:
        """Check the endpoint answers for reading (bucket/directory exists, credentials valid)."""
        ...

    def available_bytes(self) -> int: ...
    def presign(self, key: str, *, method: str, ttl: timedelta, content_type: str) -> str: ...


class BackendFactory(Protocol):
    """One backend (and so one connection pool) per endpoint configuration, reused."""

    def backend(self, endpoint: Endpoint) -> ObjectBackend: ...
    def fresh(self, endpoint: Endpoint) -> ObjectBackend:
        """A backend for a configuration not saved yet (create/update checks)."""
        ...


class SecretBox(Protocol):
    """Seals secrets for storage at rest and opens them for the adapters."""

    def seal(self, plain: str) -> str: ...
    def open(self, sealed: str) -> str: ...


class JobScheduler(Protocol):
    """The durable queue (imgtag_common.jobs.JobQueue)."""

    async def enqueue(
        self, name: str, payload: dict[str, Any], *, dedupe_key: str | None = None, delay_s: float = 0.0
    ) -> int | None: ...

    async def enqueue_many(
        self, name: str, payloads: Sequence[dict[str, Any]], *, dedupe_keys: Sequence[str | None] | None = None
    ) -> int: ...


class StorageRepository(Protocol):
    """The storage database. One transaction per call unless it says otherwise."""

    # endpoints
    async def list_endpoints(self) -> list[Endpoint]: ...
    async def page_endpoints(
        self, *, filter_expr: Expr | None, order_by: str, descending: bool, after: tuple[Any, str] | None, limit: int
    ) -> list[Endpoint]: ...
    async def get_endpoint(self, *, endpoint_id: str) -> Endpoint | None: ...
    async def default_upload_endpoint(self) -> Endpoint | None: ...
    async def insert_endpoint(self, *, endpoint: Endpoint) -> Endpoint | None:
        """None when the id is taken."""
        ...

    async def update_endpoint(self, *, endpoint: Endpoint, expected_update_time: datetime | None) -> Endpoint | None:
        """Save the changeable fields; None when the row changed since `expected_update_time`."""
        ...

    async def set_default_upload(self, *, endpoint_id: str) -> Endpoint | None:
        """Move the flag in one transaction; None unless the endpoint is an enabled PRIMARY."""
        ...

    async def raw_configs(self) -> list[tuple[str, dict[str, Any]]]:
        """(id, stored config) of every endpoint, for sealing secrets older versions kept plain."""
        ...

    async def replace_config(self, *, endpoint_id: str, config: dict[str, Any]) -> None: ...
    async def delete_endpoint(self, *, endpoint_id: str, force: bool) -> int:
        """Delete the endpoint and its replica rows in one transaction. Returns how many objects
        had their only VERIFIED replica there; with that > 0 and not `force`, deletes nothing."""
        ...

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
        """Count a probe result; returns (state before, state after)."""
        ...

    async def usage(self, *, endpoint_id: str) -> tuple[int, int]: ...

    # objects
    async def get_object(self, *, key: str) -> StoredObject | None: ...
    async def claim_key(
        self, *, key: str, content_type: str, state: ObjectState, endpoint_id: str, staging_key: str = ""
    ) -> StoredObject | None:
        """Insert the object row in `state` (claiming the key); None when the key is taken."""
        ...

    async def staging_key(self, *, key: str) -> tuple[str, str, str] | None:
        """(endpoint id, staging key, content type) of a presigned upload in progress."""
        ...

    async def release_claim(self, *, key: str, state: ObjectState) -> None: ...
    async def stale_claims(self, *, older_than: datetime) -> list[tuple[str, str, str, str]]:
        """(key, state, endpoint id, staging key) of claims whose writer never finished."""
        ...

    async def complete_write(
        self, *, key: str, size_bytes: int, sha256: str, endpoint_id: str, backups: Sequence[str]
    ) -> StoredObject:
        """Mark the claimed object STORED with a VERIFIED replica on `endpoint_id` and
        PENDING ones on `backups`, in one transaction."""
        ...

    async def list_objects(self, *, prefix: str, after: str, limit: int) -> list[StoredObject]: ...
    async def mark_deleting(self, *, key: str) -> StoredObject | None: ...
    async def drop_replica(self, *, key: str, endpoint_id: str) -> None:
        """Remove a replica row; the object row goes with its last replica once DELETING."""
        ...

    # replicas
    async def begin_copy(self, *, key: str, endpoint_id: str) -> tuple[StoredObject, ReplicaState, int] | None:
        """Count an attempt on the replica (created PENDING when absent) unless the object is
        gone/not STORED or the replica is VERIFIED; returns the object, the replica's state and
        its attempt count before this one."""
        ...

    async def finish_copy(self, *, key: str, endpoint_id: str) -> bool:
        """Mark VERIFIED if the object is still STORED; False when it is being deleted."""
        ...

    async def record_copy_failure(
        self, *, key: str, endpoint_id: str, error: str, next_attempt: datetime | None
    ) -> None: ...
    async def mark_replica(self, *, key: str, endpoint_id: str, state: ReplicaState, error: str = "") -> None: ...
    async def reset_for_copy(
        self, *, states: Sequence[ReplicaState], endpoint_id: str | None, keys: Sequence[str]
    ) -> list[tuple[str, str]]:
        """Set matching replicas PENDING (attempts kept); returns their (key, endpoint id)."""
        ...

    async def missing_on(self, *, endpoint_id: str, role: EndpointRole) -> list[str]:
        """Keys of STORED objects without a VERIFIED replica on the endpoint (creating PENDING
        replica rows for a BACKUP that has none)."""
        ...

    async def replicas_on(self, *, endpoint_id: str, after: str, limit: int) -> list[StoredObject]:
        """STORED objects with a replica on the endpoint, by key (for scrubs)."""
        ...

    async def count_replicas_on(self, *, endpoint_id: str) -> int: ...
    async def overview(self) -> ReplicationOverview: ...
    async def page_replicas(
        self,
        *,
        filter_expr: Expr | None,
        order_by: str,
        descending: bool,
        after: tuple[Any, str, str] | None,
        limit: int,
    ) -> list[ObjectReplica]: ...

    # scrubs
    async def insert_scrub(self, *, scrub: Scrub) -> Scrub: ...
    async def get_scrub(self, *, scrub_id: str) -> Scrub | None: ...
    async def save_scrub(self, *, scrub: Scrub) -> None: ...
