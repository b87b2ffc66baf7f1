"""Imports: a ZIP archive streamed in and stored once, or a list of URLs (admins), imported entry
by entry by a job on the durable queue, with a report line per entry.

Submitting: the archive is spooled (memory, then disk) and refused as a whole before anything is
stored when it is not a ZIP or is too big (see `archives`). Then a RECEIVING job row is written,
the archive goes to storage under `imports/<job id>.zip` (so a worker on any replica can read
it), the job becomes PENDING and is queued. A submission that dies halfway leaves a RECEIVING
row that the sweep removes with its archive; RECEIVING jobs are never shown.

Running: each entry is begun (a row that counts attempts), then its bytes flow through
`AssetService.receive` and `ingest` exactly like an upload, then its outcome is recorded
together with the job's counters in one transaction. So after a kill -9 the job, picked up
again by the queue, skips finished entries and redoes the one it was in: a claim the dead
attempt left half-written is settled on the spot, and the catalog's one-asset-per-owner-and-
checksum rule makes that entry find the asset the dead attempt created (reported CREATED, as it
was made after the entry began). A failure that is not the entry's fault (storage or
database unavailable) ends the attempt, and the queue retries the job later from where it
stopped; an entry begun `MAX_ENTRY_ATTEMPTS` times without finishing is refused, so one
poisonous entry cannot stall a job. CancelImportJob stops the job between entries. The
archive is deleted when the job ends (and by the sweep, if that was interrupted).

URL imports run the same way, each URL an entry fetched when its turn comes (see
domain/url_sources.py for which URLs may be fetched): nothing is stored up front, so a URL that
fails is that entry's error and the rest of the list is imported."""

from __future__ import annotations

import logging
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from imgtag_catalog.domain.archives import (
    ArchiveLimits,
    display_name,
    entry_refusal,
    file_entries,
    open_archive,
    read_entry,
    starts_like_zip,
)
from imgtag_catalog.domain.assets import AssetService, ObjectStore, Outcome, UploadRequest
from imgtag_catalog.domain.collections import Collections
from imgtag_catalog.domain.images import clean_filename
from imgtag_catalog.domain.models import AssetRecord, AssetState
from imgtag_catalog.domain.tags import Vocabulary
from imgtag_catalog.domain.url_sources import FetchedImage, check_urls
from imgtag_common.auth import Principal, current_principal
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    ImgTagError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from imgtag_common.filtering import Expr, parse_filter
from imgtag_common.jobs import Job, JobQueue, Retry
from imgtag_common.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor, query_fingerprint
from imgtag_common.resources import parse_resource_id
from imgtag_common.streams import spooled

log = logging.getLogger(__name__)

IMPORT = "catalog.import"
# The report keeps this many entries (the counts cover all) and this many failures for display.
MAX_REPORTED_ITEMS = 10_000
MAX_REPORTED_ERRORS = 100
# An entry begun this many times without finishing (it crashed or failed the job each time) is refused.
MAX_ENTRY_ATTEMPTS = 3
# Failures that are the entry's own: reported on the entry, the import goes on.
_ENTRY_FAULTS = (InvalidArgument, ResourceExhausted, FailedPrecondition, NotFound, AlreadyExists, PermissionDenied)


class ImportState(StrEnum):
    RECEIVING = "receiving"  # the archive is being stored; never shown
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({ImportState.SUCCEEDED, ImportState.FAILED, ImportState.CANCELLED})
ACTIVE = frozenset({ImportState.PENDING, ImportState.RUNNING})


class ItemOutcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ImportItemRecord:
    """One entry of a job: begun (outcome None) or finished."""

    index: int  # position in the archive's central directory
    source_item: str
    outcome: ItemOutcome | None = None
    asset_id: uuid.UUID | None = None
    error_code: int = 0  # gRPC code of the refusal
    error_reason: str = ""
    error_message: str = ""
    attempts: int = 0
    start_time: datetime | None = None

    @staticmethod
    def rejected(index: int, source_item: str, error: ImgTagError) -> ImportItemRecord:
        return ImportItemRecord(
            index=index,
            source_item=source_item,
            outcome=ItemOutcome.REJECTED,
            error_code=error.code.value[0],
            error_reason=error.reason,
            error_message=error.message[:1000],
        )


