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
    # Read the text in every photo (OCR with rapidocr in the inference service) during analysis:
    # signs, documents and screenshots become searchable by their words. Off by default: it costs
    # about 0.5 s of CPU per photo on a small machine (README "Inference" has the measurement).
    analysis_read_text: bool = False
    # Candidates each search list (tags, text embedding, CLIP, words) contributes: the most a
    # search returns per list, and the depth of its vector index scans (bench/search.py measures
    # the latency at 100k photos for different values).
    search_candidates: int = Field(default=300, ge=20, le=2000)
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
    # Images with more pixels are refused before any pixel is decoded (decompression bombs).
    max_image_pixels: int = Field(default=300_000_000, ge=1_000_000)
    # Renditions: longest side of the grid thumbnail and of the viewer's preview. 1440 px fills a
    # full-HD viewer (a 3:2 photo fitted into about 1900x1000 shows at 1500x1000) and is Immich's
    # default too; a 12 MP JPEG decodes at half scale for any preview from 1001 to 2000 px, so what
    # the size changes is the resize and WebP encode: the renditions cost 132 CPU ms at 1440 px
    # against 182 at 1920 (bench/ingestion.py, bench/renditions.py).
    thumbnail_px: int = Field(default=320, ge=64, le=1024)
    preview_px: int = Field(default=1440, ge=512, le=4096)
    # Processing jobs run at once in this process (renditions are CPU-bound: about one per core).
    process_concurrency: int = Field(default=2, ge=1)
    analyze_concurrency: int = Field(default=2, ge=1)
    # Vision-language captions (the describe stage, after analysis): images described at once
    # across every replica (each waits seconds on a provider; the provider's own concurrency,
    # set by an admin, bounds the requests actually in flight), attempts of a job whose provider
    # stayed unreachable through the inference service's retries, and how long one may take.
    describe_concurrency: int = Field(default=4, ge=1)
    describe_max_attempts: int = Field(default=4, ge=1)
    describe_retry_initial_s: float = Field(default=60, ge=0)
    describe_timeout_s: float = Field(default=900, gt=0)
    # A job whose worker stopped sending heartbeats this long is picked up by another worker.
    job_heartbeat_timeout_s: float = 30
    job_max_attempts: int = Field(default=5, ge=1)
    # How often the janitor settles interrupted uploads, purges expired trash and re-queues
    # work whose job went missing.
    maintenance_interval_s: float = Field(default=30, gt=0)
    # An upload still UPLOADING after this long was interrupted; the janitor settles it.
    stale_upload_s: float = Field(default=600, gt=0)
    # Uploads leave their bytes on local disk, up to this many in all, for this process's
    # processing job, which then need not read them back from storage (0: always read back).
    recent_originals_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    # Run the processing workers in this process (a deployment may run API-only replicas).
    run_workers: bool = True

    # ZIP imports (ImportZip): the largest archive accepted (storage's own object limit is 2 GiB
    # by default), at most this many entries, and at most this many bytes once expanded (as
    # the archive's headers declare them; entries that expand to more are stopped).
    import_max_archive_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024)
    import_max_entries: int = Field(default=10_000, ge=1)
    import_max_total_bytes: int = Field(default=16 * 1024 * 1024 * 1024, ge=1024)
    # An entry that expands more than this many times is refused as a zip bomb.
    import_max_compression_ratio: float = Field(default=100, ge=2)
    # Import jobs running at once, across every replica (each imports its entries one after another).
    # URL imports (admins): networks beyond the public internet that may be fetched from, e.g.
    # ["192.168.1.0/24"] for a NAS on the LAN (loopback, private and link-local addresses are
    # refused otherwise), and how long one request may take.
    import_url_allowed_networks: list[str] = Field(default_factory=list)
    import_url_timeout_s: float = Field(default=30, gt=0)
    import_concurrency: int = Field(default=2, ge=1)
    # Attempts of an import job before it ends FAILED; each attempt resumes where the last stopped.
    import_max_attempts: int = Field(default=10, ge=1)
