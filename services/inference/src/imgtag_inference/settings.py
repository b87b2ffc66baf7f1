from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from imgtag_common.settings import ServiceSettings


class InferenceSettings(ServiceSettings):
    """IMGTAG_INFERENCE_* settings."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_INFERENCE_", extra="ignore")

    port: int = 50054
    # host:port of a Triton server (gRPC); empty = embedded ONNX Runtime on the CPU.
    triton_url: str = ""
