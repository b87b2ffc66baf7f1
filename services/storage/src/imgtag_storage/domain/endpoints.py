"""Endpoint administration: create, update and delete with a connectivity check first, exactly one
default upload endpoint (moved in one transaction; it cannot be deleted, disabled or made a
backup), secrets sealed before they are stored, and health probes counted into a state."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from imgtag_common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    ImgTagError,
    InvalidArgument,
    NotFound,
)
from imgtag_common.filtering import parse_filter
from imgtag_storage.domain.executors import Executors
from imgtag_storage.domain.models import (
    DEFAULT_READ_PRIORITY,
    DEFAULT_READ_WEIGHT,
    MAX_READ_WEIGHT,
    Endpoint,
    EndpointRole,
    EndpointUsage,
    HealthState,
    LocalConfig,
    S3Config,
    generate_endpoint_id,
    validate_new_endpoint_id,
)
from imgtag_storage.domain.ports import BackendFactory, SecretBox, StorageRepository

log = logging.getLogger(__name__)


@dataclass
class EndpointDraft:
    """An endpoint as a caller describes it; None means "not given" (defaults on create)."""

    display_name: str = ""
    role: EndpointRole | None = None
    config: S3Config | LocalConfig | None = None
    secret_access_key: str | None = None  # plain text, input only
    read_priority: int | None = None
    read_weight: int | None = None
    enabled: bool | None = None
    etag: str = ""


UPDATABLE = {
    "display_name",
    "role",
    "read_priority",
    "read_weight",
    "enabled",
    "s3.endpoint_url",
    "s3.region",
    "s3.access_key_id",
    "s3.secret_access_key",
    "s3.force_path_style",
    "s3.insecure_skip_tls_verify",
    "s3.public_url",
}
_CONNECTION_FIELDS = {f for f in UPDATABLE if f.startswith("s3.")}
_ENDPOINT_ORDERS = ("read_priority", "display_name", "create_time")


def _check_numbers(priority: int, weight: int) -> None:
    if not 0 <= priority <= 1_000_000:
        raise InvalidArgument("read_priority must be between 0 and 1000000", reason="INVALID_READ_PRIORITY")
    if not 0 <= weight <= MAX_READ_WEIGHT:
        raise InvalidArgument(f"read_weight must be between 0 and {MAX_READ_WEIGHT}", reason="INVALID_READ_WEIGHT")


def _check_config(config: S3Config | LocalConfig) -> None:
    if isinstance(config, LocalConfig):
        if not config.root_path.startswith("/"):
            raise InvalidArgument("local.root_path must be an absolute directory", reason="INVALID_ROOT_PATH")
        return
    if not config.bucket:
        raise InvalidArgument("s3.bucket is required", reason="MISSING_BUCKET")
    if not config.access_key_id:
        raise InvalidArgument("s3.access_key_id is required", reason="MISSING_ACCESS_KEY")
    if any(part in ("", ".", "..") for part in config.prefix.strip("/").split("/")) and config.prefix.strip("/"):
        raise InvalidArgument("s3.prefix must be a plain path like 'imgtag/'", reason="INVALID_PREFIX")


class EndpointService:
    def __init__(
        self,
        repository: StorageRepository,
        backends: BackendFactory,
        secrets: SecretBox,
        executors: Executors,
        *,
        unreachable_after: int,
    ) -> None:
        self._repo = repository
        self._backends = backends
        self._secrets = secrets
        self._executors = executors
        self._unreachable_after = unreachable_after
        # Set by the replication service: back-fill an endpoint that starts receiving copies.
        self.on_sync_enabled: Callable[[Endpoint], Awaitable[int]] | None = None
        # Called when an endpoint comes back from a failing state (retry what failed there).
        self.on_recovered: Callable[[Endpoint], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ start-up

    async def bootstrap_s3_endpoint(
        self, *, endpoint_url: str, access_key: str, secret_key: str, bucket: str, region: str
    ) -> Endpoint | None:
        """On a fresh database, make the configured S3 bucket the primary, default upload endpoint."""
        if await self._repo.list_endpoints():
            return None
        endpoint = Endpoint(
            id="primary-s3",
            display_name="Primary S3",
            role=EndpointRole.PRIMARY,
            config=S3Config(
                endpoint_url=endpoint_url,
                bucket=bucket,
                access_key_id=access_key,
                region=region,
                sealed_secret_access_key=self._secrets.seal(secret_key),
            ),
            read_priority=10,
            is_default_upload=True,
        )
        backend = self._backends.fresh(endpoint)
        await self._executors.background.run(_ensure_bucket, backend, bucket)
        return await self._repo.insert_endpoint(endpoint=endpoint)

    async def seal_plain_secrets(self) -> int:
        """Encrypt S3 secrets an older version stored in plain text; returns how many."""
        sealed = 0
        for endpoint_id, raw in await self._repo.raw_configs():
            plain = raw.get("secret_access_key")
            if plain:
                config = {k: v for k, v in raw.items() if k != "secret_access_key"}
                config["sealed_secret_access_key"] = self._secrets.seal(plain)
                await self._repo.replace_config(endpoint_id=endpoint_id, config=config)
                sealed += 1
        if sealed:
            log.info("sealed plain-text endpoint secrets", extra={"count": sealed})
        return sealed

    # ------------------------------------------------------------------ reading

    async def get(self, endpoint_id: str) -> Endpoint:
        endpoint = await self._repo.get_endpoint(endpoint_id=endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoints/{endpoint_id} does not exist", reason="ENDPOINT_NOT_FOUND")
        return endpoint

    async def usage(self, endpoint: Endpoint) -> EndpointUsage:
        count, size = await self._repo.usage(endpoint_id=endpoint.id)
        available = 0
        if endpoint.enabled:
            try:
                available = await self._executors.background.run(self._backends.backend(endpoint).available_bytes)
            except ImgTagError:
                available = 0
        return EndpointUsage(object_count=count, size_bytes=size, available_bytes=available)

    async def list_page(
        self, *, filter_text: str, order_by: str, after: tuple[Any, str] | None, limit: int
    ) -> list[Endpoint]:
        field, descending = parse_order(order_by, _ENDPOINT_ORDERS, default="read_priority")
        return await self._repo.page_endpoints(
            filter_expr=parse_filter(filter_text), order_by=field, descending=descending, after=after, limit=limit
        )

    # ------------------------------------------------------------------ changing

    async def _check_connection(self, endpoint: Endpoint, *, writable: bool = True) -> None:
        """FAILED_PRECONDITION with the backend's (safe) error unless the endpoint works."""
        backend = self._backends.fresh(endpoint)
        try:
            await self._executors.background.run(backend.probe if writable else backend.check_readable)
        except ImgTagError as error:
            if error.reason == "READ_ONLY" and endpoint.role is EndpointRole.PRIMARY:
                raise FailedPrecondition(error.message, reason="READ_ONLY") from None
            if error.reason == "READ_ONLY":
                raise FailedPrecondition(
                    f"{error.message}: a backup must be writable to receive copies", reason="READ_ONLY"
                ) from None
            raise FailedPrecondition(
                f"{endpoint.name} failed the connection check: {error.message}", reason=error.reason
            ) from None

    def _sealed(self, config: S3Config | LocalConfig, secret: str | None) -> S3Config | LocalConfig:
        if isinstance(config, S3Config) and secret is not None:
            return replace(config, sealed_secret_access_key=self._secrets.seal(secret) if secret else "")
        return config

    async def create(self, draft: EndpointDraft, *, endpoint_id: str, validate_only: bool) -> Endpoint:
        endpoint_id = validate_new_endpoint_id(endpoint_id) if endpoint_id else generate_endpoint_id()
        if not draft.display_name.strip():
            raise InvalidArgument("display_name is required", reason="MISSING_DISPLAY_NAME")
        if draft.role is None:
            raise InvalidArgument("role is required (PRIMARY or BACKUP)", reason="MISSING_ROLE")
        if draft.config is None:
            raise InvalidArgument("one of local or s3 is required", reason="MISSING_CONFIG")
        _check_config(draft.config)
        if isinstance(draft.config, S3Config) and not draft.secret_access_key:
            raise InvalidArgument("s3.secret_access_key is required", reason="MISSING_SECRET_KEY")
        endpoint = Endpoint(
            id=endpoint_id,
            display_name=draft.display_name.strip(),
            role=draft.role,
            config=self._sealed(draft.config, draft.secret_access_key),
            read_priority=DEFAULT_READ_PRIORITY if draft.read_priority is None else draft.read_priority,
            read_weight=DEFAULT_READ_WEIGHT if draft.read_weight is None else draft.read_weight,
            enabled=True if draft.enabled is None else draft.enabled,
        )
        _check_numbers(endpoint.read_priority, endpoint.read_weight)
        if await self._repo.get_endpoint(endpoint_id=endpoint_id) is not None:
            raise AlreadyExists(f"endpoints/{endpoint_id} already exists", reason="ENDPOINT_EXISTS")
        await self._check_connection(endpoint)
        if validate_only:
            return endpoint
        created = await self._repo.insert_endpoint(endpoint=endpoint)
        if created is None:
            raise AlreadyExists(f"endpoints/{endpoint_id} already exists", reason="ENDPOINT_EXISTS")
        log.info("endpoint created", extra={"endpoint": created.name, "role": created.role.value})
        await self.record_probe(created, error=None, latency_ms=0.0)
        if created.role is EndpointRole.BACKUP and created.enabled and self.on_sync_enabled:
            await self.on_sync_enabled(created)
        return await self.get(created.id)

    async def update(self, endpoint_id: str, draft: EndpointDraft, *, mask: list[str], validate_only: bool) -> Endpoint:
        if not mask:
            raise InvalidArgument("update_mask is required", reason="MISSING_UPDATE_MASK")
        unknown = sorted(set(mask) - UPDATABLE)
        if unknown:
            raise InvalidArgument(f"these fields cannot be updated: {', '.join(unknown)}", reason="INVALID_UPDATE_MASK")
        current = await self.get(endpoint_id)
        if draft.etag and draft.etag != current.etag:
            raise Aborted(f"{current.name} changed since it was read; read it again", reason="ETAG_MISMATCH")
        updated = replace(current)
        if "display_name" in mask:
            if not draft.display_name.strip():
                raise InvalidArgument("display_name must not be empty", reason="MISSING_DISPLAY_NAME")
            updated.display_name = draft.display_name.strip()
        if "role" in mask:
            if draft.role is None:
                raise InvalidArgument("role must be PRIMARY or BACKUP", reason="MISSING_ROLE")
            updated.role = draft.role
        if "read_priority" in mask:
            updated.read_priority = DEFAULT_READ_PRIORITY if draft.read_priority is None else draft.read_priority
        if "read_weight" in mask:
            updated.read_weight = DEFAULT_READ_WEIGHT if draft.read_weight is None else draft.read_weight
        if "enabled" in mask:
            updated.enabled = True if draft.enabled is None else draft.enabled
        _check_numbers(updated.read_priority, updated.read_weight)
        connection_changed = bool(_CONNECTION_FIELDS & set(mask))
        if connection_changed:
            if not isinstance(current.config, S3Config) or not isinstance(draft.config, S3Config | type(None)):
                raise InvalidArgument("only S3 connection settings can be changed", reason="INVALID_UPDATE_MASK")
            given = draft.config or S3Config(endpoint_url="", bucket="", access_key_id="")
            config = replace(current.config)
            for path in mask:
                if path.startswith("s3.") and path != "s3.secret_access_key":
                    setattr(config, path.removeprefix("s3."), getattr(given, path.removeprefix("s3.")))
            if "s3.secret_access_key" in mask:
                if not draft.secret_access_key:
                    raise InvalidArgument("s3.secret_access_key must not be empty", reason="MISSING_SECRET_KEY")
                config = self._sealed(config, draft.secret_access_key)
            _check_config(config)
            updated.config = config
        if current.is_default_upload and (not updated.enabled or updated.role is not EndpointRole.PRIMARY):
            raise FailedPrecondition(
                f"{current.name} is the default upload endpoint: make another one the default first",
                reason="DEFAULT_UPLOAD_ENDPOINT",
            )
        if connection_changed or (updated.enabled and not current.enabled):
            await self._check_connection(updated)
        if validate_only:
            return updated
        saved = await self._repo.update_endpoint(endpoint=updated, expected_update_time=current.update_time)
        if saved is None:
            raise Aborted(f"{current.name} changed while it was being updated; try again", reason="CONCURRENT_UPDATE")
        starts_syncing = saved.role is EndpointRole.BACKUP and saved.enabled
        was_syncing = current.role is EndpointRole.BACKUP and current.enabled
        if starts_syncing and not was_syncing and self.on_sync_enabled:
            await self.on_sync_enabled(saved)
        if connection_changed:
            await self.check_health(saved.id)
        return await self.get(saved.id)

    async def delete(self, endpoint_id: str, *, force: bool) -> None:
        endpoint = await self.get(endpoint_id)
        if endpoint.is_default_upload:
            raise FailedPrecondition(
                f"{endpoint.name} is the default upload endpoint: make another one the default first",
                reason="DEFAULT_UPLOAD_ENDPOINT",
            )
        only_copies = await self._repo.delete_endpoint(endpoint_id=endpoint_id, force=force)
        if only_copies and not force:
            raise FailedPrecondition(
                f"{endpoint.name} holds the only verified copy of {only_copies} object(s): copy them elsewhere "
                "first (or delete with force, which makes them unreadable)",
                reason="ONLY_COPY",
                metadata={"object_count": str(only_copies)},
            )
        log.info("endpoint deleted", extra={"endpoint": endpoint.name, "lost_objects": only_copies})

    async def set_default_upload(self, endpoint_id: str) -> Endpoint:
        endpoint = await self.get(endpoint_id)
        saved = await self._repo.set_default_upload(endpoint_id=endpoint_id)
        if saved is None:
            raise FailedPrecondition(
                f"{endpoint.name} must be an enabled PRIMARY endpoint to take uploads", reason="NOT_AN_UPLOAD_TARGET"
            )
        return saved

    # ------------------------------------------------------------------ health

    async def check_health(self, endpoint_id: str) -> Endpoint:
        endpoint = await self.get(endpoint_id)
        await self.probe(endpoint)
        return await self.get(endpoint_id)

    async def probe(self, endpoint: Endpoint) -> None:
        """Write, read back and delete a small object (a bucket check when read-only)."""
        backend = self._backends.backend(endpoint)
        started = time.perf_counter()
        error: ImgTagError | None = None
        try:
            await self._executors.background.run(backend.probe)
        except ImgTagError as failure:
            error = failure
        if error is not None and error.reason == "READ_ONLY":
            # Read-only credentials: healthy for reading if the bucket answers.
            try:
                await self._executors.background.run(backend.check_readable)
                error = None
                degraded = "read-only: writes are refused"
            except ImgTagError as failure:
                error, degraded = failure, ""
        else:
            degraded = ""
        await self.record_probe(
            endpoint, error=error, latency_ms=(time.perf_counter() - started) * 1000, degraded=degraded
        )

    async def record_probe(
        self, endpoint: Endpoint, *, error: ImgTagError | None, latency_ms: float, degraded: str = ""
    ) -> None:
        change = await self._repo.record_probe(
            endpoint_id=endpoint.id,
            ok=error is None,
            error=error.message if error else degraded,
            degraded=bool(degraded),
            at=datetime.now(UTC),
            latency_ms=latency_ms,
            unreachable_after=self._unreachable_after,
        )
        if change is None:
            return
        before, after = change
        if before != after:
            log.info("endpoint health changed", extra={"endpoint": endpoint.name, "from": before, "to": after})
        if after is HealthState.HEALTHY and before in (HealthState.UNREACHABLE, HealthState.DEGRADED):
            if self.on_recovered is not None:
                await self.on_recovered(endpoint)


def parse_order(order_by: str, allowed: tuple[str, ...], *, default: str) -> tuple[str, bool]:
    """("field", descending) from "field" or "field desc"."""
    words = order_by.split()
    if not words:
        return default, False
    field = words[0]
    descending = len(words) == 2 and words[1].lower() == "desc"
    if field not in allowed or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
        raise InvalidArgument(
            f"order_by is one of {', '.join(allowed)}, optionally with ' desc'", reason="INVALID_ORDER_BY"
        )
    return field, descending


def _ensure_bucket(backend: Any, bucket: str, timeout_s: float = 30.0) -> None:
    """Create the bootstrap bucket if missing; retried because a fresh S3 server may not take writes yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            backend.ensure_bucket()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
