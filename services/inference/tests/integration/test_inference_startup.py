"""A second inference service, started by the test: NOT_SERVING and UNAVAILABLE until its models
are loaded, then SERVING with a CLIP model found in its models directory (cross-modal spaces).

Its CLIP text tower is a named pipe that the test fills only after checking the loading
state, so "still loading" is observed for certain, not by timing luck."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_dev.clip_models import make_clip
from imgtag_dev.processes import free_port, spawn, tail, wait_for_port
from imgtag_dev.testing import SKIMAGE_PHOTOS, as_service, channel_as

pytestmark = pytest.mark.integration


def _health(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        )


async def test_not_serving_until_models_load_then_clip_spaces_are_offered(stack, service_tokens, tmp_path) -> None:
    models = tmp_path / "models"
    clip_dir = models / "clip" / "Tiny-CLIP"
    make_clip(clip_dir)
    textual = clip_dir / "textual" / "model.onnx"
    textual_bytes = textual.read_bytes()
    textual.unlink()
    os.mkfifo(textual)
    if (stack.models_dir / "efficientnet-lite0").is_dir():  # reuse the stack's conversion
        shutil.copytree(stack.models_dir / "efficientnet-lite0", models / "efficientnet-lite0")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "IMGTAG_INFERENCE_PORT": str(port),
        "IMGTAG_INFERENCE_SERVICE_SECRET": stack.service_secret,
        "IMGTAG_INFERENCE_AUTH_TARGET": stack.service_target("auth"),
        "IMGTAG_INFERENCE_MODELS_DIR": str(models),
        "IMGTAG_INFERENCE_OCR_ENABLED": "false",
    }
    log = tmp_path / "inference.log"
    process = spawn("inference-under-test", [sys.executable, "-m", "imgtag_inference"], log_path=log, env=env)
    try:
        wait_for_port(port, timeout_s=60, process=process)
        assert _health(port) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert _health(port, "imgtag.inference.v1.InferenceService") == health_pb2.HealthCheckResponse.NOT_SERVING
        async with channel_as(f"127.0.0.1:{port}", as_service(service_tokens)) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=b"x")))
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE  # the catalog waits and retries
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetEmbeddingSpaces(pb.GetEmbeddingSpacesRequest())
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE

            feeder = threading.Thread(target=textual.write_bytes, args=(textual_bytes,), daemon=True)
            feeder.start()
            deadline = time.monotonic() + 60
            while _health(port) != health_pb2.HealthCheckResponse.SERVING:
                process.raise_if_exited()
                assert time.monotonic() < deadline, tail(log)
                await asyncio.sleep(0.1)

            spaces = await stub.GetEmbeddingSpaces(pb.GetEmbeddingSpacesRequest())
            (clip,) = [s for s in spaces.spaces if s.cross_modal]
            assert clip.name.startswith("clip-tiny-clip:") and clip.dimension == 16
            assert (clip.image_model, clip.text_model) == (
                "models/clip-tiny-clip-visual",
                "models/clip-tiny-clip-textual",
            )
            assert spaces.default_text_space.startswith("universal-sentence-encoder-multilingual:")

            texts = await stub.EmbedTexts(pb.EmbedTextsRequest(texts=["a photo of cat"], embedding_space=clip.name))
            (text,) = texts.embeddings
            assert text.embedding_space == clip.name and text.model == "models/clip-tiny-clip-textual"
            reply = await stub.TagImage(
                pb.TagImageRequest(
                    image=pb.ImageInput(data=(SKIMAGE_PHOTOS / "chelsea.png").read_bytes()), want_embeddings=True
                )
            )
            assert [(e.model, e.dimension) for e in reply.image_embeddings] == [
                ("models/efficientnet-lite0", 1280),
                ("models/clip-tiny-clip-visual", 16),
            ]
            image = np.array(reply.image_embeddings[1].values)
            assert abs(np.linalg.norm(image) - 1) < 1e-4 and reply.image_embeddings[1].embedding_space == clip.name
            images = await stub.EmbedImages(
                pb.EmbedImagesRequest(
                    images=[pb.ImageInput(id="c", data=(SKIMAGE_PHOTOS / "chelsea.png").read_bytes())],
                    embedding_space=clip.name,
                )
            )
            np.testing.assert_allclose(images.results[0].embedding.values, image, atol=1e-5)
    finally:
        process.stop()
