"""Wires the catalog: database, storage client, domain service, servicer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from imgtag.catalog.v1 import catalog_pb2_grpc
from imgtag_catalog.api.servicer import CatalogServicer
from imgtag_catalog.clients.storage import StorageClient
from imgtag_catalog.db.repository import AssetRepository
from imgtag_catalog.domain.assets import AssetService, UploadLimits
from imgtag_catalog.domain.content_urls import ContentSigner
from imgtag_catalog.settings import CatalogSettings
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.channels import open_channel
from imgtag_common.db import open_database, session_factory
from imgtag_common.server import GrpcApp, start_app

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = "imgtag.catalog.v1.CatalogService"


async def build_server(settings: CatalogSettings) -> GrpcApp:
    engine = await open_database(settings, MIGRATIONS)
    executor = BlockingExecutor(settings.blocking_workers)
    tokens = settings.service_tokens("catalog")
    storage_channel = open_channel(settings.storage_target, tokens=tokens, max_message_bytes=settings.max_message_bytes)
    assets = AssetService(
        AssetRepository(session_factory(engine)),
        StorageClient(storage_channel, executor, chunk_bytes=settings.chunk_bytes),
        executor,
        limits=UploadLimits(max_bytes=settings.max_upload_bytes, spool_memory_bytes=settings.spool_memory_bytes),
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        trash_retention=timedelta(days=settings.trash_retention_days),
    )
    signer = ContentSigner.from_service_secret(
        settings.service_secret.get_secret_value(), window_s=settings.content_url_window_s
    )
    servicer = CatalogServicer(assets, signer)

    async def close() -> None:
        await storage_channel.close()
        await engine.dispose()
        executor.shutdown()

    return await start_app(
        settings,
        services=[
            (SERVICE_NAME, lambda server: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server))
        ],
        tokens=tokens,
        cleanups=[close],
    )
