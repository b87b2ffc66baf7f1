"""The inference service process: the gRPC server starts at once (NOT_SERVING), the models load
in the background, and health turns SERVING when they are loaded. Until then every RPC but
ListModels/GetModel answers UNAVAILABLE."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from grpc_health.v1 import health_pb2

from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.channels import open_channel
from imgtag_common.server import GrpcApp, start_app
from imgtag_inference.adapters.embedded import EmbeddedModelLoader
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.adapters.storage import StorageImageSource
from imgtag_inference.api.servicer import InferenceServicer
from imgtag_inference.domain.engine import InferenceEngine, TaggingRules
from imgtag_inference.settings import InferenceSettings

SERVICE_NAME = "imgtag.inference.v1.InferenceService"
log = logging.getLogger(__name__)


async def build_server(settings: InferenceSettings) -> GrpcApp:
    if settings.triton_url:
        log.warning("IMGTAG_INFERENCE_TRITON_URL is set, but the Triton backend is not built yet: using ONNX Runtime")
    tokens = settings.service_tokens("inference")
    executor = BlockingExecutor(settings.blocking_workers)  # decoding, colours, OCR, loading
    inference_pool = BlockingExecutor(settings.inference_workers)  # forward passes
    backend = OnnxRuntimeBackend(inference_pool, intra_op_threads=settings.onnx_threads)
    storage_channel = open_channel(
        settings.storage_target, tokens=tokens, max_message_bytes=settings.max_message_bytes, default_timeout_s=60
    )
    engine = InferenceEngine(
        backend=backend,
        executor=executor,
        images_source=StorageImageSource(storage_channel),
        rules=TaggingRules(
            min_confidence=settings.min_confidence,
            texture_confidence=settings.texture_confidence,
            min_leading_class=settings.min_leading_class,
            colour_min_share=settings.colour_min_share,
        ),
        max_batch=settings.max_batch_size,
        batch_window_s=settings.batch_window_ms / 1000,
        max_image_bytes=settings.max_image_bytes,
    )
    loader = EmbeddedModelLoader(
        backend,
        executor,
        settings.models_dir,
        clip_model=settings.clip_model,
        ocr_enabled=settings.ocr_enabled,
        max_batch_size=settings.max_batch_size,
    )
    servicer = InferenceServicer(engine, loader.configured())
    loading: asyncio.Task | None = None

    async def close() -> None:
        if loading is not None:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loading
        await storage_channel.close()
        inference_pool.shutdown()
        executor.shutdown()

    app = await start_app(
        settings,
        services=[
            (SERVICE_NAME, lambda server: inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server))
        ],
        tokens=tokens,
        cleanups=[close],
        serving=False,
    )

    async def load() -> None:
        try:
            await engine.load(loader.load)
        except Exception:
            return  # logged by the engine; health stays NOT_SERVING, ListModels says why
        for name in ("", SERVICE_NAME):
            await app.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    loading = asyncio.create_task(load())
    return app
