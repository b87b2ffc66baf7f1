from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from imgtag_common.settings import DatabaseSettings


class StorageSettings(DatabaseSettings):
    """IMGTAG_STORAGE_* settings."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_STORAGE_", extra="ignore")

    port: int = 50053
    database_url: str = "postgresql+asyncpg://imgtag@127.0.0.1:55432/imgtag_storage"
    # The first S3 endpoint, created as the default upload endpoint when none exists yet.
    bootstrap_s3_endpoint: str = ""
    bootstrap_s3_access_key: str = ""
    bootstrap_s3_secret_key: SecretStr = SecretStr("")
    bootstrap_s3_bucket: str = "imgtag"
    bootstrap_s3_region: str = "us-east-1"
    # Key that seals endpoint secrets at rest (at least 32 characters), or a file holding it
    # (mode 0600; the local stack makes one in its data directory). One of them is required.
    secrets_key: SecretStr = SecretStr("")
    secrets_key_file: str = ""
    # Size of the chunks ReadObject streams back.
    read_chunk_bytes: int = 1024 * 1024
    max_object_bytes: int = 2 * 1024 * 1024 * 1024
    # S3 multipart: part size and parts uploaded at once. A streamed write holds about
    # (parallel parts + 2) x part size in memory, whatever the object's size.
    s3_part_bytes: int = 6 * 1024 * 1024
    s3_parallel_parts: int = 2
    s3_connect_timeout_s: float = 3.0
    # Threads: reads, writes (each upload holds one while it streams) and background work
    # (replication, scrubs, health probes), separate so none can starve another.
    read_workers: int = 16
    write_workers: int = 8
    background_workers: int = 8
    # Health checks: a probe of every enabled endpoint this often; UNREACHABLE after this
    # many failures in a row (skipped by reads), HEALTHY again after one success.
    health_interval_s: float = 30.0
    unreachable_after_failures: int = 3
    # Replication jobs: copies running at once (across processes), attempts, backoff.
    replication_concurrency: int = 8
    replication_max_attempts: int = 10
    replication_initial_backoff_s: float = 2.0
    replication_max_backoff_s: float = 600.0
    # A running job whose worker sends no heartbeat this long (killed) is picked up again.
    job_heartbeat_timeout_s: float = 30.0
    job_poll_interval_s: float = 5.0
    # Keys claimed by a writer that never finished are freed after this long.
    stale_claim_s: float = 24 * 3600

    production_required: ClassVar[tuple[str, ...]] = DatabaseSettings.production_required
