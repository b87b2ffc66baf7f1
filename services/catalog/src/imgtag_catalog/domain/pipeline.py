"""The processing pipeline every asset goes through after upload, on the durable job queue.

1. `catalog.process`: read the original once (the copy its upload left on this machine when
   there is one, else from storage), make the WebP thumbnail and preview (orientation applied)
   and the perceptual hash, store the renditions, mark the asset PROCESSING_COMPLETED. Failures
   retry with backoff; after the last attempt the asset is PROCESSING_FAILED with the reason,
   unless storage was UNAVAILABLE throughout: then it waits PENDING for the sweeper. Rendition
   keys carry a hash of their bytes, so a retry after a crash writes the same keys again
   (idempotent) and an old rendition is deleted only after the new one is recorded.
2. `catalog.analyze`: ask the inference service for tags, caption, recognized text and image
   embeddings; record the tags as AI suggestions, the embeddings per space, then the asset's
   text embedding (its words) and its near-duplicate links. When inference is not there
   (UNAVAILABLE) or cannot do it yet (UNIMPLEMENTED), the asset simply stays PENDING: that is
   backpressure, not a failure, and the sweeper queues it again once inference answers.
3. `catalog.describe`: after a successful analysis, ask the active vision-language provider
   (the inference service's DescribeImage) for a caption and tags, a stage of its own because a
   provider takes seconds per image and may be a paid, rate-limited API: it has its own
   concurrency (deployment-wide), and its failures touch nothing the analysis recorded. The
   caption and the provider's tags (AI suggestions, reviewed like the others) are recorded, then
   the text embedding made again. No provider active: CAPTION_SKIPPED. The provider refused or
   gave unusable output (after the inference service's own retries): CAPTION_FAILED with its
   words, at once. The provider unreachable through those retries: the job is retried with
   backoff, then CAPTION_FAILED. The inference service itself away: PENDING, like analyses.
4. `catalog.embed_text`: refresh an asset's text embedding after its tags changed.

A kill -9 of any process at any point loses nothing: jobs are rows in PostgreSQL, a job whose
worker died is picked up again, and `sweep` re-queues assets whose job was never written (a crash
between recording an upload and queueing it)."""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from imgtag_catalog.domain.assets import RecentOriginals
from imgtag_catalog.domain.duplicates import Duplicates
from imgtag_catalog.domain.models import (
    AnalysisState,
    AssetRecord,
    AssetState,
    AssetTag,
    CaptionState,
    ProcessingState,
)
from imgtag_catalog.domain.renditions import Renditions, make_renditions
from imgtag_catalog.domain.search import Embedder, Vector
from imgtag_catalog.domain.tags import NewTag, Vocabulary
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    ImgTagError,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unimplemented,
)
from imgtag_common.jobs import Job, JobQueue, Retry

log = logging.getLogger(__name__)

PROCESS = "catalog.process"
ANALYZE = "catalog.analyze"
EMBED_TEXT = "catalog.embed_text"
DESCRIBE = "catalog.describe"
# AI suggestions of vision-language providers carry "visionProviders/{id}" as their model; each
# stage replaces only its own suggestions.
VISION_MODEL_PREFIX = "visionProviders/"
# A provider unreachable through the inference service's own retries is asked again this way.
DESCRIBE_RETRY = Retry(max_attempts=4, initial_delay_s=60, max_delay_s=900)
# What "the inference service cannot do this now" looks like: wait, do not fail.
_WAIT = (Unavailable, Unimplemented)
# How long analyses wait after such an answer before they are queued again (doubling).
_FIRST_HOLD = timedelta(seconds=30)
_LONGEST_HOLD = timedelta(minutes=10)


@dataclass(frozen=True)
class PredictedTag:
    label: str  # canonical English name
    display_names: dict[str, str]
    category: str
    confidence: float
    model: str


@dataclass(frozen=True)
class Analysis:
    tags: list[PredictedTag]
    caption: str = ""
    recognized_text: str = ""
    image_vectors: list[Vector] = field(default_factory=list)


@dataclass(frozen=True)
class Description:
    """What the vision-language provider said about an image."""

    caption: str
    tags: list[PredictedTag]
    provider: str  # "visionProviders/{id}"


class Describer(Protocol):
    """The inference service's DescribeImage. Raises FailedPrecondition (reason
    VISION_PROVIDER_NOT_CONFIGURED, VISION_PROVIDER_REFUSED or VISION_OUTPUT_INVALID),
    Unavailable (VISION_PROVIDER_UNAVAILABLE after its retries, or inference itself away)."""

    async def describe(self, asset: AssetRecord, image: bytes) -> Description: ...


