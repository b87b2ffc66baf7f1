from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from imgtag_common.settings import DatabaseSettings


class CatalogSettings(DatabaseSettings):
    """IMGTAG_CATALOG_* settings."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_CATALOG_", extra="ignore")

    port: int = 50052
    database_url: str = "postgresql+asyncpg://imgtag@127.0.0.1:55432/imgtag_catalog"
    storage_target: str = "127.0.0.1:50053"
    inference_target: str = "127.0.0.1:50054"
    # Largest accepted upload; photographers' RAW and panorama files are big.
    max_upload_bytes: int = 512 * 1024 * 1024
    # Uploads up to this size are held in memory while being checked; larger ones spill to disk.
    spool_memory_bytes: int = 16 * 1024 * 1024
    # Size of the chunks sent to storage and back to clients.
    chunk_bytes: int = 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 500
    # Days an asset stays in the trash before it is purged.
    trash_retention_days: int = 30
    # Signed content URLs live between one and two of these windows (and stay the same within
    # one, so browsers can cache images).
    content_url_window_s: int = Field(default=3600, ge=60)
