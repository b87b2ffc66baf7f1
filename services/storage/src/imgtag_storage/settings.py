from __future__ import annotations

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
    bootstrap_s3_secret_key: str = ""
    bootstrap_s3_bucket: str = "imgtag"
    bootstrap_s3_region: str = "us-east-1"
    # Size of the chunks ReadObject streams back.
    read_chunk_bytes: int = 1024 * 1024
    # Writes up to this size are buffered in memory before they go to a backend; larger spill to disk.
    spool_memory_bytes: int = 8 * 1024 * 1024
    max_object_bytes: int = 2 * 1024 * 1024 * 1024
