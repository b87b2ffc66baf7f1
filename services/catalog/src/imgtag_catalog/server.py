"""Wires the catalog: database, job queue, storage and inference clients, domain, servicer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from imgtag.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from imgtag_catalog.adapters.inference import InferenceClient
from imgtag_catalog.adapters.recent_originals import RecentOriginals
from imgtag_catalog.adapters.storage import StorageClient
from imgtag_catalog.adapters.url_fetch import UrlFetcher
from imgtag_catalog.api.servicer import CatalogServicer
from imgtag_catalog.db.collections_repository import CollectionRepository
from imgtag_catalog.db.imports_repository import ImportJobRepository
from imgtag_catalog.db.repository import AssetRepository
from imgtag_catalog.db.search_repository import SearchRepository
from imgtag_catalog.db.tags_repository import TagRepository
from imgtag_catalog.domain.archives import ArchiveLimits
from imgtag_catalog.domain.assets import AssetService, UploadLimits
from imgtag_catalog.domain.collections import Collections
from imgtag_catalog.domain.content_urls import ContentSigner
from imgtag_catalog.domain.duplicates import Duplicates
from imgtag_catalog.domain.imports import ImportLimits, ImportService
from imgtag_catalog.domain.pipeline import Pipeline, RenditionSizes
from imgtag_catalog.domain.search import Search
from imgtag_catalog.domain.tags import Vocabulary
from imgtag_catalog.domain.url_sources import parse_networks
from imgtag_catalog.settings import CatalogSettings
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.channels import open_channel
from imgtag_common.db import open_database, session_factory
from imgtag_common.jobs import JobQueue, Retry
from imgtag_common.server import GrpcApp, start_app

MIGRATIONS = Path(__file__).parent / "migrations"
# The service is declared in catalog.proto and its messages in other files, so its own module
# must be imported for the access rules to be in the descriptor pool.
SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
log = logging.getLogger(__name__)


async def build_server(settings: CatalogSettings) -> GrpcApp:
    engine = await open_database(settings, MIGRATIONS)
    executor = BlockingExecutor(settings.blocking_workers)
    tokens = settings.service_tokens("catalog")
    storage_channel = open_channel(settings.storage_target, tokens=tokens, max_message_bytes=settings.max_message_bytes)
    inference_channel = open_channel(
        settings.inference_target, tokens=tokens, max_message_bytes=settings.max_message_bytes
    )
    sessions = session_factory(engine)
    asset_rows, tag_rows, collection_rows = (
        AssetRepository(sessions),
        TagRepository(sessions),
        CollectionRepository(sessions),
    )
    search_rows = SearchRepository(engine, sessions)
    vocabulary = Vocabulary(tag_rows)
    objects = StorageClient(storage_channel, executor, chunk_bytes=settings.chunk_bytes)
    inference = InferenceClient(
        inference_channel, describe_timeout_s=settings.describe_timeout_s, read_text=settings.analysis_read_text
    )
    duplicates = Duplicates(search_rows)
    queue = JobQueue(settings.database_url, heartbeat_timeout_s=settings.job_heartbeat_timeout_s)
    recent = None
    if settings.run_workers and settings.recent_originals_bytes:
        recent = RecentOriginals(
            Path(tempfile.mkdtemp(prefix="imgtag-catalog-originals-")), max_bytes=settings.recent_originals_bytes
        )
    pipeline = Pipeline(
        queue,
        asset_rows,
        tag_rows,
        objects,
        vocabulary,
        inference,
        inference,
        search_rows,
        duplicates,
        executor,
        sizes=RenditionSizes(settings.thumbnail_px, settings.preview_px, settings.max_image_pixels),
        process_concurrency=settings.process_concurrency,
        analyze_concurrency=settings.analyze_concurrency,
        retry=Retry(max_attempts=settings.job_max_attempts, initial_delay_s=2, max_delay_s=300),
        recent=recent,
        describer=inference,
        describe_concurrency=settings.describe_concurrency,
        describe_retry=Retry(
            max_attempts=settings.describe_max_attempts,
            initial_delay_s=settings.describe_retry_initial_s,
            max_delay_s=900,
        ),
    )
    collections = Collections(collection_rows, tag_rows, vocabulary, on_tags_changed=pipeline.refresh_text)
    assets = AssetService(
        asset_rows,
        objects,
        tag_rows,
        collection_rows,
        vocabulary,
        collections,
        pipeline,
        executor,
        limits=UploadLimits(
            max_bytes=settings.max_upload_bytes,
            spool_memory_bytes=settings.spool_memory_bytes,
            max_pixels=settings.max_image_pixels,
            stale_after=timedelta(seconds=settings.stale_upload_s),
        ),
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        trash_retention=timedelta(days=settings.trash_retention_days),
        recent=recent,
    )
    signer = ContentSigner.from_service_secret(
        settings.service_secret.get_secret_value(), window_s=settings.content_url_window_s
    )
    search = Search(search_rows, asset_rows, inference, candidates=settings.search_candidates)
    url_fetcher = UrlFetcher(
        allowed_networks=parse_networks(settings.import_url_allowed_networks),
        timeout_s=settings.import_url_timeout_s,
        chunk_bytes=settings.chunk_bytes,
        max_bytes=settings.max_upload_bytes,
    )
    imports = ImportService(
        queue,
        ImportJobRepository(sessions),
        objects,
        assets,
        collections,
        vocabulary,
        executor,
        limits=ImportLimits(
            archive=ArchiveLimits(
                max_entries=settings.import_max_entries,
                max_total_bytes=settings.import_max_total_bytes,
                max_entry_bytes=settings.max_upload_bytes,
                max_ratio=settings.import_max_compression_ratio,
            ),
            max_archive_bytes=settings.import_max_archive_bytes,
            spool_memory_bytes=settings.spool_memory_bytes,
            chunk_bytes=settings.chunk_bytes,
        ),
        concurrency=settings.import_concurrency,
        retry=Retry(max_attempts=settings.import_max_attempts, initial_delay_s=2, max_delay_s=300),
        urls=url_fetcher,
    )
    servicer = CatalogServicer(assets, vocabulary, tag_rows, collections, search, duplicates, signer, imports=imports)
    await (queue.start() if settings.run_workers else queue.open())

    async def maintain() -> None:
        """Settle interrupted uploads, purge expired trash, re-queue missing work (processing and
        imports), delete archives of ended imports; idempotent, so several replicas may run it at
        once."""
        while True:
            await asyncio.sleep(settings.maintenance_interval_s)
            for task in (
                lambda: assets.settle_stale_uploads(older_than=timedelta(seconds=settings.stale_upload_s)),
                assets.purge_expired,
                pipeline.sweep,
                imports.sweep,
                search.index_tag_names,
            ):
                try:
                    await task()
                except Exception:
                    log.exception("maintenance step failed; it runs again next round")

    maintenance = asyncio.create_task(maintain()) if settings.run_workers else None

    async def close() -> None:
        if maintenance is not None:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        await queue.stop(settings.shutdown_grace_s)
        await url_fetcher.close()
        await storage_channel.close()
        await inference_channel.close()
        await engine.dispose()
        executor.shutdown()
        if recent is not None:
            recent.close()

    return await start_app(
        settings,
        services=[
            (SERVICE_NAME, lambda server: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server))
        ],
        tokens=tokens,
        cleanups=[close],
    )
