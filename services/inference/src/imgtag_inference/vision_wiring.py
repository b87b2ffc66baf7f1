"""Wires the vision-language part of the inference service: its database (providers), the key
that seals API keys, and one client per provider protocol. Kept apart from server.py so that the
embedded and Triton model backends and this part change independently."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.db import open_database, session_factory
from imgtag_common.sealing import FernetSecretBox, load_secrets_key
from imgtag_inference.adapters.vision_http import HttpVisionClients
from imgtag_inference.adapters.vision_triton import TritonVisionClient
from imgtag_inference.db.repository import VisionProviderRepository
from imgtag_inference.domain.models import ImageSource
from imgtag_inference.domain.vision import Backoff, ProviderKind, VisionService
from imgtag_inference.settings import InferenceSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SECRETS_SETTING = "IMGTAG_INFERENCE_SECRETS_KEY"


@dataclass
class Vision:
    service: VisionService | None  # None: no database configured
    close: Callable[[], Awaitable[None]]


async def open_vision(settings: InferenceSettings, executor: BlockingExecutor, images: ImageSource) -> Vision:
    """The providers' service, or None when the settings name no database."""
    if not settings.database_url:

        async def nothing() -> None:
            return None

        return Vision(service=None, close=nothing)
    secrets = FernetSecretBox(
        load_secrets_key(
            key=settings.secrets_key.get_secret_value(), key_file=settings.secrets_key_file, setting=SECRETS_SETTING
        ),
        purpose="imgtag-inference-vision-provider-keys",
        setting=SECRETS_SETTING,
    )
    engine = await open_database(settings, MIGRATIONS)  # type: ignore[arg-type]  # has the database fields
    http = HttpVisionClients()
    triton = TritonVisionClient()
    service = VisionService(
        store=VisionProviderRepository(session_factory(engine)),
        secrets=secrets,
        clients={
            ProviderKind.OPENAI_COMPATIBLE: http.openai,
            ProviderKind.OLLAMA: http.ollama,
            ProviderKind.TRITON: triton,
        },
        executor=executor,
        backoff=Backoff(settings.vision_backoff_initial_s, settings.vision_backoff_max_s),
        image_px=settings.vision_image_px,
        images_source=images,
        max_image_bytes=settings.max_image_bytes,
    )

    async def close() -> None:
        await http.close()
        await triton.close()
        await engine.dispose()

    return Vision(service=service, close=close)
