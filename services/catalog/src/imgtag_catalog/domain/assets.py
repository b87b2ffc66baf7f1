"""Asset rules: an upload is checked to be an image before anything is stored, the original is
written to storage under a key only the catalog knows, and the row is recorded last (so a failed
upload leaves nothing behind, and nothing stored is ever overwritten)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, Protocol

from imgtag_catalog.db.repository import AssetRepository
from imgtag_catalog.domain.images import clean_filename, probe_image
from imgtag_catalog.domain.models import AssetRecord, AssetState
from imgtag_catalog.domain.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import AlreadyExists, DataLoss, InvalidArgument, NotFound, ResourceExhausted
from imgtag_common.resources import parse_resource_id
from imgtag_common.streams import spooled

log = logging.getLogger(__name__)


class ObjectStore(Protocol):
    """The storage service as the catalog needs it."""

    async def write(self, *, key: str, content_type: str, sha256: str, data: BinaryIO) -> None: ...
    def read(self, *, key: str) -> AsyncIterator[bytes]: ...
    async def delete(self, *, key: str) -> None: ...


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    spool_memory_bytes: int


@dataclass(frozen=True)
class UploadRequest:
    """What the uploader says about the bytes (everything but the bytes)."""

    owner: str
    filename: str = ""
    title: str = ""
    description: str = ""
    expected_sha256: str = ""
    allow_duplicate: bool = False


@dataclass(frozen=True)
class AssetPage:
    assets: list[AssetRecord]
    next_page_token: str


def parse_asset_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "assets")


class AssetService:
    def __init__(
        self,
        repository: AssetRepository,
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

    async def upload(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> AssetRecord:
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
            facts = await self._executor.run(probe_image, upload.file)
            if not request.allow_duplicate:
                existing = await self._repo.find_by_sha256(sha256=sha256)
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
                owner=request.owner,
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

    async def get(self, name: str) -> AssetRecord:
        record = await self._repo.get(asset_id=parse_asset_name(name))
        if record is None:
            raise NotFound(f"{name} does not exist", reason="ASSET_NOT_FOUND")
        return record

    async def list_page(
        self, *, page_size: int, page_token: str, show_deleted: bool, filter_text: str = ""
    ) -> AssetPage:
        if filter_text.strip():
            raise InvalidArgument("filter is not supported by this catalog version yet", reason="FILTER_NOT_SUPPORTED")
        limit = clamp_page_size(page_size, default=self._default_page_size, maximum=self._max_page_size)
        rows = await self._repo.list_page(
            cursor=decode_cursor(page_token), limit=limit + 1, include_trashed=show_deleted
        )
        page, more = rows[:limit], len(rows) > limit
        token = encode_cursor(Cursor(page[-1].create_time, page[-1].id)) if more else ""
        return AssetPage(assets=page, next_page_token=token)

    async def trash(self, name: str) -> AssetRecord:
        record = await self.get(name)
        if record.state is AssetState.TRASHED:
            return record
        now = datetime.now(UTC)
        updated = await self._repo.set_state(
            asset_id=record.id,
            state=AssetState.TRASHED,
            at=now,
            delete_time=now,
            purge_time=now + self._trash_retention,
        )
        assert updated is not None
        return updated

    async def original(self, name: str) -> tuple[AssetRecord, AsyncIterator[bytes]]:
        record = await self.get(name)
        return record, self._store.read(key=record.object_key)
