"""Asset rules: how a photo gets in without ever being lost or doubled, and what each caller may
do with it afterwards.

An upload is checked to be an image before anything is stored. Then its row is claimed
(UPLOADING) under a unique index on (owner, sha256), so two identical uploads at the same moment
cannot both get in, then the bytes are written to storage under a key only the catalog knows,
then the row becomes ACTIVE and processing is queued. If the write fails, storage is asked
whether the bytes arrived anyway (the reply can be lost after the write committed): if they
did, the asset is kept; if not, the claim is released; if storage cannot say, the claim stays
for the janitor, which settles it the same way later. Bytes a row may reference are never
deleted."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, BinaryIO, Protocol

from imgtag_catalog.domain.collections import Collections
from imgtag_catalog.domain.images import ImageFacts, clean_filename, probe_image
from imgtag_catalog.domain.models import (
    AnalysisState,
    AssetRecord,
    AssetState,
    AssetTag,
    BatchOutcome,
    Camera,
    CaptionState,
    Location,
    ProcessingState,
    Variant,
    Visibility,
)
from imgtag_catalog.domain.tags import Vocabulary
from imgtag_catalog.domain.visibility import ViewScope, require_changeable, require_visible, view_scope
from imgtag_common.auth import Principal
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    ImgTagError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from imgtag_common.filtering import Expr, parse_filter
from imgtag_common.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor, query_fingerprint
from imgtag_common.resources import parse_resource_id
from imgtag_common.streams import Spooled, spooled

log = logging.getLogger(__name__)

MAX_BATCH_NAMES = 1000
MAX_BATCH_FILTER = 100_000
MAX_RANDOM = 100
MAX_SHA256_LOOKUP = 1000
_MAX_TITLE = 500
_MAX_DESCRIPTION = 10_000
_MAX_LABELS = 64
_ORDERS = {
    "": ("create_time", True),
    "create_time desc": ("create_time", True),
    "create_time": ("create_time", False),
    "capture_time desc": ("capture_time", True),
    "capture_time": ("capture_time", False),
}


class ObjectStore(Protocol):
    """The storage service as the catalog needs it."""

    async def write(
        self, *, key: str, content_type: str, sha256: str, data: BinaryIO, replicate: bool = True
    ) -> None: ...
    def read(self, *, key: str) -> AsyncIterator[bytes]: ...
    async def stat_sha256(self, *, key: str) -> str | None: ...
    async def delete(self, *, key: str) -> None: ...


class AssetStore(Protocol):
    """The catalog's asset table (`db.repository.AssetRepository`)."""

    async def claim(self, *, asset: AssetRecord) -> AssetRecord | None: ...
    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None: ...
    async def get_many(self, *, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, AssetRecord]: ...
    async def find_by_sha256s(self, *, owner: str, sha256s: Sequence[str]) -> dict[str, AssetRecord]: ...
    async def list_page(
        self,
        *,
        scope: ViewScope,
        filters: Sequence[Expr],
        sort: str,
        descending: bool,
        cursor: Cursor | None,
        limit: int,
        include_trashed: bool,
    ) -> list[AssetRecord]: ...
    async def count(self, *, scope: ViewScope, filters: Sequence[Expr], include_trashed: bool) -> int: ...
    async def ids_matching(
        self, *, scope: ViewScope, filters: Sequence[Expr], limit: int, include_trashed: bool
    ) -> list[uuid.UUID]: ...
    async def random(self, *, scope: ViewScope, filters: Sequence[Expr], count: int) -> list[AssetRecord]: ...
    async def state_counts(self, *, scope: ViewScope, filters: Sequence[Expr]) -> dict[str, dict[str, int]]: ...
    async def update(self, *, asset_id: uuid.UUID, changes: dict[str, Any]) -> AssetRecord | None: ...
    async def update_many(
        self, *, asset_ids: Sequence[uuid.UUID], changes: dict[str, Any], only_state: AssetState | None = None
    ) -> int: ...
    async def delete_rows(self, *, asset_ids: Sequence[uuid.UUID]) -> None: ...
    async def stale_uploads(self, *, older_than: datetime, limit: int) -> list[AssetRecord]: ...
    async def due_for_purge(self, *, now: datetime, limit: int) -> list[AssetRecord]: ...