class Analyzer(Protocol):
    """The inference service as the pipeline needs it."""

    async def analyze(self, asset: AssetRecord, image: bytes) -> Analysis: ...
    async def ready(self) -> bool: ...


class PipelineStore(Protocol):
    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None: ...
    async def update(self, *, asset_id: uuid.UUID, changes: dict) -> AssetRecord | None: ...
    async def ids_waiting(
        self,
        *,
        processing: Sequence[ProcessingState],
        analysis: Sequence[AnalysisState],
        older_than: datetime,
        limit: int,
        caption: Sequence[CaptionState] = (),
    ) -> list[uuid.UUID]: ...


class SuggestionStore(Protocol):
    async def replace_suggestions(
        self, *, asset_id: uuid.UUID, suggestions: list[tuple[uuid.UUID, float, str]], vision: bool = False
    ) -> None: ...
    async def tags_of(
        self, *, asset_ids: list[uuid.UUID], include_rejected: bool = False
    ) -> dict[uuid.UUID, list[AssetTag]]: ...


class VectorStore(Protocol):
    async def put_vectors(
        self, *, asset_id: uuid.UUID, vectors: Sequence[tuple[str, str, str, Sequence[float]]]
    ) -> None: ...


def asset_text(asset: AssetRecord, tags: list[AssetTag]) -> str:
    """What an asset's text embedding is made of: its tags in every language, caption, recognized
    text, title and description."""
    names: list[str] = []
    for link in tags:
        for name in (link.tag.display_name, *link.tag.display_names.values(), *link.tag.aliases):
            if name not in names:
                names.append(name)
    parts = [", ".join(names), asset.caption, asset.recognized_text, asset.title, asset.description]
    return ". ".join(p.strip() for p in parts if p and p.strip())[:4000]


class Objects(Protocol):
    def read(self, *, key: str): ...
    async def write(self, *, key: str, content_type: str, sha256: str, data, replicate: bool = True) -> None: ...
    async def delete(self, *, key: str) -> None: ...


@dataclass(frozen=True)
class RenditionSizes:
    thumbnail_px: int
    preview_px: int
    max_pixels: int


