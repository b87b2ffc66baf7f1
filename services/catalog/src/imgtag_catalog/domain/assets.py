"""Asset rules: an upload is checked to be an image before anything is stored, the original is
written to storage under a key only the catalog knows, and the row is recorded last (so a failed
upload leaves nothing behind, and nothing stored is ever overwritten). Every operation acts for a
principal and sees only what `visibility` lets it see."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Protocol

from imgtag_catalog.domain.images import DEFAULT_MAX_PIXELS, clean_filename, probe_image
from imgtag_catalog.domain.models import AssetRecord, AssetState, Visibility
from imgtag_catalog.domain.visibility import ViewScope, require_changeable, require_visible, view_scope
from imgtag_common.auth import Principal
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import AlreadyExists, DataLoss, InvalidArgument, NotFound, ResourceExhausted
from imgtag_common.filtering import Expr, parse_filter
from imgtag_common.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor
from imgtag_common.resources import parse_resource_id
from imgtag_common.streams import spooled

log = logging.getLogger(__name__)


class ObjectStore(Protocol):
    """The storage service as the catalog needs it."""

    async def write(self, *, key: str, content_type: str, sha256: str, data: BinaryIO) -> None: ...
    def read(self, *, key: str) -> AsyncIterator[bytes]: ...
    async def delete(self, *, key: str) -> None: ...


class AssetStore(Protocol):
    """The catalog's asset table (`db.repository.AssetRepository`)."""

    async def insert(self, *, asset: AssetRecord) -> None: ...
    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None: ...
    async def find_by_sha256(self, *, owner: str, sha256: str) -> AssetRecord | None: ...
    async def list_page(
        self, *, scope: ViewScope, filters: list[Expr], cursor: Cursor | None, limit: int, include_trashed: bool
    ) -> list[AssetRecord]: ...
    async def random(self, *, scope: ViewScope, filters: list[Expr], count: int) -> list[AssetRecord]: ...
    async def update(self, *, asset_id: uuid.UUID, changes: dict[str, Any]) -> AssetRecord | None: ...


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    spool_memory_bytes: int
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class UploadRequest:
    """What the uploader says about the bytes (everything but the bytes)."""

    filename: str = ""
    title: str = ""
    description: str = ""
    expected_sha256: str = ""
    allow_duplicate: bool = False


@dataclass(frozen=True)
class AssetPage:
    assets: list[AssetRecord]
    next_page_token: str


@dataclass(frozen=True)
class AssetChanges:
    """Fields UpdateAsset may change; None leaves a field as it is."""

    filename: str | None = None
    title: str | None = None
    description: str | None = None
    visibility: Visibility | None = None


_MAX_TITLE = 500
_MAX_DESCRIPTION = 10_000
MAX_RANDOM = 100


def parse_asset_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "assets")


def _restriction_filters(principal: Principal) -> list[Expr]:
    """An API key's restriction, applied to everything the key lists."""
    restriction = parse_filter(principal.restriction_filter)
    if principal.restriction_collection:
        # Collections arrive with the catalog issue; until then a collection-restricted key
        # sees nothing rather than everything.
        raise InvalidArgument(
            "this API key is restricted to a collection, which this version cannot evaluate yet",
            reason="RESTRICTION_NOT_SUPPORTED",
        )
    return [restriction] if restriction is not None else []