@dataclass
class ImportJobRecord:
    id: uuid.UUID
    creator: str  # "users/{uuid}"
    state: ImportState
    source: dict[str, Any]  # {"zip": {"filename": ..., "size_bytes": ...}} or {"urls": {"urls": [...]}}
    options: dict[str, Any]  # collection, tags ("tags/{id}"), skip_analysis, allow_duplicates, principal
    create_time: datetime
    archive_key: str = ""
    total_count: int = 0
    processed_count: int = 0
    imported_count: int = 0
    skipped_count: int = 0
    failed_count: int = 0
    error: str = ""
    error_reason: str = ""
    error_code: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    # Filled by ImportService.get: the finished entries in archive order.
    items: list[ImportItemRecord] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"importJobs/{self.id}"


@dataclass(frozen=True)
class ImportOptions:
    """What the caller asks for every entry (`filename`: the ZIP archive's name)."""

    filename: str = ""
    collection: str = ""
    tags: tuple[str, ...] = ()
    skip_analysis: bool = False
    allow_duplicates: bool = False


@dataclass(frozen=True)
class ImportLimits:
    archive: ArchiveLimits
    max_archive_bytes: int
    spool_memory_bytes: int
    chunk_bytes: int


@dataclass(frozen=True)
class ImportJobPage:
    jobs: list[ImportJobRecord]
    next_page_token: str


class ImportJobStore(Protocol):
    """The import tables (`db.imports_repository.ImportJobRepository`)."""

    async def insert(self, *, job: ImportJobRecord) -> None: ...
    async def get(self, *, job_id: uuid.UUID) -> ImportJobRecord | None: ...
    async def delete(self, *, job_id: uuid.UUID) -> None: ...
    async def transition(
        self, *, job_id: uuid.UUID, to: ImportState, only_from: frozenset[ImportState], changes: dict[str, Any]
    ) -> ImportJobRecord | None: ...
    async def clear_archive(self, *, job_id: uuid.UUID) -> None: ...
    async def list_page(
        self, *, creator: str | None, filters: Sequence[Expr], cursor: Cursor | None, limit: int
    ) -> list[ImportJobRecord]: ...
    async def items(self, *, job_id: uuid.UUID, limit: int) -> list[ImportItemRecord]: ...
    async def item_progress(self, *, job_id: uuid.UUID) -> dict[int, ImportItemRecord]: ...
    async def begin_item(self, *, job_id: uuid.UUID, index: int, source_item: str) -> ImportItemRecord: ...
    async def note_item_failure(self, *, job_id: uuid.UUID, index: int, message: str, counts: bool) -> None: ...
    async def finish_item(self, *, job_id: uuid.UUID, item: ImportItemRecord) -> bool: ...
    async def in_states(
        self, *, states: frozenset[ImportState], older_than: datetime, limit: int
    ) -> list[ImportJobRecord]: ...
    async def ended_with_archive(self, *, limit: int) -> list[ImportJobRecord]: ...


class UrlOpener(Protocol):
    """Fetches one URL of an import (adapters/url_fetch.py); refusals are ImgTagErrors."""

    def open(self, url: str) -> AbstractAsyncContextManager[FetchedImage]: ...


# An entry's content once opened: the file name it had and its bytes.
EntryContent = Callable[[], AbstractAsyncContextManager[tuple[str, AsyncIterator[bytes]]]]


def parse_import_job_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "importJobs")


