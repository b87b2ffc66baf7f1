"""The Triton backend against a real Triton server (the session's, CPU): the same answers as the
embedded runtime for the same inputs on real photos, inputs that arrive byte for byte, the
configs' contract, and health that follows the server through a stop and a restart.

Liveness proves nothing on its own (a GPU host's Triton was ready and answering while its
python-backend models received their large inputs as one repeated byte), so every test here
compares what came back with what the in-process runtime computes, or with digests of what was
sent."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_catalog.adapters.inference import InferenceClient
from imgtag_catalog.domain import pipeline
from imgtag_common.errors import Unavailable
from imgtag_common.service_tokens import ServiceTokens
from imgtag_dev.testing import SKIMAGE_PHOTOS, as_service, channel_as
from imgtag_inference.adapters.embedded import CLASSIFIER, TEXT_ENCODER
from imgtag_inference.adapters.triton import TRANSPORT_CHECK, TritonBackend, TritonModelLoader
from imgtag_inference.domain import images
from imgtag_inference.domain.engine import ImageRequest, InferenceEngine
from imgtag_inference.server import build_server
from imgtag_inference.settings import InferenceSettings

from .conftest import CLIP_DIRECTORY

# Photos of things the classifier knows, and some it does not (a person, textures, a galaxy).
PHOTOS = [
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",
    "astronaut.png",
    "grass.png",
    "hubble_deep_field.jpg",
]
TEXTS = ["a cat on a sofa", "一只猫", "espresso in a white cup", "火箭发射", "motorcycle", "", "雪山 snow mountain"]


def _photo(name: str) -> bytes:
    return (SKIMAGE_PHOTOS / name).read_bytes()


def _pixels(size: int = 224) -> np.ndarray:
    return np.stack([images.classifier_pixels(images.decode(_photo(n)), size) for n in PHOTOS])


async def _loaded(triton, executor, models_dir):
    backend = TritonBackend(triton.url, timeout_s=30)
    loader = TritonModelLoader(backend, executor, models_dir, clip_model=CLIP_DIRECTORY, ocr_enabled=False)
    return backend, loader, await loader.load()


async def test_classifier_outputs_through_triton_equal_the_embedded_runtime_on_real_photos(
    triton, embedded, executor, models_dir
) -> None:
    reference, reference_models = embedded
    backend, _, loaded = await _loaded(triton, executor, models_dir)
    try:
        # Same model, same version: vectors made on Triton land in the embedded runtime's space.
        assert loaded.classifier == reference_models.classifier
        info = next(i for i in loaded.infos if i.name == f"models/{CLASSIFIER}")
        assert (info.backend, info.device, info.state.value) == ("triton", "CPU", "READY")  # CPU variant's instances
        pixels = _pixels()
        assert pixels.dtype == np.uint8 and pixels.shape == (len(PHOTOS), 224, 224, 3)  # 147 KB per image
        want = await reference.run(CLASSIFIER, {"pixels": pixels})
        got = await backend.run(CLASSIFIER, {"pixels": pixels})
        assert got["logits"].shape == (len(PHOTOS), 1000) and got["embedding"].shape == (len(PHOTOS), 1280)
        np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(got["embedding"], want["embedding"], rtol=1e-5, atol=1e-5)
        # A lone image (batch 1) too, and the ranking of classes is the same for every photo.
        one = await backend.run(CLASSIFIER, {"pixels": pixels[:1]})
        np.testing.assert_allclose(one["logits"][0], want["logits"][0], rtol=1e-5, atol=1e-4)
        assert (got["logits"].argmax(1) == want["logits"].argmax(1)).all()
    finally:
        await backend.close()


async def test_tags_and_embeddings_of_the_engine_on_triton_equal_the_embedded_engine(
    triton, embedded, executor, models_dir
) -> None:
    reference, reference_models = embedded
    backend, _, loaded = await _loaded(triton, executor, models_dir)

    async def ready_with(models):
        async def done():
            return models

        return done

    try:
        on_triton = InferenceEngine(backend=backend, executor=executor)
        await on_triton.load(await ready_with(loaded))
        in_process = InferenceEngine(backend=reference, executor=executor)
        await in_process.load(await ready_with(reference_models))
        requests = [ImageRequest(id=n, data=_photo(n), want_embeddings=True) for n in PHOTOS]
        got, want = await on_triton.analyse_many(requests), await in_process.analyse_many(requests)
        for name, g, w in zip(PHOTOS, got, want, strict=True):
            assert [(t.label, t.model) for t in g.tags] == [(t.label, t.model) for t in w.tags], name
            np.testing.assert_allclose([t.confidence for t in g.tags], [t.confidence for t in w.tags], atol=1e-5)
            assert [(e.model, e.space) for e in g.embeddings] == [(e.model, e.space) for e in w.embeddings]
            for ge, we in zip(g.embeddings, w.embeddings, strict=True):
                np.testing.assert_allclose(ge.values, we.values, atol=1e-5)
        labels = {n: {t.label for t in g.tags} for n, g in zip(PHOTOS, got, strict=True)}
        assert "cat" in labels["chelsea.png"] and "espresso" in labels["coffee.png"]
        assert on_triton.spaces() == in_process.spaces()  # text, visual and CLIP spaces alike
    finally:
        await backend.close()


async def test_text_and_clip_vectors_through_triton_equal_the_embedded_runtime(
    triton, embedded, executor, models_dir
) -> None:
    reference, reference_models = embedded
    backend, _, loaded = await _loaded(triton, executor, models_dir)
    try:
        assert loaded.text == reference_models.text
        texts = np.array(TEXTS, dtype=object)  # one request, as one embedded pass: same padding
        got = await backend.run(TEXT_ENCODER, {"inputs": texts})
        want = await reference.run(TEXT_ENCODER, {"inputs": texts})
        assert got["outputs"].shape == (len(TEXTS), 512)
        np.testing.assert_allclose(got["outputs"], want["outputs"], atol=1e-5)

        clip = loaded.clip
        assert clip is not None and clip.space == reference_models.clip.space and clip.visual_input == "pixels"
        pixels = np.stack([images.clip_pixels(images.decode(_photo(n)), clip.image_size) for n in PHOTOS])
        got = await backend.run(clip.visual_model, {"pixels": pixels})
        want = await reference.run(clip.visual_model, {"pixels": pixels})
        np.testing.assert_allclose(got[clip.visual_output], want[clip.visual_output], rtol=1e-5, atol=1e-5)
        tokens = clip.tokenize(["a photo of cat", "猫", "car"])
        got = await backend.run(clip.textual_model, tokens)
        want = await reference.run(clip.textual_model, tokens)
        np.testing.assert_allclose(got[clip.textual_output], want[clip.textual_output], atol=1e-6)
    finally:
        await backend.close()


async def test_real_photo_pixels_and_texts_arrive_at_the_server_byte_for_byte(triton) -> None:
    backend = TritonBackend(triton.url, timeout_s=30)
    try:
        await backend.check_transport()  # what the service does before it serves
        pixels = _pixels().reshape(len(PHOTOS), -1)
        texts = [*TEXTS, "长" * 20_000]
        out = await backend.run(TRANSPORT_CHECK, {"rows": pixels, "texts": np.array(texts, dtype=object)})
        assert [d.decode() for d in out["rows_sha256"]] == [hashlib.sha256(r.tobytes()).hexdigest() for r in pixels]
        assert [d.decode() for d in out["texts_sha256"]] == [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    finally:
        await backend.close()


def test_the_configs_the_service_relies_on_are_those_in_deploy_triton(triton) -> None:
    import tritonclient.grpc as client
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from imgtag_dev.triton import FILL_SCRIPT

    with client.InferenceServerClient(triton.url) as server:
        for model in (CLASSIFIER, TEXT_ENCODER, TRANSPORT_CHECK):
            committed = text_format.Parse(
                (FILL_SCRIPT.parent / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
            )
            served = server.get_model_config(model).config
            assert [(i.name, i.data_type, list(i.dims)) for i in served.input] == [
                (i.name, i.data_type, list(i.dims)) for i in committed.input
            ]
            assert [(o.name, o.data_type, list(o.dims)) for o in served.output] == [
                (o.name, o.data_type, list(o.dims)) for o in committed.output
            ]
            assert served.max_batch_size == committed.max_batch_size
            assert served.HasField("dynamic_batching") == committed.HasField("dynamic_batching")
        classifier = server.get_model_config(CLASSIFIER).config
        assert classifier.parameters["imgtag_version"].string_value  # the weights' version travels
        # float32 pixels never travel: every image input is uint8 NHWC at the model's size.
        for model in (CLASSIFIER, "clip-tiny-clip-visual"):
            (pixels,) = server.get_model_config(model).config.input
            assert pixels.data_type == model_config_pb2.TYPE_UINT8 and list(pixels.dims)[-1] == 3


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="imgtag.inference.v1.InferenceService"), timeout=5
        )
        return reply.status


async def _until(port: int, status: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while await _health(port) != status:
        assert time.monotonic() < deadline, f"health never became {status}"
        await asyncio.sleep(0.1)


async def test_the_service_on_triton_is_not_serving_while_triton_is_down_and_serves_again_after_restart(
    triton, models_dir
) -> None:
    secret = secrets.token_urlsafe(32)
    settings = InferenceSettings(
        port=0,
        service_secret=secret,
        triton_url=triton.url,
        models_dir=models_dir,
        clip_model=CLIP_DIRECTORY,
        ocr_enabled=False,
        triton_check_interval_s=0.3,
        triton_timeout_s=10,
    )
    assert settings.backend == "triton"  # a Triton URL alone selects the backend
    app = await build_server(settings)
    target = f"127.0.0.1:{app.port}"
    try:
        await _until(app.port, health_pb2.HealthCheckResponse.SERVING, 60)
        async with channel_as(target, as_service(ServiceTokens("tests", secret))) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            catalog = InferenceClient(channel, timeout_s=20)  # the catalog pipeline's own adapter
            reply = await stub.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=_photo("chelsea.png"))))
            assert "cat" in {t.label for t in reply.tags}

            triton.stop()
            await _until(app.port, health_pb2.HealthCheckResponse.NOT_SERVING, 30)
            assert not await catalog.ready()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=_photo("coffee.png"))))
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError) as caught:  # a batch fails whole, not per image
                await stub.BatchTagImages(
                    pb.BatchTagImagesRequest(
                        requests=[pb.TagImageRequest(image=pb.ImageInput(data=_photo("rocket.jpg")))]
                    )
                )
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            # What the catalog's pipeline sees: an error it waits on, not one that fails the asset.
            with pytest.raises(Unavailable) as waited:
                await catalog.embed_texts(["猫"])
            assert isinstance(waited.value, pipeline._WAIT)

            triton.start()
            await _until(app.port, health_pb2.HealthCheckResponse.SERVING, 60)
            assert await catalog.ready()
            reply = await stub.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=_photo("coffee.png"))))
            assert "espresso" in {t.label for t in reply.tags}
    finally:
        await app.stop(1)


async def test_models_of_a_suspended_engine_are_listed_failed_with_the_reason(triton, executor, models_dir) -> None:
    backend, loader, loaded = await _loaded(triton, executor, models_dir)
    try:
        engine = InferenceEngine(backend=backend, executor=executor)

        async def done():
            return loaded

        await engine.load(done)
        engine.suspend("Triton at x is not ready")
        states = {m.name: (m.state.value, m.last_error) for m in engine.models(loader.configured())}
        assert states[f"models/{CLASSIFIER}"] == ("FAILED", "Triton at x is not ready")
        with pytest.raises(Unavailable):
            await engine.embed_texts(["猫"])
        engine.resume()
        assert len(await engine.embed_texts(["猫"])) == 1
    finally:
        await backend.close()
