"""The inference service process: the gRPC server starts at once (NOT_SERVING), the models load
in the background, and health turns SERVING when they are loaded. Until then every RPC but
ListModels/GetModel answers UNAVAILABLE.

With the Triton backend, health follows the server: SERVING while Triton and the service's
models on it are ready (and the transport check passed at the last connection), NOT_SERVING and
UNAVAILABLE answers while it is not, SERVING again once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from grpc_health.v1 import health_pb2

from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.channels import open_channel
from imgtag_common.server import GrpcApp, start_app
from imgtag_inference.adapters.embedded import EmbeddedModelLoader
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.adapters.storage import StorageImageSource
from imgtag_inference.adapters.triton import TritonBackend, TritonModelLoader
from imgtag_inference.api.servicer import InferenceServicer
from imgtag_inference.domain.engine import InferenceEngine, TaggingRules
from imgtag_inference.domain.models import LoadedModels
from imgtag_inference.settings import InferenceSettings
from imgtag_inference.vision_wiring import open_vision

SERVICE_NAME = "imgtag.inference.v1.InferenceService"
log = logging.getLogger(__name__)


async def build_server(settings: InferenceSettings) -> GrpcApp:
    tokens = settings.service_tokens("inference")
    executor = BlockingExecutor(settings.blocking_workers)  # decoding, colours, OCR, loading
    inference_pool = BlockingExecutor(settings.inference_workers)  # forward passes
    options = dict(
        clip_model=settings.clip_model, ocr_enabled=settings.ocr_enabled, max_batch_size=settings.max_batch_size
    )
    triton: TritonBackend | None = None
    if settings.backend == "triton":
        triton = TritonBackend(settings.triton_url, timeout_s=settings.triton_timeout_s)
        backend = triton
        loader: EmbeddedModelLoader = TritonModelLoader(
            triton, executor, settings.models_dir, transport_check=settings.triton_transport_check, **options
        )
    else:
        backend = OnnxRuntimeBackend(inference_pool, intra_op_threads=settings.onnx_threads)
        loader = EmbeddedModelLoader(backend, executor, settings.models_dir, **options)
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
    vision = await open_vision(settings, executor, engine.images_source)  # type: ignore[arg-type]
    servicer = InferenceServicer(engine, loader.configured(), vision=vision.service)
    loading: asyncio.Task | None = None

    async def close() -> None:
        if loading is not None:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loading
        await vision.close()
        await storage_channel.close()
        if triton is not None:
            await triton.close()
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

    async def set_serving(serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await app.health.set(name, status)

    async def load() -> None:
        try:
            await engine.load(loader.load)
        except Exception:
            return  # logged by the engine; health stays NOT_SERVING, ListModels says why
        await set_serving(True)

    if triton is not None:
        assert isinstance(loader, TritonModelLoader)
        loading = asyncio.create_task(
            follow_triton(engine, triton, loader, set_serving, settings.triton_check_interval_s)
        )
    else:
        loading = asyncio.create_task(load())
    return app


async def follow_triton(
    engine: InferenceEngine,
    triton: TritonBackend,
    loader: TritonModelLoader,
    set_serving: Callable[[bool], Awaitable[None]],
    interval_s: float,
) -> None:
    """Health follows Triton for as long as the service runs. At every (re)connection the models'
    specs are read again (a refilled repository may hold new weights: new embedding spaces) and
    the transport is proved; until that succeeds, and whenever Triton is not ready, the engine
    is suspended (UNAVAILABLE) and health says NOT_SERVING. Asset pipelines wait on that."""
    serving = False
    reason = "connecting to Triton"
    engine.suspend(f"the inference backend is not ready: {reason}")
    while True:
        problem = ""
        if not await triton.ready(loader.required_models()):
            problem = f"Triton at {triton.url} or one of {', '.join(loader.required_models())} on it is not ready"
        elif not serving:
            try:
                loaded = await loader.load()
                await engine.load(_ready(loaded))
            except Exception as error:
                problem = f"Triton at {triton.url} cannot serve ImgTag's models: {type(error).__name__}: {error}"
        if problem:
            engine.suspend(problem)
            if serving or problem != reason:
                log.warning("inference backend unavailable", extra={"reason": problem})
            if serving:
                await set_serving(False)
            serving, reason = False, problem
        elif not serving:
            engine.resume()
            await set_serving(True)
            log.info("inference backend ready", extra={"triton": triton.url})
            serving, reason = True, ""
        await asyncio.sleep(interval_s)


def _ready(loaded: LoadedModels) -> Callable[[], Awaitable[LoadedModels]]:
    async def done() -> LoadedModels:
        return loaded

    return done