class ImportService:
    def __init__(
        self,
        queue: JobQueue,
        store: ImportJobStore,
        objects: ObjectStore,
        assets: AssetService,
        collections: Collections,
        vocabulary: Vocabulary,
        executor: BlockingExecutor,
        *,
        limits: ImportLimits,
        concurrency: int,
        retry: Retry,
        urls: UrlOpener,
    ) -> None:
        self._queue = queue
        self._store = store
        self._objects = objects
        self._assets = assets
        self._collections = collections
        self._vocabulary = vocabulary
        self._executor = executor
        self._limits = limits
        self._urls = urls
        queue.consumer(IMPORT, concurrency=concurrency, retry=retry, on_failure=self._failed)(self._run)

    # ------------------------------------------------------------------ submitting

    async def submit_zip(
        self, principal: Principal, options: ImportOptions, chunks: AsyncIterator[bytes]
    ) -> ImportJobRecord:
        """Receive, check and store an archive; queue its import (see the module docstring)."""
        too_large = ResourceExhausted(
            f"an archive may be at most {self._limits.max_archive_bytes} bytes", reason="ARCHIVE_TOO_LARGE"
        )
        async with spooled(
            _zip_or_refuse(chunks),
            self._executor,
            memory_bytes=self._limits.spool_memory_bytes,
            max_bytes=self._limits.max_archive_bytes,
            too_large=too_large,
        ) as archive:
            if archive.size == 0:
                raise InvalidArgument("the archive is empty", reason="EMPTY_UPLOAD")
            zip_file = await self._executor.run(open_archive, archive.file, self._limits.archive)
            total = len(file_entries(zip_file))
            zip_file.close()
            entry_options = await self._entry_options(principal, options)
            job_id = uuid.uuid4()
            job = ImportJobRecord(
                id=job_id,
                creator=principal.user,
                state=ImportState.RECEIVING,
                source={
                    "zip": {"filename": clean_filename(options.filename, "application/zip"), "size_bytes": archive.size}
                },
                options=entry_options,
                create_time=datetime.now(UTC),
                archive_key=f"imports/{job_id}.zip",
                total_count=total,
            )
            await self._store.insert(job=job)
            try:
                # A temporary copy: replicas are not worth making.
                await self._objects.write(
                    key=job.archive_key,
                    content_type="application/zip",
                    sha256=archive.sha256,
                    data=archive.file,
                    replicate=False,
                )
            except BaseException:
                await self._discard(job)
                raise
        pending = await self._store.transition(
            job_id=job_id, to=ImportState.PENDING, only_from=frozenset({ImportState.RECEIVING}), changes={}
        )
        assert pending is not None
        await self._enqueue(job_id)
        return pending

    async def submit_urls(self, principal: Principal, options: ImportOptions, urls: Sequence[str]) -> ImportJobRecord:
        """Queue the import of `urls` (admins: the server fetches them). Each URL is checked and
        fetched when its turn comes, so one bad URL is one refused entry."""
        check_urls(urls)
        job = ImportJobRecord(
            id=uuid.uuid4(),
            creator=principal.user,
            state=ImportState.PENDING,
            source={"urls": {"urls": [url.strip() for url in urls]}},
            options=await self._entry_options(principal, options),
            create_time=datetime.now(UTC),
            total_count=len(urls),
        )
        await self._store.insert(job=job)
        await self._enqueue(job.id)
        return job

    async def _entry_options(self, principal: Principal, options: ImportOptions) -> dict[str, Any]:
        """What every entry is imported with; references are checked now, so a bad tag or
        collection refuses the whole import before anything is stored."""
        collection = await self._collections.get(principal, options.collection) if options.collection else None
        tags = await self._vocabulary.resolve(list(options.tags), create=True)
        return {
            "collection": collection.name if collection else "",
            "tags": [t.name for t in tags],
            "skip_analysis": options.skip_analysis,
            "allow_duplicates": options.allow_duplicates,
            # Whom the worker imports as (it runs without a request).
            "principal": principal.to_claims(),
        }

    async def _discard(self, job: ImportJobRecord) -> None:
        """A submission that failed: its archive and row go (the sweep retries what fails here)."""
        try:
            await self._objects.delete(key=job.archive_key)
            await self._store.delete(job_id=job.id)
        except Exception:
            log.warning("could not discard the failed import %s now; the sweep will", job.name, exc_info=True)

    async def _enqueue(self, job_id: uuid.UUID) -> None:
        await self._queue.enqueue(IMPORT, {"job": str(job_id)}, dedupe_key=f"{IMPORT}:{job_id}")

    # ------------------------------------------------------------------ reading and cancelling

    async def _visible(self, principal: Principal, name: str) -> ImportJobRecord:
        """The job, for its creator or an admin; NOT_FOUND for anyone else (ids reveal nothing)."""
        job = await self._store.get(job_id=parse_import_job_name(name))
        if (
            job is None
            or job.state is ImportState.RECEIVING
            or not (principal.is_admin or job.creator == principal.user)
        ):
            raise NotFound(f"{name} does not exist", reason="IMPORT_JOB_NOT_FOUND")
        return job

    async def get(self, principal: Principal, name: str) -> ImportJobRecord:
        job = await self._visible(principal, name)
        job.items = await self._store.items(job_id=job.id, limit=MAX_REPORTED_ITEMS)
        return job

    async def list_page(
        self, principal: Principal, *, page_size: int, page_token: str, filter_text: str
    ) -> ImportJobPage:
        limit = clamp_page_size(page_size, default=20, maximum=100)
        query = query_fingerprint(filter_text)
        expr = parse_filter(filter_text)
        rows = await self._store.list_page(
            creator=None if principal.is_admin else principal.user,
            filters=[expr] if expr is not None else [],
            cursor=decode_cursor(page_token, query),
            limit=limit + 1,
        )
        page = rows[:limit]
        token = encode_cursor(Cursor(page[-1].create_time, page[-1].id), query) if len(rows) > limit else ""
        return ImportJobPage(jobs=page, next_page_token=token)

    async def cancel(self, principal: Principal, name: str) -> ImportJobRecord:
        """PENDING or RUNNING becomes CANCELLED; the worker stops before its next entry. A finished
        job comes back unchanged."""
        job = await self._visible(principal, name)
        cancelled = await self._store.transition(
            job_id=job.id, to=ImportState.CANCELLED, only_from=ACTIVE, changes={"end_time": datetime.now(UTC)}
        )
        if cancelled is not None:
            # Whoever runs it next (or now) sees CANCELLED and deletes the archive.
            await self._enqueue(job.id)
        return await self.get(principal, name)

    # ------------------------------------------------------------------ running

    async def _run(self, queued: Job) -> None:
        job = await self._store.get(job_id=uuid.UUID(queued.payload["job"]))
        if job is None or job.state is ImportState.RECEIVING:
            return  # discarded, or still being submitted (queued again once stored)
        if job.state in FINAL:
            await self._drop_archive(job)
            return
        running = await self._store.transition(
            job_id=job.id,
            to=ImportState.RUNNING,
            only_from=ACTIVE,
            changes={"start_time": job.start_time or datetime.now(UTC)},
        )
        if running is None:  # cancelled meanwhile
            await self._drop_archive(job)
            return
        principal = Principal.from_claims(job.options["principal"], service="")
        token = current_principal.set(principal)  # storage sees whom the work is for
        try:
            stopped = await self._import_entries(running, principal)
        finally:
            current_principal.reset(token)
        if not stopped:
            await self._store.transition(
                job_id=job.id,
                to=ImportState.SUCCEEDED,
                only_from=frozenset({ImportState.RUNNING}),
                changes={"end_time": datetime.now(UTC)},
            )
        await self._drop_archive(job)

    async def _import_entries(self, job: ImportJobRecord, principal: Principal) -> bool:
        """Import every entry not finished yet; True when the job was cancelled meanwhile or
        failed for good."""
        progress = await self._store.item_progress(job_id=job.id)
        if sum(1 for i in progress.values() if i.outcome is not None) >= job.total_count:
            return False
        if "urls" in job.source:
            return await self._import_urls(job, principal, progress)
        return await self._import_archive(job, principal, progress)

    async def _import_urls(
        self, job: ImportJobRecord, principal: Principal, progress: dict[int, ImportItemRecord]
    ) -> bool:
        for index, url in enumerate(job.source["urls"]["urls"]):
            begun = progress.get(index)
            if begun is not None and begun.outcome is not None:
                continue
            if not await self._still_running(job):
                return True

            # A URL refused by its checks (bad syntax, an address not allowed) or by its server is
            # that entry's error, recorded by _import_entry like any other.
            @asynccontextmanager
            async def fetched(url: str = url) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
                async with self._urls.open(url) as image:
                    yield image.filename, image.chunks

            await self._import_entry(job, principal, index, url, fetched)
        return False

    async def _import_archive(
        self, job: ImportJobRecord, principal: Principal, progress: dict[int, ImportItemRecord]
    ) -> bool:
        with tempfile.TemporaryFile() as local:
            try:
                if not job.archive_key:
                    raise NotFound("the archive was deleted")
                async for chunk in self._objects.read(key=job.archive_key):
                    await self._executor.run(local.write, chunk)
                archive = await self._executor.run(open_archive, local, self._limits.archive)
            except (NotFound, InvalidArgument) as error:
                # Gone or unreadable: no retry can bring it back.
                missing = FailedPrecondition(
                    f"the archive of this import can no longer be read ({error.message})", reason="ARCHIVE_MISSING"
                )
                await self._fail(job.id, missing)
                return True
            try:
                for index, info in file_entries(archive):
                    begun = progress.get(index)
                    if begun is not None and begun.outcome is not None:
                        continue
                    if not await self._still_running(job):
                        return True
                    source = display_name(info)
                    refusal = entry_refusal(info, self._limits.archive)
                    if refusal is not None:
                        rejected = ImportItemRecord.rejected(index, source, refusal)
                        await self._store.finish_item(job_id=job.id, item=rejected)
                        continue

                    @asynccontextmanager
                    async def entry(info: zipfile.ZipInfo = info) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
                        yield info.filename, self._entry_chunks(archive, info)

                    await self._import_entry(job, principal, index, source, entry)
            finally:
                archive.close()
        return False

    async def _still_running(self, job: ImportJobRecord) -> bool:
        """False once the job was cancelled (or ended) by someone else: checked between entries."""
        current = await self._store.get(job_id=job.id)
        return current is not None and current.state is ImportState.RUNNING

    async def _import_entry(
        self, job: ImportJobRecord, principal: Principal, index: int, source: str, content: EntryContent
    ) -> None:
        begun = await self._store.begin_item(job_id=job.id, index=index, source_item=source)
        if begun.attempts > MAX_ENTRY_ATTEMPTS:
            stuck = InvalidArgument(
                f"the import stopped on this entry {MAX_ENTRY_ATTEMPTS} times"
                + (f" (last error: {begun.error_message})" if begun.error_message else ""),
                reason="ENTRY_FAILED",
            )
            await self._store.finish_item(job_id=job.id, item=ImportItemRecord.rejected(index, source, stuck))
            return
        resumed = begun.attempts > 1
        options = job.options
        try:
            async with content() as (filename, chunks), self._assets.receive(chunks) as upload:
                request = UploadRequest(
                    filename=filename,
                    skip_analysis=bool(options.get("skip_analysis")),
                    collection=options.get("collection", ""),
                    tags=tuple(options.get("tags", ())),
                    # A resumed entry may already have made its copy: the per-owner checksum rule finds it.
                    allow_duplicate=bool(options.get("allow_duplicates")) and not resumed,
                )
                if resumed:
                    await self._settle_own_claim(principal, begun, upload.sha256)
                ingested = await self._assets.ingest(principal, request, upload)
                outcome, asset = ingested.outcome, ingested.asset
                if resumed and outcome is Outcome.DUPLICATE:
                    outcome, asset = await self._resume(principal, request, begun, asset)
        except _ENTRY_FAULTS as refused:
            await self._store.finish_item(job_id=job.id, item=ImportItemRecord.rejected(index, source, refused))
            return
        except Exception as error:
            # Not the entry's fault (or a bug): this attempt of the job ends and is retried later.
            # Waiting for a service that is down does not count against the entry.
            message = error.message if isinstance(error, ImgTagError) else f"{type(error).__name__}: {error}"
            await self._store.note_item_failure(
                job_id=job.id, index=index, message=message[:500], counts=not isinstance(error, Unavailable)
            )
            raise
        await self._store.finish_item(
            job_id=job.id,
            item=ImportItemRecord(
                index=index,
                source_item=source,
                outcome=ItemOutcome.CREATED if outcome is Outcome.CREATED else ItemOutcome.DUPLICATE,
                asset_id=asset.id,
            ),
        )

    async def _settle_own_claim(self, principal: Principal, begun: ImportItemRecord, sha256: str) -> None:
        """A claim on these bytes made after the entry began was made by an earlier attempt of this
        entry, which is dead (the queue hands a job to one worker at a time): settle it now, so the
        import neither waits for it as for an upload in flight nor leaves it to the janitor."""
        assert begun.start_time is not None
        claim = (await self._assets.existing_sha256s(principal, [sha256])).get(sha256)
        if claim is None or claim.state is not AssetState.UPLOADING or claim.create_time < begun.start_time:
            return
        settled = await self._assets.settle_claim(claim)
        if settled is not None and settled.state is AssetState.UPLOADING:
            raise Unavailable(f"cannot tell yet whether {claim.name} was stored", reason="CLAIM_UNSETTLED")

    async def _resume(
        self, principal: Principal, request: UploadRequest, begun: ImportItemRecord, asset: AssetRecord
    ) -> tuple[Outcome, AssetRecord]:
        """A resumed entry found an asset with its bytes. If an earlier attempt of this entry made
        it (after the entry began), it is this entry's CREATED asset, and the options that attempt
        may not have applied yet are applied now (idempotent)."""
        assert begun.start_time is not None
        if asset.create_time < begun.start_time:
            return Outcome.DUPLICATE, asset
        if request.tags:
            await self._assets.add_tags(principal, asset.name, list(request.tags))
        if request.collection:
            await self._collections.add_assets(principal, request.collection, [asset])
        return Outcome.CREATED, asset

    async def _entry_chunks(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> AsyncIterator[bytes]:
        reader = read_entry(archive, info, chunk_bytes=self._limits.chunk_bytes)
        try:
            while (chunk := await self._executor.run(next, reader, None)) is not None:
                yield chunk
        finally:
            reader.close()

    async def _failed(self, queued: Job, error: BaseException, retry_in: timedelta | None) -> None:
        """After the last attempt the job is FAILED with the error; earlier ones are just retried."""
        if retry_in is not None:
            return
        failure = error if isinstance(error, ImgTagError) else Unavailable(f"{type(error).__name__}: {error}")
        await self._fail(uuid.UUID(queued.payload["job"]), failure)

    async def _fail(self, job_id: uuid.UUID, failure: ImgTagError) -> None:
        failed = await self._store.transition(
            job_id=job_id,
            to=ImportState.FAILED,
            only_from=ACTIVE,
            changes={
                "end_time": datetime.now(UTC),
                "error": f"the import stopped: {failure.message}"[:1000],
                "error_reason": failure.reason,
                "error_code": failure.code.value[0],
            },
        )
        if failed is not None:
            await self._drop_archive(failed)

    async def _drop_archive(self, job: ImportJobRecord) -> None:
        if job.archive_key:
            await self._objects.delete(key=job.archive_key)
            await self._store.clear_archive(job_id=job.id)

    # ------------------------------------------------------------------ catching up

    async def sweep(self, *, older_than: timedelta = timedelta(minutes=2), limit: int = 100) -> int:
        """Queue PENDING and RUNNING jobs whose queue entry went missing (the queue ignores those it
        has), delete the archives of ended jobs, and remove submissions that died halfway."""
        cutoff = datetime.now(UTC) - older_than
        unfinished = await self._store.in_states(states=ACTIVE, older_than=cutoff, limit=limit)
        for job in unfinished:
            await self._enqueue(job.id)
        ended = await self._store.ended_with_archive(limit=limit)
        for job in ended:
            await self._drop_archive(job)
        # A submission that died halfway: the submitter's reply was lost with it, so nobody knows the job.
        abandoned = await self._store.in_states(
            states=frozenset({ImportState.RECEIVING}), older_than=datetime.now(UTC) - timedelta(hours=1), limit=limit
        )
        for job in abandoned:
            await self._discard(job)
        return len(unfinished) + len(ended) + len(abandoned)


async def _zip_or_refuse(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, refused as soon as the first bytes show it is not a ZIP (nothing more is read)."""
    head = b""
    async for chunk in chunks:
        if len(head) < 4:
            head += chunk[:4]
            if len(head) >= 4 and not starts_like_zip(head):
                raise InvalidArgument(
                    "the upload is not a ZIP archive (it does not start with a ZIP header)", reason="NOT_A_ZIP"
                )
        yield chunk
    if 0 < len(head) < 4:
        raise InvalidArgument("the upload is not a ZIP archive (too short)", reason="NOT_A_ZIP")
