"""InferenceService over gRPC on the session stack (real models, real storage), and ListModels
through the gateway."""

from __future__ import annotations

import hashlib
import uuid

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import inference_pb2_grpc
from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_dev.testing import SKIMAGE_PHOTOS, as_service, as_user, channel_as, expect_error
from imgtag_inference.domain.engine import COLOUR_MODEL

pytestmark = pytest.mark.integration


def photo(name: str) -> bytes:
    return (SKIMAGE_PHOTOS / name).read_bytes()


@pytest.fixture
async def inference(stack, service_tokens):
    """The internal RPCs, called as another ImgTag service (the catalog) would."""
    async with channel_as(stack.service_target("inference"), as_service(service_tokens)) as channel:
        yield inference_pb2_grpc.InferenceServiceStub(channel)


def _status(error: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return error.code()


async def test_the_service_is_serving_once_the_stack_is_up(stack) -> None:
    async with channel_as(stack.service_target("inference")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "imgtag.inference.v1.InferenceService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_tag_image_gives_bilingual_tags_and_embeddings_with_their_space(inference) -> None:
    reply = await inference.TagImage(
        pb.TagImageRequest(
            image=pb.ImageInput(id="cat", data=photo("chelsea.png")), want_embeddings=True, language="zh"
        )
    )
    tags = {t.label: t for t in reply.tags}
    assert dict(tags["cat"].display_names) == {"en": "cat", "zh": "猫"}
    assert tags["cat"].display_name == "猫" and tags["cat"].category == "animal"
    assert tags["cat"].model == "models/efficientnet-lite0" and 0.5 <= tags["cat"].confidence <= 1
    assert tags["animal"].display_names["zh"] == "动物"
    assert any(t.category == "color" and t.model == COLOUR_MODEL for t in reply.tags)
    assert reply.caption == "" and set(reply.models) >= {"models/efficientnet-lite0", COLOUR_MODEL}
    spaces = await inference.GetEmbeddingSpaces(pb.GetEmbeddingSpacesRequest())
    (embedding,) = reply.image_embeddings
    assert embedding.model == "models/efficientnet-lite0" and embedding.dimension == 1280
    assert embedding.embedding_space == spaces.default_image_space
    assert abs(np.linalg.norm(np.array(embedding.values)) - 1) < 1e-4


async def test_a_garbage_image_in_a_batch_fails_alone(inference) -> None:
    requests = [
        pb.TagImageRequest(image=pb.ImageInput(id="coffee", data=photo("coffee.png"))),
        pb.TagImageRequest(image=pb.ImageInput(id="junk", data=b"definitely not an image")),
        pb.TagImageRequest(image=pb.ImageInput(id="rocket", data=photo("rocket.jpg")), want_embeddings=True),
    ]
    reply = await inference.BatchTagImages(pb.BatchTagImagesRequest(requests=requests))
    assert [r.id for r in reply.results] == ["coffee", "junk", "rocket"]
    assert [r.status.code for r in reply.results] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0]
    assert "coffee" in {t.label for t in reply.results[0].response.tags}
    assert not reply.results[1].HasField("response") and reply.results[1].status.message
    assert "rocket" in {t.label for t in reply.results[2].response.tags}
    assert len(reply.results[2].response.image_embeddings) == 1


async def test_a_single_undecodable_image_is_invalid_argument(inference) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=b"GIF89a broken")))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_text_embeddings_in_the_default_space_match_across_languages(inference) -> None:
    reply = await inference.EmbedTexts(pb.EmbedTextsRequest(texts=["猫", "cat", "car"]))
    spaces = await inference.GetEmbeddingSpaces(pb.GetEmbeddingSpacesRequest())
    cat_zh, cat_en, car = (np.array(e.values) for e in reply.embeddings)
    assert {e.embedding_space for e in reply.embeddings} == {spaces.default_text_space}
    assert {e.model for e in reply.embeddings} == {"models/universal-sentence-encoder-multilingual"}
    assert cat_zh @ cat_en > cat_zh @ car + 0.3


async def test_spaces_say_which_exist_and_unknown_ones_are_not_found(inference) -> None:
    spaces = await inference.GetEmbeddingSpaces(pb.GetEmbeddingSpacesRequest())
    by_name = {s.name: s for s in spaces.spaces}
    assert by_name[spaces.default_text_space].text_model == "models/universal-sentence-encoder-multilingual"
    assert by_name[spaces.default_image_space].image_model == "models/efficientnet-lite0"
    assert by_name[spaces.default_image_space].dimension == 1280
    assert not any(s.cross_modal for s in spaces.spaces)  # no CLIP files in the test stack
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference.EmbedTexts(pb.EmbedTextsRequest(texts=["x"], embedding_space="clip-gone:000000000000"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_images_are_read_by_storage_key(stack, service_tokens, inference) -> None:
    data = photo("motorcycle_right.png")
    key = f"tests/inference/{uuid.uuid4()}.png"
    async with channel_as(stack.service_target("storage"), as_service(service_tokens)) as channel:
        storage = storage_pb2_grpc.StorageServiceStub(channel)

        async def messages():
            spec = storage_pb2.WriteObjectSpec(
                key=key, content_type="image/png", expected_sha256=hashlib.sha256(data).hexdigest()
            )
            yield storage_pb2.WriteObjectRequest(spec=spec)
            yield storage_pb2.WriteObjectRequest(chunk=data)

        await storage.WriteObject(messages())
    reply = await inference.BatchTagImages(
        pb.BatchTagImagesRequest(
            requests=[
                pb.TagImageRequest(image=pb.ImageInput(id="stored", storage_key=key)),
                pb.TagImageRequest(image=pb.ImageInput(id="missing", storage_key=f"tests/inference/{uuid.uuid4()}")),
            ]
        )
    )
    assert "motorcycle" in {t.label for t in reply.results[0].response.tags}
    assert reply.results[1].status.code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_ocr_reads_a_document_when_asked(inference) -> None:
    reply = await inference.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=photo("page.png")), want_ocr=True))
    assert "Region-based segmentation" in reply.ocr_text
    assert "models/rapidocr-pp-ocrv6" in reply.models
    assert not [t for t in reply.tags if t.category != "color"]  # a document: no object tags


async def test_internal_rpcs_refuse_users(stack, user) -> None:
    async with channel_as(stack.service_target("inference"), as_user(user)) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.EmbedTexts(pb.EmbedTextsRequest(texts=["cat"]))
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_admins_list_ready_models_through_the_gateway(gateway_url, admin, user) -> None:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        models = client.get("/v1/models", headers=admin.headers)
        assert models.status_code == 200, models.text
        by_name = {m["name"]: m for m in models.json()["models"]}
        classifier = by_name["models/efficientnet-lite0"]
        assert classifier["state"] == "READY" and classifier["task"] == "IMAGE_TAGGING"
        assert classifier["embeddingSpace"] == f"efficientnet-lite0:{classifier['version']}"
        assert by_name["models/universal-sentence-encoder-multilingual"]["embeddingDimension"] == 512
        only_text = client.get("/v1/models", params={"filter": "task = TEXT_EMBEDDING"}, headers=admin.headers).json()
        assert [m["name"] for m in only_text["models"]] == ["models/universal-sentence-encoder-multilingual"]
        one = client.get("/v1/models/efficientnet-lite0", headers=admin.headers)
        assert one.status_code == 200 and one.json()["name"] == "models/efficientnet-lite0"
        expect_error(client.get("/v1/models", params={"filter": "colour = RED"}, headers=admin.headers), 400, 3)
        expect_error(client.get("/v1/models", headers=user.headers), 403, 7)
