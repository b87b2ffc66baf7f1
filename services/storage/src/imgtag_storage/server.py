"""Wires the storage service: database, bootstrap endpoint, domain service, servicer."""

from __future__ import annotations

from pathlib import Path

from imgtag.storage.v1 import storage_pb2_grpc
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.db import open_database, session_factory
from imgtag_common.server import GrpcApp, start_app
from imgtag_storage.api.servicer import StorageServicer
from imgtag_storage.db.repository import StorageRepository
from imgtag_storage.domain.service import StorageService
from imgtag_storage.settings import StorageSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = "imgtag.storage.v1.StorageService"


async def build_server(settings: StorageSettings) -> GrpcApp:
    engine = await open_database(settings, MIGRATIONS)
    executor = BlockingExecutor(settings.blocking_workers)
    storage = StorageService(
        StorageRepository(session_factory(engine)),
        executor,
        read_chunk_bytes=settings.read_chunk_bytes,
        spool_memory_bytes=settings.spool_memory_bytes,
        max_object_bytes=settings.max_object_bytes,
    )
    if settings.bootstrap_s3_endpoint:
        await storage.bootstrap_s3_endpoint(
            endpoint_url=settings.bootstrap_s3_endpoint,
            access_key=settings.bootstrap_s3_access_key,
            secret_key=settings.bootstrap_s3_secret_key,
            bucket=settings.bootstrap_s3_bucket,
            region=settings.bootstrap_s3_region,
        )
    servicer = StorageServicer(storage)

    async def close() -> None:
        await engine.dispose()
        executor.shutdown()

    return await start_app(
        settings,
        services=[
            (SERVICE_NAME, lambda server: storage_pb2_grpc.add_StorageServiceServicer_to_server(servicer, server))
        ],
        tokens=settings.service_tokens("storage"),
        cleanups=[close],
    )
