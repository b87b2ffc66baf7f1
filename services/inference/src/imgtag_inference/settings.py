from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from imgtag_common.settings import ServiceSettings
from imgtag_inference.domain import colours, vocabulary


def default_models_dir() -> Path:
    """Beside the library, as `imgtag run` keeps it (README, "Where data lives")."""
    if os.geteuid() == 0:
        return Path("/var/lib/imgtag/models")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "imgtag" / "models"


class InferenceSettings(ServiceSettings):
    """IMGTAG_INFERENCE_* settings."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_INFERENCE_", extra="ignore")

    port: int = 50054
    # Who runs the models: "onnxruntime" (embedded, on this CPU) or "triton" (a Triton server,
    # typically on GPU nodes, filled by deploy/triton/fill_repository.py). Unset: "triton" when
    # triton_url is set, else "onnxruntime".
    backend: Literal["onnxruntime", "triton"] | None = None
    # host:port of the Triton server's gRPC endpoint (KServe v2), e.g. "triton:8001".
    triton_url: str = ""
    # Deadline of each call to Triton, and how often its readiness is checked (health follows it).
    triton_timeout_s: float = Field(default=60.0, gt=0)
    triton_check_interval_s: float = Field(default=2.0, gt=0)
    # Prove at every (re)connection that Triton's models receive the bytes sent (the
    # imgtag-transport-check model), before serving; see deploy/triton.
    triton_transport_check: bool = True
    # Converted models (cached) and downloaded ones (`imgtag models pull`, in clip/<name>/).
    models_dir: Path = Field(default_factory=default_models_dir)
    # Which CLIP model in models_dir/clip/ to load: a directory name, "auto" (the first
    # complete one, if any) or "none".
    clip_model: str = "auto"
    # Load rapidocr so that TagImage(want_ocr) can read text (about 0.5 s per image when asked).
    ocr_enabled: bool = True
    # Threads running model forward passes (the bounded pool), and ONNX Runtime's threads per
    # pass (0: one per core).
    inference_workers: int = Field(default=2, ge=1)
    onnx_threads: int = Field(default=0, ge=0)
    # Micro-batching: concurrent callers of one model share a forward pass, gathered for at
    # most this long, at most this many per pass.
    batch_window_ms: float = Field(default=5.0, ge=0)
    max_batch_size: int = Field(default=32, ge=1, le=256)
    # Tagging thresholds (README "Tagging" has the measurements behind the defaults).
    min_confidence: float = Field(default=vocabulary.MIN_CONFIDENCE, gt=0, le=1)
    texture_confidence: float = Field(default=vocabulary.TEXTURE_CONFIDENCE, gt=0, le=1)
    min_leading_class: float = Field(default=vocabulary.MIN_LEADING_CLASS, ge=0, le=1)
    colour_min_share: float = Field(default=colours.MIN_SHARE, gt=0, le=1)
    # Largest encoded image accepted (the catalog sends WebP previews of at most 1920 px).
    max_image_bytes: int = 32 * 1024 * 1024
    # Where images named by storage key are read from.
    storage_target: str = "127.0.0.1:50053"

    # The service's own database, for the vision-language providers an admin configures; empty:
    # none (a node that only serves models), and the provider RPCs answer FAILED_PRECONDITION.
    database_url: str = ""
    database_pool_size: int = 5
    # Apply alembic migrations at start-up (the local stack); Kubernetes runs them in a Job instead.
    migrate_on_start: bool = True
    # Key that seals providers' API keys at rest (at least 32 characters), or a file holding it
    # (mode 0600; the local stack makes one in its data directory). Required with a database.
    secrets_key: SecretStr = SecretStr("")
    secrets_key_file: str = ""
    # Waits between attempts at a provider: the first, doubling up to the last (a provider's
    # Retry-After is honoured up to that too).
    vision_backoff_initial_s: float = Field(default=1.0, ge=0)
    vision_backoff_max_s: float = Field(default=30.0, ge=0)
    # Images go to providers as JPEG with at most this many pixels on the longest side.
    vision_image_px: int = Field(default=1024, ge=256, le=4096)

    @model_validator(mode="after")
    def _backend_chosen(self) -> InferenceSettings:
        if self.backend is None:
            self.backend = "triton" if self.triton_url else "onnxruntime"
        if self.backend == "triton" and not self.triton_url:
            raise ValueError(
                "IMGTAG_INFERENCE_BACKEND=triton needs IMGTAG_INFERENCE_TRITON_URL (host:port of its gRPC endpoint)"
            )
        return self
