from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
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
    # host:port of a Triton server (gRPC); empty = embedded ONNX Runtime on the CPU.
    triton_url: str = ""
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