class AssetTagStore(Protocol):
    async def tags_of(
        self, *, asset_ids: list[uuid.UUID], include_rejected: bool = False
    ) -> dict[uuid.UUID, list[AssetTag]]: ...
    async def add_manual(self, *, asset_ids: Sequence[uuid.UUID], tag_ids: Sequence[uuid.UUID]) -> None: ...
    async def remove(self, *, asset_ids: list[uuid.UUID], tag_ids: list[uuid.UUID]) -> None: ...
    async def review(self, *, asset_id: uuid.UUID, tag_id: uuid.UUID, confirm: bool) -> bool: ...


class MembershipStore(Protocol):
    async def collections_of(self, *, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]: ...


class RecentOriginals(Protocol):
    """Originals an upload left on this machine for the processing job, so that it need not read
    them back from storage (`adapters.recent_originals`; blocking calls). A shortcut only: what
    is not there, or not those bytes, is read from storage."""

    def keep(self, *, key: str, data: BinaryIO, size: int) -> None: ...
    def take(self, *, key: str, sha256: str) -> BinaryIO | None: ...


class ProcessingQueue(Protocol):
    """Where new and re-analysed assets are queued for processing (`pipeline.Pipeline`)."""

    async def schedule(self, asset_ids: Sequence[uuid.UUID]) -> None: ...
    async def refresh_text(self, asset_ids: Sequence[uuid.UUID]) -> None: ...


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    spool_memory_bytes: int
    max_pixels: int
    # A claim UPLOADING this long belongs to an upload that was cut off (see _claim).
    stale_after: timedelta = timedelta(minutes=10)
    # How long an upload waits for an identical one in flight before answering UNAVAILABLE.
    claim_wait: timedelta = timedelta(seconds=20)


@dataclass(frozen=True)
class UploadRequest:
    """What the uploader says about the bytes (everything but the bytes)."""

    filename: str = ""
    title: str = ""
    description: str = ""
    expected_sha256: str = ""
    allow_duplicate: bool = False
    skip_analysis: bool = False
    collection: str = ""
    tags: tuple[str, ...] = ()


class Outcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Ingested:
    outcome: Outcome
    asset: AssetRecord


@dataclass(frozen=True)
class AssetPage:
    assets: list[AssetRecord]
    next_page_token: str
    total_size: int = 0


@dataclass(frozen=True)
class Selection:
    """A batch operation's assets: by name, or every changeable asset matching a filter."""

    names: tuple[str, ...] = ()
    filter: str | None = None


@dataclass
class AssetChanges:
    """Fields UpdateAsset may change; a name in `fields` means "set it to this value"."""

    fields: set[str] = field(default_factory=set)
    filename: str = ""
    title: str = ""
    description: str = ""
    visibility: Visibility = Visibility.PRIVATE
    capture_time: datetime | None = None
    favorite: bool = False
    rating: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    location: Location | None = None


UPDATABLE = frozenset(
    {"filename", "title", "description", "visibility", "capture_time", "favorite", "rating", "labels", "location"}
)


def parse_asset_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "assets")


# Originals a browser shows as they are; anything else always gets a preview rendition.
WEB_DISPLAYABLE = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


@dataclass(frozen=True)
class ContentRef:
    """Which stored object serves a variant, and its type."""

    key: str
    content_type: str
    variant: Variant


def content_ref(record: AssetRecord, variant: Variant) -> ContentRef:
    """The object behind a variant. A preview falls back to the original when the original is
    small and browser-friendly enough to be its own preview; a rendition not made yet is
    FAILED_PRECONDITION (the grid shows a placeholder until processing completes)."""
    if variant is Variant.ORIGINAL:
        return ContentRef(record.object_key, record.content_type, variant)
    key = record.thumbnail_key if variant is Variant.THUMBNAIL else record.preview_key
    if key:
        return ContentRef(key, "image/webp", variant)
    if (
        variant is Variant.PREVIEW
        and record.processing_state is ProcessingState.COMPLETED
        and record.content_type in WEB_DISPLAYABLE
    ):
        return ContentRef(record.object_key, record.content_type, Variant.ORIGINAL)
    raise FailedPrecondition(f"the {variant.value} of {record.name} is not ready yet", reason="RENDITION_NOT_READY")


def available_variants(record: AssetRecord) -> tuple[Variant, ...]:
    """Variants a signed URL can be handed out for right now."""
    ready = [Variant.ORIGINAL]
    for variant in (Variant.THUMBNAIL, Variant.PREVIEW):
        try:
            content_ref(record, variant)
            ready.append(variant)
        except FailedPrecondition:
            pass
    return tuple(ready)


