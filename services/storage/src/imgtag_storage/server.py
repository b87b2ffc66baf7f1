"""Wires the storage service: database, secret box, backends, job queue, domain services, health
loop, servicer."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

from imgtag.storage.v1 import storage_pb2_grpc
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.db import open_database, session_factory
from imgtag_common.jobs import Job, JobQueue, Retry
from imgtag_common.sealing import FernetSecretBox, load_secrets_key
from imgtag_common.server import GrpcApp, start_app
from imgtag_storage.adapters.backends import CachedBackends
from imgtag_storage.api.servicer import StorageServicer
from imgtag_storage.db.repository import SqlStorageRepository
from imgtag_storage.domain.endpoints import EndpointService
from imgtag_storage.domain.executors import Executors
from imgtag_storage.domain.health import HealthMonitor
from imgtag_storage.domain.objects import ObjectService
from imgtag_storage.domain.replication import DELETE_REPLICA, REPLICATE, SCRUB, ReplicationService
from imgtag_storage.settings import StorageSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = "imgtag.storage.v1.StorageService"


def _give_large_buffers_back_to_the_os(threshold: int = 4 * 1024 * 1024) -> None:
    """Streams pass through multi-MiB buffers (S3 parts). glibc raises its mmap threshold after
    freeing such a buffer and then keeps later ones on the heap, so RSS climbs with every
    stream; a fixed threshold returns each part's memory when it is freed (1 MiB chunks stay on
    the fast heap)."""
    name = ctypes.util.find_library("c")
    if name:
        m_mmap_threshold = -3
        ctypes.CDLL(name).mallopt(m_mmap_threshold, threshold)


def _register_jobs(queue: JobQueue, replication: ReplicationService, settings: StorageSettings) -> None:
    copy_retry = Retry(
        max_attempts=settings.replication_max_attempts,
        initial_delay_s=settings.replication_initial_backoff_s,
        max_delay_s=settings.replication_max_backoff_s,
    )

    async def copy_failed(job: Job, error: BaseException, retry_in) -> None:
        await replication.copy_failed(job.payload, error, retry_in)

    async def scrub_failed(job: Job, error: BaseException, retry_in) -> None:
        await replication.scrub_failed(job.payload, error, retry_in)

    @queue.consumer(REPLICATE, concurrency=settings.replication_concurrency, retry=copy_retry, on_failure=copy_failed)
    async def replicate(job: Job) -> None:
        await replication.replicate(job.payload["key"], job.payload["endpoint"])

    # Deletes keep trying longer: a replica left behind is only wasted space, but it is ours.
    delete_retry = Retry(
        max_attempts=settings.replication_max_attempts * 2,
        initial_delay_s=settings.replication_initial_backoff_s,
        max_delay_s=settings.replication_max_backoff_s,
    )

    @queue.consumer(DELETE_REPLICA, concurrency=settings.replication_concurrency, retry=delete_retry)
    async def delete_replica(job: Job) -> None:
        await replication.delete_replica(job.payload["key"], job.payload["endpoint"])

    @queue.consumer(SCRUB, concurrency=2, retry=copy_retry, on_failure=scrub_failed)
    async def scrub(job: Job) -> None:
        await replication.run_scrub(job.payload["scrub"])


async def build_server(settings: StorageSettings) -> GrpcApp:
    _give_large_buffers_back_to_the_os()
    secrets = FernetSecretBox(
        load_secrets_key(
            key=settings.secrets_key.get_secret_value(),
            key_file=settings.secrets_key_file,
            setting="IMGTAG_STORAGE_SECRETS_KEY",
        ),
        purpose="imgtag-storage-endpoint-secrets",  # as sealed by earlier versions: keep it
        setting="IMGTAG_STORAGE_SECRETS_KEY",
    )
    engine = await open_database(settings, MIGRATIONS)
    executors = Executors(
        reads=BlockingExecutor(settings.read_workers),
        writes=BlockingExecutor(settings.write_workers),
        background=BlockingExecutor(settings.background_workers),
    )
    repository = SqlStorageRepository(session_factory(engine))
    backends = CachedBackends(
        secrets,
        pool_size=max(settings.read_workers, settings.write_workers, settings.background_workers),
        part_bytes=settings.s3_part_bytes,
        parallel_parts=settings.s3_parallel_parts,
        connect_timeout_s=settings.s3_connect_timeout_s,
    )
    queue = JobQueue(
        settings.database_url,
        heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
        poll_interval_s=settings.job_poll_interval_s,
    )
    endpoints = EndpointService(
        repository, backends, secrets, executors, unreachable_after=settings.unreachable_after_failures
    )
    replication = ReplicationService(repository, backends, endpoints, executors, queue)
    objects = ObjectService(
        repository,
        backends,
        endpoints,
        replication,
        executors,
        read_chunk_bytes=settings.read_chunk_bytes,
        max_object_bytes=settings.max_object_bytes,
    )
    health = HealthMonitor(
        repository,
        endpoints,
        objects,
        interval_s=settings.health_interval_s,
        stale_claim_s=settings.stale_claim_s,
    )
    await endpoints.seal_plain_secrets()
    if settings.bootstrap_s3_endpoint:
        await endpoints.bootstrap_s3_endpoint(
            endpoint_url=settings.bootstrap_s3_endpoint,
            access_key=settings.bootstrap_s3_access_key,
            secret_key=settings.bootstrap_s3_secret_key.get_secret_value(),
            bucket=settings.bootstrap_s3_bucket,
            region=settings.bootstrap_s3_region,
        )
    _register_jobs(queue, replication, settings)
    await queue.start()
    health.start()
    servicer = StorageServicer(endpoints=endpoints, objects=objects, replication=replication)

    async def close() -> None:
        await health.stop()
        await queue.stop(grace_s=settings.shutdown_grace_s)
        await engine.dispose()
        executors.shutdown()

    return await start_app(
        settings,
        services=[
            (SERVICE_NAME, lambda server: storage_pb2_grpc.add_StorageServiceServicer_to_server(servicer, server))
        ],
        tokens=settings.service_tokens("storage"),
        cleanups=[close],
    )
