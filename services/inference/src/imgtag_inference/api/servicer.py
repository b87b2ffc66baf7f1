"""InferenceService over gRPC: proto in, proto out; the engine does the work."""

from __future__ import annotations

import base64

from grpc.aio import ServicerContext

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_common.errors import ImgTagError, InvalidArgument, NotFound
from imgtag_common.pagination import clamp_page_size
from imgtag_inference.api import mappers
from imgtag_inference.api.vision import VisionApi
from imgtag_inference.domain.engine import InferenceEngine
from imgtag_inference.domain.models import ModelInfo
from imgtag_inference.domain.vision import VisionService


class InferenceServicer(VisionApi, inference_pb2_grpc.InferenceServiceServicer):
    def __init__(
        self, engine: InferenceEngine, configured: list[ModelInfo], *, vision: VisionService | None = None
    ) -> None:
        self._engine = engine
        self._configured = configured
        self._vision = vision

    async def TagImage(self, request: pb.TagImageRequest, context: ServicerContext) -> pb.TagImageResponse:
        mappers.check_tag_request(request)
        analysis = await self._engine.analyse(mappers.image_request(request.image, request))
        return mappers.analysis_to_proto(analysis, request.language)

    async def BatchTagImages(
        self, request: pb.BatchTagImagesRequest, context: ServicerContext
    ) -> pb.BatchTagImagesResponse:
        for r in request.requests:
            mappers.check_tag_request(r)
        results = await self._engine.analyse_many([mappers.image_request(r.image, r) for r in request.requests])
        out = pb.BatchTagImagesResponse()
        for r, result in zip(request.requests, results, strict=True):
            if isinstance(result, ImgTagError):
                out.results.append(pb.TagImageResult(id=r.image.id, status=mappers.error_status(result)))
            else:
                out.results.append(
                    pb.TagImageResult(
                        id=r.image.id,
                        response=mappers.analysis_to_proto(result, r.language),
                        status=mappers.ok_status(),
                    )
                )
        return out

    async def EmbedImages(self, request: pb.EmbedImagesRequest, context: ServicerContext) -> pb.EmbedImagesResponse:
        space = request.embedding_space or self._space_of(request.model)
        results = await self._engine.embed_images([mappers.image_request(i) for i in request.images], space)
        out = pb.EmbedImagesResponse()
        for image, result in zip(request.images, results, strict=True):
            if isinstance(result, ImgTagError):
                out.results.append(pb.ImageEmbeddingResult(id=image.id, status=mappers.error_status(result)))
            else:
                out.results.append(
                    pb.ImageEmbeddingResult(
                        id=image.id, embedding=mappers.embedding_to_proto(result), status=mappers.ok_status()
                    )
                )
        return out

    async def EmbedTexts(self, request: pb.EmbedTextsRequest, context: ServicerContext) -> pb.EmbedTextsResponse:
        space = request.embedding_space or self._space_of(request.model)
        embeddings = await self._engine.embed_texts(list(request.texts), space)
        return pb.EmbedTextsResponse(embeddings=[mappers.embedding_to_proto(e) for e in embeddings])

    async def GetEmbeddingSpaces(
        self, request: pb.GetEmbeddingSpacesRequest, context: ServicerContext
    ) -> pb.GetEmbeddingSpacesResponse:
        spaces, default_text = self._engine.spaces()
        image_default = next(s.name for s in spaces if s.image_model and not s.text_model)
        return pb.GetEmbeddingSpacesResponse(
            spaces=[mappers.space_to_proto(s) for s in spaces],
            default_text_space=default_text,
            default_image_space=image_default,
        )

    async def ListModels(self, request: pb.ListModelsRequest, context: ServicerContext) -> pb.ListModelsResponse:
        size = clamp_page_size(request.page_size, default=50, maximum=500)
        matches = mappers.model_filter(request.filter)
        models = [m for m in self._engine.models(self._configured) if matches(m)]
        start = 0
        if request.page_token:
            try:
                start = int(base64.urlsafe_b64decode(request.page_token.encode()).decode())
            except ValueError as error:
                raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from error
        page = models[start : start + size]
        more = start + size < len(models)
        token = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else ""
        return pb.ListModelsResponse(models=[mappers.model_to_proto(m) for m in page], next_page_token=token)

    async def GetModel(self, request: pb.GetModelRequest, context: ServicerContext) -> pb.Model:
        for model in self._engine.models(self._configured):
            if model.name == request.name:
                return mappers.model_to_proto(model)
        raise NotFound(f"no model {request.name!r}", reason="MODEL_NOT_FOUND")

    def _space_of(self, model: str) -> str:
        """The space of a model named the older way (EmbedImagesRequest.model); "" = default."""
        if not model:
            return ""
        for info in self._engine.models(self._configured):
            if info.name == model and info.embedding_space:
                return info.embedding_space
        raise NotFound(f"no embedding model {model!r}", reason="MODEL_NOT_FOUND")