class Pipeline:
    def __init__(
        self,
        queue: JobQueue,
        store: PipelineStore,
        suggestions: SuggestionStore,
        objects: Objects,
        vocabulary: Vocabulary,
        analyzer: Analyzer,
        embedder: Embedder,
        vectors: VectorStore,
        duplicates: Duplicates,
        executor: BlockingExecutor,
        *,
        sizes: RenditionSizes,
        process_concurrency: int,
        analyze_concurrency: int,
        retry: Retry,
        recent: RecentOriginals | None = None,
        describer: Describer | None = None,
        describe_concurrency: int = 4,
        describe_retry: Retry = DESCRIBE_RETRY,
    ) -> None:
        self._queue = queue
        self._recent = recent
        self._store = store
        self._suggestions = suggestions
        self._objects = objects
        self._vocabulary = vocabulary
        self._analyzer = analyzer
        self._embedder = embedder
        self._vectors = vectors
        self._duplicates = duplicates
        self._executor = executor
        self._sizes = sizes
        # After inference said "not now", analyses are not queued again until this time.
        self._hold_until = datetime.min.replace(tzinfo=UTC)
        self._hold = _FIRST_HOLD
        self._describer = describer
        self._describe_hold_until = datetime.min.replace(tzinfo=UTC)
        self._describe_hold = _FIRST_HOLD
        queue.consumer(PROCESS, concurrency=process_concurrency, retry=retry, on_failure=self._process_failed)(
            self._process
        )
        queue.consumer(ANALYZE, concurrency=analyze_concurrency, retry=retry, on_failure=self._analyze_failed)(
            self._analyze
        )
        queue.consumer(EMBED_TEXT, concurrency=analyze_concurrency, retry=retry)(self._embed_text)
        if describer is not None:
            queue.consumer(
                DESCRIBE, concurrency=describe_concurrency, retry=describe_retry, on_failure=self._describe_failed
            )(self._describe)

    async def schedule(self, asset_ids: Sequence[uuid.UUID]) -> None:
        await self._enqueue(PROCESS, asset_ids)

    async def refresh_text(self, asset_ids: Sequence[uuid.UUID]) -> None:
        """Tags changed: make the text embeddings of these assets again (when analysed)."""
        await self._enqueue(EMBED_TEXT, asset_ids)

    async def _enqueue(self, name: str, asset_ids: Sequence[uuid.UUID]) -> None:
        ids = list(dict.fromkeys(asset_ids))
        await self._queue.enqueue_many(name, [{"asset": str(i)} for i in ids], dedupe_keys=[f"{name}:{i}" for i in ids])

    # ------------------------------------------------------------------ processing

    async def _process(self, job: Job) -> None:
        asset = await self._store.get(asset_id=uuid.UUID(job.payload["asset"]))
        if asset is None or asset.state is AssetState.UPLOADING:
            return  # purged meanwhile, or not stored yet (the janitor queues it when it is)
        await self._store.update(asset_id=asset.id, changes={"processing_state": ProcessingState.RUNNING})
        original = None
        if self._recent is not None:
            original = await self._executor.run(self._recent.take, key=asset.object_key, sha256=asset.sha256)
        if original is None:
            original = await self._read(asset.object_key)
        try:
            renditions: Renditions = await self._executor.run(
                make_renditions,
                original,
                thumbnail_px=self._sizes.thumbnail_px,
                preview_px=self._sizes.preview_px,
                max_pixels=self._sizes.max_pixels,
            )
        finally:
            original.close()
        thumbnail_key = await self._write_rendition(asset, "thumbnail", renditions.thumbnail.data)
        preview_key = (
            await self._write_rendition(asset, "preview", renditions.preview.data) if renditions.preview else ""
        )
        await self._store.update(
            asset_id=asset.id,
            changes={
                "thumbnail_key": thumbnail_key,
                "preview_key": preview_key,
                "perceptual_hash": renditions.perceptual_hash,
                "processing_state": ProcessingState.COMPLETED,
                "processing_error": "",
            },
        )
        for old in {asset.thumbnail_key, asset.preview_key} - {thumbnail_key, preview_key, ""}:
            await self._objects.delete(key=old)
        if asset.analysis_state in (AnalysisState.PENDING, AnalysisState.RUNNING, AnalysisState.FAILED):
            await self._enqueue(ANALYZE, [asset.id])

    async def _read(self, key: str):
        spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
        async for chunk in self._objects.read(key=key):
            await self._executor.run(spool.write, chunk)
        spool.seek(0)
        return spool

    async def _write_rendition(self, asset: AssetRecord, variant: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = f"renditions/{asset.id}/{variant}-{digest[:16]}.webp"
        # Renditions can be made again from the original, so they are not replicated.
        try:
            await self._objects.write(
                key=key, content_type="image/webp", sha256=digest, data=io.BytesIO(data), replicate=False
            )
        except AlreadyExists as busy:
            if busy.reason != "OBJECT_BUSY":
                raise
            # A write of this key never finished (storage was killed mid-write) and its claim
            # stands until storage reaps it; the rendition goes under a key of its own instead.
            key = f"renditions/{asset.id}/{variant}-{digest[:16]}-{uuid.uuid4().hex[:8]}.webp"
            await self._objects.write(
                key=key, content_type="image/webp", sha256=digest, data=io.BytesIO(data), replicate=False
            )
        return key

    async def _process_failed(self, job: Job, error: BaseException, retry_in: timedelta | None) -> None:
        asset_id = uuid.UUID(job.payload["asset"])
        reason = error.message if isinstance(error, ImgTagError) else f"{type(error).__name__}: {error}"
        if retry_in is None and isinstance(error, Unavailable):
            # Storage (or the network to it) was away for every attempt: nothing is wrong with the
            # photo, so it waits PENDING and the sweeper queues it again, as analyses wait for inference.
            await self._store.update(
                asset_id=asset_id,
                changes={"processing_state": ProcessingState.PENDING, "processing_error": f"waiting: {reason}"[:500]},
            )
        elif retry_in is None:
            await self._store.update(
                asset_id=asset_id,
                changes={"processing_state": ProcessingState.FAILED, "processing_error": reason[:500]},
            )
        else:
            await self._store.update(asset_id=asset_id, changes={"processing_error": f"retrying: {reason}"[:500]})

    # ------------------------------------------------------------------ analysis

    async def _analyze(self, job: Job) -> None:
        asset = await self._store.get(asset_id=uuid.UUID(job.payload["asset"]))
        if asset is None or asset.analysis_state is AnalysisState.SKIPPED or asset.state is AssetState.UPLOADING:
            return
        key = asset.preview_key or asset.thumbnail_key or asset.object_key
        try:
            image = await self._read(key)
        except NotFound:
            return  # renditions replaced meanwhile; the new processing run queues analysis again
        try:
            await self._store.update(asset_id=asset.id, changes={"analysis_state": AnalysisState.RUNNING})
            analysis = await self._analyzer.analyze(asset, image.read())
        except _WAIT as waiting:
            # Backpressure: stay PENDING; the sweeper queues it again once inference answers.
            self._hold_until = datetime.now(UTC) + self._hold
            self._hold = min(self._hold * 2, _LONGEST_HOLD)
            await self._store.update(
                asset_id=asset.id,
                changes={
                    "analysis_state": AnalysisState.PENDING,
                    "analysis_error": f"waiting: {waiting.message}"[:500],
                },
            )
            return
        finally:
            image.close()
        suggestions = []
        for tag in analysis.tags:
            record = await self._vocabulary.ensure(
                NewTag(display_name=tag.label, display_names=tag.display_names, category=tag.category)
            )
            suggestions.append((record.id, tag.confidence, tag.model))
        await self._suggestions.replace_suggestions(asset_id=asset.id, suggestions=suggestions, vision=False)
        self._hold = _FIRST_HOLD
        await self._vectors.put_vectors(
            asset_id=asset.id, vectors=[(v.space, "image", v.model, v.values) for v in analysis.image_vectors]
        )
        changes = {"recognized_text": analysis.recognized_text[:10_000]}
        if analysis.caption:  # captions come from the describe stage; keep the last one
            changes["caption"] = analysis.caption[:2000]
        updated = await self._store.update(asset_id=asset.id, changes=changes)
        await self._write_text_vector(updated or asset)
        spaces = await self._embedder.spaces()
        visual = next((v for v in analysis.image_vectors if v.space == spaces.visual), None)
        if visual is not None:
            await self._duplicates.find_for(updated or asset, space=visual.space, vector=visual.values)
        await self._store.update(
            asset_id=asset.id,
            changes={
                "analysis_state": AnalysisState.SUCCEEDED,
                "analysis_error": "",
                "analysis_time": datetime.now(UTC),
            },
        )
        if self._describer is not None and asset.caption_state in (
            CaptionState.PENDING,
            CaptionState.RUNNING,
            CaptionState.FAILED,
        ):
            await self._enqueue(DESCRIBE, [asset.id])

    async def _write_text_vector(self, asset: AssetRecord) -> None:
        tags = (await self._suggestions.tags_of(asset_ids=[asset.id])).get(asset.id, [])
        text = asset_text(asset, tags)
        if not text:
            return
        spaces = await self._embedder.spaces()
        if not spaces.text:
            return
        (vector,) = await self._embedder.embed_texts([text], space=spaces.text)
        await self._vectors.put_vectors(
            asset_id=asset.id, vectors=[(vector.space, "text", vector.model, vector.values)]
        )

    async def _embed_text(self, job: Job) -> None:
        asset = await self._store.get(asset_id=uuid.UUID(job.payload["asset"]))
        if asset is None or asset.analysis_state is not AnalysisState.SUCCEEDED:
            return  # analysis writes the text embedding itself when it runs
        try:
            await self._write_text_vector(asset)
        except _WAIT:
            return  # the next tag change or a re-analysis makes it again

    async def _analyze_failed(self, job: Job, error: BaseException, retry_in: timedelta | None) -> None:
        if retry_in is None:
            reason = error.message if isinstance(error, ImgTagError) else f"{type(error).__name__}: {error}"
            await self._store.update(
                asset_id=uuid.UUID(job.payload["asset"]),
                changes={
                    "analysis_state": AnalysisState.FAILED,
                    "analysis_error": reason[:500],
                    "analysis_time": datetime.now(UTC),
                    # the describe stage follows a successful analysis only; ReanalyzeAsset retries both
                    "caption_state": CaptionState.SKIPPED,
                    "caption_error": "not described: the analysis failed",
                },
            )

    # ------------------------------------------------------------------ vision-language

    async def _describe(self, job: Job) -> None:
        assert self._describer is not None
        asset = await self._store.get(asset_id=uuid.UUID(job.payload["asset"]))
        if (
            asset is None
            or asset.state is AssetState.UPLOADING
            or asset.caption_state not in (CaptionState.PENDING, CaptionState.RUNNING)
        ):
            return  # purged, skipped, or done meanwhile (ReanalyzeAsset sets PENDING again)
        # No preview means the original is no larger than one; the thumbnail is too small to read.
        key = asset.preview_key or asset.object_key
        try:
            image = await self._read(key)
        except NotFound:
            return  # renditions replaced meanwhile; the new analysis queues this stage again
        try:
            await self._store.update(asset_id=asset.id, changes={"caption_state": CaptionState.RUNNING})
            described = await self._describer.describe(asset, image.read())
        except FailedPrecondition as error:
            skipped = error.reason == "VISION_PROVIDER_NOT_CONFIGURED"
            await self._caption_ended(asset, CaptionState.SKIPPED if skipped else CaptionState.FAILED, error.message)
            return
        except InvalidArgument as error:  # the preview does not decode: asking again will not help
            await self._caption_ended(asset, CaptionState.FAILED, error.message)
            return
        except Unimplemented:
            await self._caption_ended(asset, CaptionState.SKIPPED, "the inference service does not describe images")
            return
        except Unavailable as error:
            if error.reason == "VISION_PROVIDER_UNAVAILABLE":
                raise  # the job is retried with backoff; _describe_failed records why
            # The inference service itself is away: backpressure, as for analyses.
            self._describe_hold_until = datetime.now(UTC) + self._describe_hold
            self._describe_hold = min(self._describe_hold * 2, _LONGEST_HOLD)
            await self._store.update(
                asset_id=asset.id,
                changes={"caption_state": CaptionState.PENDING, "caption_error": f"waiting: {error.message}"[:500]},
            )
            return
        finally:
            image.close()
        self._describe_hold = _FIRST_HOLD
        suggestions = []
        for tag in described.tags:
            try:
                record = await self._vocabulary.ensure(
                    NewTag(display_name=tag.label, display_names=tag.display_names, category=tag.category)
                )
            except InvalidArgument:
                log.info("a vision tag was not a valid tag name", extra={"asset": asset.name, "tag": tag.label[:80]})
                continue
            suggestions.append((record.id, tag.confidence, tag.model))
        await self._suggestions.replace_suggestions(asset_id=asset.id, suggestions=suggestions, vision=True)
        updated = await self._store.update(
            asset_id=asset.id,
            changes={
                "caption": described.caption[:2000],
                "caption_provider": described.provider,
                "caption_state": CaptionState.SUCCEEDED,
                "caption_error": "",
            },
        )
        try:
            await self._write_text_vector(updated or asset)
        except _WAIT:
            pass  # the next tag change or re-analysis makes it

    async def _caption_ended(self, asset: AssetRecord, state: CaptionState, reason: str) -> None:
        """A final outcome without a caption; what the analysis recorded stays as it is."""
        await self._store.update(asset_id=asset.id, changes={"caption_state": state, "caption_error": reason[:1000]})

    async def _describe_failed(self, job: Job, error: BaseException, retry_in: timedelta | None) -> None:
        reason = error.message if isinstance(error, ImgTagError) else f"{type(error).__name__}: {error}"
        asset_id = uuid.UUID(job.payload["asset"])
        if retry_in is None:
            changes = {"caption_state": CaptionState.FAILED, "caption_error": reason[:1000]}
        else:
            changes = {"caption_state": CaptionState.PENDING, "caption_error": f"retrying: {reason}"[:1000]}
        await self._store.update(asset_id=asset_id, changes=changes)

    # ------------------------------------------------------------------ catching up

    async def sweep(self, *, older_than: timedelta = timedelta(minutes=2), limit: int = 1000) -> int:
        """Queue work whose job is missing: processing never queued or lost, and analyses that
        waited for the inference service (only once it answers again)."""
        cutoff = datetime.now(UTC) - older_than
        unprocessed = await self._store.ids_waiting(
            processing=(ProcessingState.PENDING, ProcessingState.RUNNING), analysis=(), older_than=cutoff, limit=limit
        )
        await self._enqueue(PROCESS, unprocessed)
        waiting = []
        if datetime.now(UTC) >= self._hold_until and await self._analyzer.ready():
            waiting = await self._store.ids_waiting(
                processing=(ProcessingState.COMPLETED,),
                analysis=(AnalysisState.PENDING,),
                older_than=cutoff,
                limit=limit,
            )
            await self._enqueue(ANALYZE, waiting)
        undescribed = []
        if (
            self._describer is not None
            and datetime.now(UTC) >= self._describe_hold_until
            and await self._analyzer.ready()
        ):
            undescribed = await self._store.ids_waiting(
                processing=(ProcessingState.COMPLETED,),
                analysis=(AnalysisState.SUCCEEDED,),
                caption=(CaptionState.PENDING,),
                older_than=cutoff,
                limit=limit,
            )
            await self._enqueue(DESCRIBE, undescribed)
        return len(unprocessed) + len(waiting) + len(undescribed)