class AssetService:
    def __init__(
        self,
        repository: AssetStore,
        store: ObjectStore,
        executor: BlockingExecutor,
        *,
        limits: UploadLimits,
        default_page_size: int,
        max_page_size: int,
        trash_retention: timedelta,
    ) -> None:
        self._repo = repository
        self._store = store
        self._executor = executor
        self._limits = limits
        self._default_page_size = default_page_size
        self._max_page_size = max_page_size
        self._trash_retention = trash_retention

    async def upload(self, principal: Principal, request: UploadRequest, chunks: AsyncIterator[bytes]) -> AssetRecord:
        too_large = ResourceExhausted(
            f"upload exceeds the {self._limits.max_bytes}-byte limit", reason="UPLOAD_TOO_LARGE"
        )
        async with spooled(
            chunks,
            self._executor,
            memory_bytes=self._limits.spool_memory_bytes,
            max_bytes=self._limits.max_bytes,
            too_large=too_large,
        ) as upload:
            size, sha256 = upload.size, upload.sha256
            if size == 0:
                raise InvalidArgument("the upload is empty", reason="EMPTY_UPLOAD")
            if request.expected_sha256 and request.expected_sha256.lower() != sha256:
                raise DataLoss(f"the upload's sha256 {sha256} differs from expected_sha256", reason="CHECKSUM_MISMATCH")
            facts = await self._executor.run(probe_image, upload.file, max_pixels=self._limits.max_pixels)
            if not request.allow_duplicate:
                existing = await self._repo.find_by_sha256(owner=principal.user, sha256=sha256)
                if existing is not None:
                    raise AlreadyExists(
                        f"this image is already in the library as {existing.name}",
                        reason="DUPLICATE_ASSET",
                        metadata={"asset": existing.name},
                    )
            asset_id = uuid.uuid4()
            now = datetime.now(UTC)
            record = AssetRecord(
                id=asset_id,
                owner=principal.user,
                filename=clean_filename(request.filename, facts.content_type),
                title=request.title.strip(),
                description=request.description.strip(),
                content_type=facts.content_type,
                size_bytes=size,
                sha256=sha256,
                width=facts.width,
                height=facts.height,
                state=AssetState.ACTIVE,
                object_key=f"originals/{asset_id}",
                create_time=now,
                update_time=now,
            )
            await self._store.write(
                key=record.object_key, content_type=record.content_type, sha256=record.sha256, data=upload.file
            )
        try:
            await self._repo.insert(asset=record)
        except BaseException:
            # The row is the asset; an original without one is garbage, so remove it.
            log.exception("recording %s failed; removing its original", record.name)
            await self._store.delete(key=record.object_key)
            raise
        return record

    async def get(self, principal: Principal, name: str) -> AssetRecord:
        return require_visible(principal, await self._repo.get(asset_id=parse_asset_name(name)), name)

    async def list_page(
        self, principal: Principal, *, page_size: int, page_token: str, show_deleted: bool, filter_text: str = ""
    ) -> AssetPage:
        filters = [f for f in [parse_filter(filter_text)] if f is not None] + _restriction_filters(principal)
        limit = clamp_page_size(page_size, default=self._default_page_size, maximum=self._max_page_size)
        rows = await self._repo.list_page(
            scope=view_scope(principal),
            filters=filters,
            cursor=decode_cursor(page_token),
            limit=limit + 1,
            include_trashed=show_deleted,
        )
        page, more = rows[:limit], len(rows) > limit
        token = encode_cursor(Cursor(page[-1].create_time, page[-1].id)) if more else ""
        return AssetPage(assets=page, next_page_token=token)

    async def random(self, principal: Principal, *, count: int, filter_text: str) -> list[AssetRecord]:
        if count < 0 or count > MAX_RANDOM:
            raise InvalidArgument(f"count is 1-{MAX_RANDOM}", reason="INVALID_COUNT")
        filters = [f for f in [parse_filter(filter_text)] if f is not None] + _restriction_filters(principal)
        chosen = await self._repo.random(scope=view_scope(principal), filters=filters, count=count or 1)
        random.shuffle(chosen)
        return chosen

    async def update(self, principal: Principal, name: str, changes: AssetChanges) -> AssetRecord:
        record = require_changeable(principal, await self._repo.get(asset_id=parse_asset_name(name)), name)
        values: dict[str, Any] = {}
        if changes.filename is not None:
            if not changes.filename.strip():
                raise InvalidArgument("filename cannot be empty", reason="INVALID_FILENAME")
            values["filename"] = clean_filename(changes.filename, record.content_type)
        if changes.title is not None:
            values["title"] = self._bounded_text(changes.title, "title", _MAX_TITLE)
        if changes.description is not None:
            values["description"] = self._bounded_text(changes.description, "description", _MAX_DESCRIPTION)
        if changes.visibility is not None:
            values["visibility"] = changes.visibility
        if not values:
            raise InvalidArgument("update_mask names nothing to update", reason="EMPTY_UPDATE")
        values["update_time"] = datetime.now(UTC)
        updated = await self._repo.update(asset_id=record.id, changes=values)
        return require_visible(principal, updated, name)

    @staticmethod
    def _bounded_text(text: str, field: str, limit: int) -> str:
        cleaned = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()
        if len(cleaned) > limit:
            raise InvalidArgument(f"{field} is at most {limit} characters", reason="TEXT_TOO_LONG")
        return cleaned

    async def trash(self, principal: Principal, name: str) -> AssetRecord:
        record = require_changeable(principal, await self._repo.get(asset_id=parse_asset_name(name)), name)
        if record.state is AssetState.TRASHED:
            return record
        now = datetime.now(UTC)
        updated = await self._repo.update(
            asset_id=record.id,
            changes={
                "state": AssetState.TRASHED,
                "update_time": now,
                "delete_time": now,
                "purge_time": now + self._trash_retention,
            },
        )
        return require_visible(principal, updated, name)

    async def original(self, principal: Principal, name: str) -> tuple[AssetRecord, AsyncIterator[bytes]]:
        record = await self.get(principal, name)
        return record, self._store.read(key=record.object_key)

    async def original_by_id(self, asset_id: uuid.UUID) -> tuple[AssetRecord, AsyncIterator[bytes]]:
        """For a request whose signed URL already proved it may read this asset."""
        record = await self._repo.get(asset_id=asset_id)
        if record is None:
            raise NotFound(f"assets/{asset_id} does not exist", reason="ASSET_NOT_FOUND")
        return record, self._store.read(key=record.object_key)
