"""The inference service as the pipeline's `Analyzer` and `Describer`."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgtag.inference.v1 import inference_pb2, inference_pb2_grpc
from imgtag_catalog.domain.models import AssetRecord
from imgtag_catalog.domain.pipeline import Analysis, Description, PredictedTag
from imgtag_catalog.domain.search import Spaces, Vector
from imgtag_common.errors import Unavailable, Unimplemented, from_rpc_error

INFERENCE_SERVICE = "imgtag.inference.v1.InferenceService"


class InferenceClient:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        timeout_s: float = 120.0,
        describe_timeout_s: float = 900.0,
        read_text: bool = False,
    ) -> None:
        self._stub = inference_pb2_grpc.InferenceServiceStub(channel)
        self._read_text = read_text
        self._health = health_pb2_grpc.HealthStub(channel)
        self._timeout_s = timeout_s
        # a provider's attempts, each up to its timeout, with backoff between them
        self._describe_timeout_s = describe_timeout_s

    async def analyze(self, asset: AssetRecord, image: bytes) -> Analysis:
        request = inference_pb2.TagImageRequest(
            image=inference_pb2.ImageInput(id=asset.name, data=image),
            want_caption=True,
            want_embeddings=True,
            want_ocr=self._read_text,
        )
        try:
            reply = await self._stub.TagImage(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        return Analysis(
            tags=[
                PredictedTag(
                    label=t.label,
                    display_names=dict(t.display_names) or {"en": t.display_name or t.label},
                    category=t.category,
                    confidence=t.confidence,
                    model=t.model,
                )
                for t in reply.tags
            ],
            caption=reply.caption,
            recognized_text=reply.ocr_text,
            image_vectors=[_vector(e) for e in reply.image_embeddings],
        )

    async def describe(self, asset: AssetRecord, image: bytes) -> Description:
        request = inference_pb2.DescribeImageRequest(image=inference_pb2.ImageInput(id=asset.name, data=image))
        try:
            reply = await self._stub.DescribeImage(request, timeout=self._describe_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        d = reply.description
        return Description(
            caption=d.caption,
            tags=[
                PredictedTag(
                    label=t.label,
                    display_names=dict(t.display_names) or {"en": t.label},
                    category=t.category,
                    confidence=t.confidence,
                    model=t.model or d.provider,
                )
                for t in d.tags
            ],
            provider=d.provider,
        )

    async def spaces(self) -> Spaces:
        """The spaces inference offers now; empty names while it is down or loading (search then
        runs on what remains)."""
        try:
            reply = await self._stub.GetEmbeddingSpaces(inference_pb2.GetEmbeddingSpacesRequest(), timeout=10)
        except grpc.aio.AioRpcError as error:
            converted = from_rpc_error(error)
            if isinstance(converted, Unavailable | Unimplemented):
                return Spaces(text="", visual="")
            raise converted from error
        clip = next((s.name for s in reply.spaces if s.cross_modal), "")
        return Spaces(text=reply.default_text_space, visual=reply.default_image_space, clip=clip)

    async def embed_texts(self, texts: list[str], *, space: str = "") -> list[Vector]:
        request = inference_pb2.EmbedTextsRequest(texts=texts, embedding_space=space)
        try:
            reply = await self._stub.EmbedTexts(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        return [_vector(e) for e in reply.embeddings]

    async def embed_image(self, image: bytes) -> list[Vector]:
        """The image in every image space at once (one TagImage pass gives them all)."""
        request = inference_pb2.TagImageRequest(image=inference_pb2.ImageInput(data=image), want_embeddings=True)
        try:
            reply = await self._stub.TagImage(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        return [_vector(e) for e in reply.image_embeddings]

    async def ready(self) -> bool:
        """Whether the inference service says it is SERVING (its models are loaded)."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=INFERENCE_SERVICE), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def _vector(embedding: inference_pb2.Embedding) -> Vector:
    return Vector(space=embedding.embedding_space, model=embedding.model, values=list(embedding.values))