def effective_filters(principal: Principal, filter_text: str) -> list[Expr]:
    """The caller's filter plus, for a restricted API key, its restriction (never widened)."""
    filters = [f for f in (parse_filter(filter_text), parse_filter(principal.restriction_filter)) if f is not None]
    if principal.restriction_collection:
        filters.append(parse_filter(f'collection_tree = "{principal.restriction_collection}"'))  # type: ignore[arg-type]
    return filters


def _change_scope(principal: Principal) -> ViewScope:
    """What a batch may change: the caller's own assets (admins: everyone's)."""
    return ViewScope(owner=None if principal.is_admin else principal.user, include_shared=False)


def _text(text: str, field_name: str, limit: int) -> str:
    cleaned = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()
    if len(cleaned) > limit:
        raise InvalidArgument(f"{field_name} is at most {limit} characters", reason="TEXT_TOO_LONG")
    return cleaned


class AssetService:
    def __init__(
        self,
        store: AssetStore,
        objects: ObjectStore,
        tag_links: AssetTagStore,
        memberships: MembershipStore,
        vocabulary: Vocabulary,
        collections: Collections,
        processing: ProcessingQueue,
        executor: BlockingExecutor,
        *,
        limits: UploadLimits,
        default_page_size: int,
        max_page_size: int,
        trash_retention: timedelta,
        recent: RecentOriginals | None = None,
    ) -> None:
        self._store = store
        self._recent = recent
        self._objects = objects
        self._tag_links = tag_links
        self._memberships = memberships
        self._vocabulary = vocabulary
        self._collections = collections
        self._processing = processing
        self._executor = executor
        self._limits = limits
        self._default_page_size = default_page_size
        self._max_page_size = max_page_size
        self._trash_retention = trash_retention

    # ------------------------------------------------------------------ uploads

    def receive(self, chunks: AsyncIterator[bytes]) -> Any:
        """Spool an upload (memory, then disk), hashing on the way; refuse it past the limit."""
        too_large = ResourceExhausted(
            f"a file may be at most {self._limits.max_bytes} bytes", reason="UPLOAD_TOO_LARGE"
        )
        return spooled(
            chunks,
            self._executor,
            memory_bytes=self._limits.spool_memory_bytes,
            max_bytes=self._limits.max_bytes,
            too_large=too_large,
        )

    async def upload(self, principal: Principal, request: UploadRequest, chunks: AsyncIterator[bytes]) -> AssetRecord:
        """One file; a duplicate is ALREADY_EXISTS naming the existing asset."""
        async with self.receive(chunks) as upload:
            ingested = await self.ingest(principal, request, upload)
        if ingested.outcome is Outcome.DUPLICATE:
            raise AlreadyExists(
                f"this image is already in your library as {ingested.asset.name}",
                reason="DUPLICATE_ASSET",
                metadata={"asset": ingested.asset.name},
            )
        return ingested.asset

    async def ingest(self, principal: Principal, request: UploadRequest, upload: Spooled) -> Ingested:
        """Check, claim, store and record one received file (see the module docstring)."""
        if upload.size == 0:
            raise InvalidArgument("the file is empty", reason="EMPTY_UPLOAD")
        if request.expected_sha256 and request.expected_sha256.lower() != upload.sha256:
            raise InvalidArgument(
                f"the file's sha256 {upload.sha256} differs from expected_sha256", reason="CHECKSUM_MISMATCH"
            )
        facts: ImageFacts = await self._executor.run(probe_image, upload.file, max_pixels=self._limits.max_pixels)
        # References are checked before anything is stored, so a bad tag or collection stores nothing.
        collection = await self._collections.get(principal, request.collection) if request.collection else None
        tags = await self._vocabulary.resolve(list(request.tags), create=True)
        existing = None
        if request.allow_duplicate:
            existing = (await self._store.find_by_sha256s(owner=principal.user, sha256s=[upload.sha256])).get(
                upload.sha256
            )
        record = self._new_record(principal, request, upload, facts, duplicate_of=existing.id if existing else None)
        taken = await self._claim(record)
        if taken is not None:
            return Ingested(Outcome.DUPLICATE, (await self.decorate([taken]))[0])
        await self._store_bytes(record, upload)
        activated = await self._store.update(asset_id=record.id, changes={"state": AssetState.ACTIVE})
        if activated is None:
            # The write outlasted stale_after and the janitor released the claim meanwhile: no
            # row references these bytes, so they go, and the uploader sends the file again.
            await self._objects.delete(key=record.object_key)
            raise Unavailable("the upload took too long to store; send it again", reason="UPLOAD_INTERRUPTED")
        if tags:
            await self._tag_links.add_manual(asset_ids=[record.id], tag_ids=[t.id for t in tags])
        if collection is not None:
            await self._collections.add_assets(principal, collection.name, [activated])
        if self._recent is not None:  # before queueing, so the job finds it
            await self._executor.run(self._recent.keep, key=record.object_key, data=upload.file, size=upload.size)
        await self._processing.schedule([record.id])
        return Ingested(Outcome.CREATED, (await self.decorate([activated]))[0])

    def _new_record(
        self,
        principal: Principal,
        request: UploadRequest,
        upload: Spooled,
        facts: ImageFacts,
        *,
        duplicate_of: uuid.UUID | None,
    ) -> AssetRecord:
        asset_id = uuid.uuid4()
        now = datetime.now(UTC)
        camera = facts.camera
        return AssetRecord(
            id=asset_id,
            owner=principal.user,
            filename=clean_filename(request.filename, facts.content_type),
            title=_text(request.title, "title", _MAX_TITLE),
            description=_text(request.description, "description", _MAX_DESCRIPTION),
            content_type=facts.content_type,
            size_bytes=upload.size,
            sha256=upload.sha256,
            width=facts.width,
            height=facts.height,
            state=AssetState.UPLOADING,
            object_key=f"originals/{asset_id}",
            create_time=now,
            update_time=now,
            duplicate_of=duplicate_of,
            capture_time=facts.capture_time,
            capture_time_zone_known=facts.capture_offset_known,
            orientation=facts.orientation,
            camera=Camera(
                make=camera.make,
                model=camera.model,
                lens_model=camera.lens_model,
                focal_length_mm=camera.focal_length_mm,
                f_number=camera.f_number,
                exposure_time_s=camera.exposure_time_s,
                iso=camera.iso,
            )
            if camera
            else Camera(),
            location=Location(facts.location.latitude, facts.location.longitude, facts.location.altitude_m)
            if facts.location
            else None,
            exif=facts.exif,
            processing_state=ProcessingState.PENDING,
            analysis_state=AnalysisState.SKIPPED if request.skip_analysis else AnalysisState.PENDING,
            caption_state=CaptionState.SKIPPED if request.skip_analysis else CaptionState.PENDING,
        )

    async def _claim(self, record: AssetRecord) -> AssetRecord | None:
        """Claim `record`'s bytes for its owner: None when the claim is ours, otherwise the asset
        that already holds them. Another claim still UPLOADING is not an asset yet, and naming it
        as the duplicate would lose this photo if that upload then failed. So a fresh claim (an
        identical upload in flight) is waited for, a stale one (its upload was cut off) is settled
        now by the janitor's rule, and a released claim is taken over."""
        deadline = time.monotonic() + self._limits.claim_wait.total_seconds()
        while True:
            taken = await self._store.claim(asset=record)
            if taken is None or taken.state is not AssetState.UPLOADING:
                return taken
            if taken.create_time <= datetime.now(UTC) - self._limits.stale_after:
                settled = await self.settle_claim(taken)
                if settled is not None and settled.state is not AssetState.UPLOADING:
                    return settled
                if settled is None:
                    continue  # released: the bytes are ours to store
            if time.monotonic() >= deadline:
                raise Unavailable(
                    "an earlier upload of this file has not finished yet; try again shortly",
                    reason="UPLOAD_IN_PROGRESS",
                    metadata={"asset": taken.name},
                )
            await asyncio.sleep(0.2)

    async def _store_bytes(self, record: AssetRecord, upload: Spooled) -> None:
        try:
            await self._objects.write(
                key=record.object_key, content_type=record.content_type, sha256=record.sha256, data=upload.file
            )
        except BaseException as failure:
            if await self._settle(record) is AssetState.ACTIVE:
                log.warning("the reply to %s's write was lost, but the bytes arrived: keeping it", record.name)
                return
            raise failure

    async def _settle(self, record: AssetRecord) -> AssetState | None:
        """Ask storage whether a claimed asset's bytes arrived: ACTIVE if they did, None (claim
        released) if they did not, UPLOADING (left for the janitor) if storage cannot say."""
        try:
            stored = await self._objects.stat_sha256(key=record.object_key)
        except ImgTagError as error:
            log.warning("cannot settle %s now (%s); the janitor will", record.name, error.message)
            return AssetState.UPLOADING
        if stored == record.sha256:
            return AssetState.ACTIVE
        await self._store.delete_rows(asset_ids=[record.id])
        return None

    async def settle_stale_uploads(self, *, older_than: timedelta, limit: int = 100) -> int:
        """The janitor: claims left by a crash or a lost reply become assets or go away."""
        settled = 0
        for record in await self._store.stale_uploads(older_than=datetime.now(UTC) - older_than, limit=limit):
            outcome = await self.settle_claim(record)
            settled += outcome is None or outcome.state is not AssetState.UPLOADING
        return settled

    async def settle_claim(self, record: AssetRecord) -> AssetRecord | None:
        """Settle one claim whose upload is known to have stopped (the janitor's rule, applied now,
        e.g. by a resumed import): the stored asset, None when the claim was released, or the claim
        itself, still UPLOADING, when storage cannot say yet."""
        state = await self._settle(record)
        if state is AssetState.ACTIVE:
            activated = await self._store.update(asset_id=record.id, changes={"state": AssetState.ACTIVE})
            await self._processing.schedule([record.id])
            return activated
        return record if state is AssetState.UPLOADING else None

    async def existing_sha256s(self, principal: Principal, sha256s: list[str]) -> dict[str, AssetRecord]:
        if len(sha256s) > MAX_SHA256_LOOKUP:
            raise InvalidArgument(f"at most {MAX_SHA256_LOOKUP} checksums at once", reason="TOO_MANY_ITEMS")
        wanted = [s.lower() for s in sha256s]
        if any(len(s) != 64 or any(c not in "0123456789abcdef" for c in s) for s in wanted):
            raise InvalidArgument("checksums are 64 lower-case hex characters", reason="INVALID_SHA256")
        return await self._store.find_by_sha256s(owner=principal.user, sha256s=wanted)

    # ------------------------------------------------------------------ reading

    async def get(self, principal: Principal, name: str) -> AssetRecord:
        record = require_visible(principal, await self._store.get(asset_id=parse_asset_name(name)), name)
        if record.state is AssetState.UPLOADING:
            raise NotFound(f"{name} does not exist", reason="ASSET_NOT_FOUND")
        await self.decorate([record])
        return record

    async def by_ids(self, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, AssetRecord]:
        """Assets a search already found within the caller's scope, ready to show."""
        found = await self._store.get_many(asset_ids=asset_ids)
        await self.decorate(list(found.values()))
        return found

    async def decorate(self, records: list[AssetRecord]) -> list[AssetRecord]:
        """Fill in what an asset shows besides its row: tags and direct collections."""
        ids = [r.id for r in records]
        tags = await self._tag_links.tags_of(asset_ids=ids)
        memberships = await self._memberships.collections_of(asset_ids=ids)
        for record in records:
            record.tags = tags.get(record.id, [])
            record.collection_ids = memberships.get(record.id, [])
        return records

    async def list_page(
        self,
        principal: Principal,
        *,
        page_size: int,
        page_token: str,
        show_deleted: bool,
        filter_text: str = "",
        order_by: str = "",
    ) -> AssetPage:
        order = " ".join(order_by.lower().split())
        if order not in _ORDERS:
            raise InvalidArgument(
                "order_by is one of: create_time desc, create_time, capture_time desc, capture_time",
                reason="INVALID_ORDER_BY",
            )
        sort, descending = _ORDERS[order]
        filters = effective_filters(principal, filter_text)
        limit = clamp_page_size(page_size, default=self._default_page_size, maximum=self._max_page_size)
        query = query_fingerprint(filter_text, order, show_deleted)
        rows = await self._store.list_page(
            scope=view_scope(principal),
            filters=filters,
            sort=sort,
            descending=descending,
            cursor=decode_cursor(page_token, query),
            limit=limit + 1,
            include_trashed=show_deleted,
        )
        page, more = rows[:limit], len(rows) > limit
        token = ""
        if more:
            last = page[-1]
            key = last.create_time if sort == "create_time" else (last.capture_time or last.create_time)
            token = encode_cursor(Cursor(key, last.id), query)
        # What the filter matches in all (for "select all N"); a short first page is its own count.
        total = (
            len(page)
            if not more and not page_token
            else await self._store.count(scope=view_scope(principal), filters=filters, include_trashed=show_deleted)
        )
        return AssetPage(assets=await self.decorate(page), next_page_token=token, total_size=total)

    async def random(self, principal: Principal, *, count: int, filter_text: str) -> list[AssetRecord]:
        if count < 0 or count > MAX_RANDOM:
            raise InvalidArgument(f"count is 1-{MAX_RANDOM}", reason="INVALID_COUNT")
        chosen = await self._store.random(
            scope=view_scope(principal), filters=effective_filters(principal, filter_text), count=count or 1
        )
        random.shuffle(chosen)
        return chosen

    async def processing_status(self, principal: Principal, filter_text: str) -> dict[str, dict[str, int]]:
        return await self._store.state_counts(
            scope=view_scope(principal), filters=effective_filters(principal, filter_text)
        )

    async def content(
        self, principal: Principal, name: str, variant: Variant
    ) -> tuple[AssetRecord, ContentRef, AsyncIterator[bytes]]:
        return self._content_of(await self.get(principal, name), variant)

    async def random_content(
        self, principal: Principal, *, filter_text: str, variant: Variant
    ) -> tuple[AssetRecord, ContentRef, AsyncIterator[bytes]]:
        """The bytes of one random ACTIVE asset the caller may see that matches the filter."""
        chosen = await self.random(principal, count=1, filter_text=filter_text)
        if not chosen:
            raise NotFound("no photo matches the filter", reason="NO_MATCHING_ASSET")
        return self._content_of(chosen[0], variant)

    async def content_by_id(
        self, asset_id: uuid.UUID, variant: Variant
    ) -> tuple[AssetRecord, ContentRef, AsyncIterator[bytes]]:
        """For a request whose signed URL already proved it may read this asset."""
        record = await self._store.get(asset_id=asset_id)
        if record is None or record.state is AssetState.UPLOADING:
            raise NotFound(f"assets/{asset_id} does not exist", reason="ASSET_NOT_FOUND")
        return self._content_of(record, variant)

    def _content_of(
        self, record: AssetRecord, variant: Variant
    ) -> tuple[AssetRecord, ContentRef, AsyncIterator[bytes]]:
        ref = content_ref(record, variant)
        return record, ref, self._objects.read(key=ref.key)

    # ------------------------------------------------------------------ changing one asset

    async def _changeable(self, principal: Principal, name: str) -> AssetRecord:
        record = require_changeable(principal, await self._store.get(asset_id=parse_asset_name(name)), name)
        if record.state is AssetState.UPLOADING:
            raise NotFound(f"{name} does not exist", reason="ASSET_NOT_FOUND")
        return record

    async def update(self, principal: Principal, name: str, changes: AssetChanges) -> AssetRecord:
        record = await self._changeable(principal, name)
        unknown = changes.fields - UPDATABLE
        if unknown or not changes.fields:
            raise InvalidArgument(
                "update_mask names what to change: " + ", ".join(sorted(UPDATABLE)), reason="INVALID_UPDATE_MASK"
            )
        values: dict[str, Any] = {}
        f = changes.fields
        if "filename" in f:
            if not changes.filename.strip():
                raise InvalidArgument("filename cannot be empty", reason="INVALID_FILENAME")
            values["filename"] = clean_filename(changes.filename, record.content_type)
        if "title" in f:
            values["title"] = _text(changes.title, "title", _MAX_TITLE)
        if "description" in f:
            values["description"] = _text(changes.description, "description", _MAX_DESCRIPTION)
        if "visibility" in f:
            values["visibility"] = changes.visibility
        if "capture_time" in f:
            values["capture_time"] = changes.capture_time
            values["capture_time_zone_known"] = changes.capture_time is not None
        if "favorite" in f:
            values["favorite"] = changes.favorite
        if "rating" in f:
            if not 0 <= changes.rating <= 5:
                raise InvalidArgument("rating is 0 (none) to 5", reason="INVALID_RATING")
            values["rating"] = changes.rating
        if "labels" in f:
            values["labels"] = _labels(changes.labels)
        if "location" in f:
            loc = changes.location
            if loc is not None and not (-90 <= loc.latitude <= 90 and -180 <= loc.longitude <= 180):
                raise InvalidArgument("latitude is -90..90 and longitude -180..180", reason="INVALID_LOCATION")
            values |= {
                "latitude": loc.latitude if loc else None,
                "longitude": loc.longitude if loc else None,
                "altitude_m": loc.altitude_m if loc else None,
            }
        values["update_time"] = datetime.now(UTC)
        updated = await self._store.update(asset_id=record.id, changes=values)
        return (await self.decorate([require_visible(principal, updated, name)]))[0]

    async def trash(self, principal: Principal, name: str) -> AssetRecord:
        record = await self._changeable(principal, name)
        await self._trash([record.id])
        return await self.get(principal, name)

    async def restore(self, principal: Principal, name: str) -> AssetRecord:
        record = await self._changeable(principal, name)
        if record.state is not AssetState.TRASHED:
            raise FailedPrecondition(f"{name} is not in the trash", reason="NOT_TRASHED")
        await self._restore([record.id])
        return await self.get(principal, name)

    async def purge(self, principal: Principal, name: str) -> None:
        record = await self._changeable(principal, name)
        if record.state is not AssetState.TRASHED:
            raise FailedPrecondition(f"{name} is not in the trash; trash it first", reason="NOT_TRASHED")
        await self._purge([record])

    async def _trash(self, ids: Sequence[uuid.UUID]) -> int:
        now = datetime.now(UTC)
        return await self._store.update_many(
            asset_ids=ids,
            changes={
                "state": AssetState.TRASHED,
                "update_time": now,
                "delete_time": now,
                "purge_time": now + self._trash_retention,
            },
            only_state=AssetState.ACTIVE,
        )

    async def _restore(self, ids: Sequence[uuid.UUID]) -> int:
        return await self._store.update_many(
            asset_ids=ids,
            changes={
                "state": AssetState.ACTIVE,
                "update_time": datetime.now(UTC),
                "delete_time": None,
                "purge_time": None,
            },
            only_state=AssetState.TRASHED,
        )

    async def _purge(self, records: Sequence[AssetRecord]) -> None:
        """Bytes first (original, renditions, every replica), then the row: a crash between
        leaves a trashed row whose purge is simply retried (deletes are idempotent)."""
        for record in records:
            for key in (record.object_key, record.thumbnail_key, record.preview_key):
                if key:
                    await self._objects.delete(key=key)
        await self._store.delete_rows(asset_ids=[r.id for r in records])

    async def purge_expired(self, *, limit: int = 200) -> int:
        due = await self._store.due_for_purge(now=datetime.now(UTC), limit=limit)
        await self._purge(due)
        return len(due)

    async def empty_trash(self, principal: Principal) -> BatchOutcome:
        scope = ViewScope(owner=principal.user, include_shared=False)
        trash = parse_filter("state = TRASHED")
        assert trash is not None
        ids = await self._store.ids_matching(scope=scope, filters=[trash], limit=MAX_BATCH_FILTER, include_trashed=True)
        records = list((await self._store.get_many(asset_ids=ids)).values())
        await self._purge(records)
        return BatchOutcome(succeeded=len(records))

    async def reanalyze(self, principal: Principal, name: str) -> AssetRecord:
        record = await self._changeable(principal, name)
        await self._requeue([record.id])
        return await self.get(principal, name)

    async def _requeue(self, ids: Sequence[uuid.UUID]) -> int:
        changed = await self._store.update_many(
            asset_ids=ids,
            changes={
                "processing_state": ProcessingState.PENDING,
                "processing_error": "",
                "analysis_state": AnalysisState.PENDING,
                "analysis_error": "",
                "caption_state": CaptionState.PENDING,
                "caption_error": "",
            },
        )
        await self._processing.schedule(ids)
        return changed

    # ------------------------------------------------------------------ tags on assets

    async def add_tags(self, principal: Principal, name: str, references: list[str]) -> AssetRecord:
        record = await self._changeable(principal, name)
        tags = await self._vocabulary.resolve(references, create=True)
        await self._tag_links.add_manual(asset_ids=[record.id], tag_ids=[t.id for t in tags])
        await self._processing.refresh_text([record.id])
        return await self.get(principal, name)

    async def remove_tags(self, principal: Principal, name: str, references: list[str]) -> AssetRecord:
        record = await self._changeable(principal, name)
        tags = await self._vocabulary.resolve(references, create=False)
        await self._tag_links.remove(asset_ids=[record.id], tag_ids=[t.id for t in tags])
        await self._processing.refresh_text([record.id])
        return await self.get(principal, name)

    async def review_tag(self, principal: Principal, name: str, tag: str, *, confirm: bool) -> AssetRecord:
        record = await self._changeable(principal, name)
        tag_record = await self._vocabulary.get(tag)
        if not await self._tag_links.review(asset_id=record.id, tag_id=tag_record.id, confirm=confirm):
            raise NotFound(f"{name} does not carry {tag}", reason="ASSET_TAG_NOT_FOUND")
        await self._processing.refresh_text([record.id])
        return await self.get(principal, name)

    # ------------------------------------------------------------------ batches

    async def select(
        self, principal: Principal, selection: Selection, *, trashed_ok: bool = True
    ) -> tuple[list[AssetRecord], list[tuple[str, Exception | None]]]:
        """The changeable assets of a selection, and per-name errors (names mode only)."""
        if selection.filter is not None:
            expr = parse_filter(selection.filter)
            filters = [expr] if expr is not None else []
            ids = await self._store.ids_matching(
                scope=_change_scope(principal), filters=filters, limit=MAX_BATCH_FILTER, include_trashed=trashed_ok
            )
            return list((await self._store.get_many(asset_ids=ids)).values()), []
        names = list(selection.names)
        if not names or len(names) > MAX_BATCH_NAMES:
            raise InvalidArgument(
                f"a selection names 1-{MAX_BATCH_NAMES} assets, or gives a filter", reason="INVALID_SELECTION"
            )
        results: list[tuple[str, Exception | None]] = []
        found: list[AssetRecord] = []
        parsed: dict[str, uuid.UUID] = {}
        for name in names:
            try:
                parsed[name] = parse_asset_name(name)
            except InvalidArgument as error:
                results.append((name, error))
        rows = await self._store.get_many(asset_ids=list(parsed.values()))
        for name in names:
            if name not in parsed:
                continue
            try:
                record = require_changeable(principal, rows.get(parsed[name]), name)
                if record.state is AssetState.UPLOADING:
                    raise NotFound(f"{name} does not exist", reason="ASSET_NOT_FOUND")
                found.append(record)
                results.append((name, None))
            except ImgTagError as error:
                results.append((name, error))
        # Results in request order, whatever order they were checked in.
        order = {n: i for i, n in enumerate(names)}
        results.sort(key=lambda r: order[r[0]])
        return found, results

    async def batch(self, principal: Principal, selection: Selection, operation: str, **arguments: Any) -> BatchOutcome:
        """Apply one operation to a selection; each asset succeeds or fails on its own."""
        records, results = await self.select(principal, selection)
        outcome = BatchOutcome(results=results)
        failures: dict[uuid.UUID, Exception] = {}
        if operation == "trash":
            await self._trash([r.id for r in records])
        elif operation == "restore":
            for r in records:
                if r.state is not AssetState.TRASHED:
                    failures[r.id] = FailedPrecondition(f"{r.name} is not in the trash", reason="NOT_TRASHED")
            await self._restore([r.id for r in records if r.id not in failures])
        elif operation == "purge":
            for r in records:
                if r.state is not AssetState.TRASHED:
                    failures[r.id] = FailedPrecondition(f"{r.name} is not in the trash", reason="NOT_TRASHED")
            await self._purge([r for r in records if r.id not in failures])
        elif operation == "add_tags":
            tags = await self._vocabulary.resolve(arguments["tags"], create=True)
            await self._tag_links.add_manual(asset_ids=[r.id for r in records], tag_ids=[t.id for t in tags])
        elif operation == "remove_tags":
            tags = await self._vocabulary.resolve(arguments["tags"], create=False)
            await self._tag_links.remove(asset_ids=[r.id for r in records], tag_ids=[t.id for t in tags])
        elif operation == "reanalyze":
            await self._requeue([r.id for r in records])
        elif operation == "add_to_collection":
            await self._collections.add_assets(principal, arguments["collection"], records)
        elif operation == "remove_from_collection":
            await self._collections.remove_assets(principal, arguments["collection"], records)
        else:
            raise ValueError(operation)
        if operation in ("add_tags", "remove_tags"):  # collections report their own changes
            await self._processing.refresh_text([r.id for r in records if r.id not in failures])
        if selection.filter is not None:
            outcome.succeeded, outcome.failed = len(records) - len(failures), len(failures)
            return outcome
        by_name = {r.name: failures[r.id] for r in records if r.id in failures}
        outcome.results = [(n, by_name.get(n, e)) for n, e in outcome.results]
        outcome.failed = sum(1 for _, e in outcome.results if e is not None)
        outcome.succeeded = len(outcome.results) - outcome.failed
        return outcome


def _labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > _MAX_LABELS:
        raise InvalidArgument(f"at most {_MAX_LABELS} labels", reason="INVALID_LABELS")
    for key, value in labels.items():
        if not re.fullmatch(r"[a-z0-9_-]{1,63}", key) or len(value) > 256:
            raise InvalidArgument(
                "label keys are 1-63 of [a-z0-9_-]; values at most 256 characters", reason="INVALID_LABELS"
            )
    return dict(labels)
