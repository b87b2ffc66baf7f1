"""The vision-language RPCs of InferenceService (a part of the servicer): providers in and out
of protobuf (the API key only ever comes in; has_api_key goes out), update masks, and
DescribeImage / TestVisionProvider answers."""

from __future__ import annotations

import base64
from datetime import timedelta

from google.protobuf import duration_pb2, empty_pb2
from grpc.aio import ServicerContext

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import vision_pb2
from imgtag_common.errors import FailedPrecondition, InvalidArgument
from imgtag_common.pagination import clamp_page_size
from imgtag_common.resources import to_timestamp
from imgtag_inference.domain.vision import (
    EDITABLE,
    Description,
    ProviderDraft,
    ProviderKind,
    VisionProvider,
    VisionService,
    provider_id_of,
)

_KIND = {
    ProviderKind.OPENAI_COMPATIBLE: vision_pb2.VisionProvider.OPENAI_COMPATIBLE,
    ProviderKind.OLLAMA: vision_pb2.VisionProvider.OLLAMA,
    ProviderKind.TRITON: vision_pb2.VisionProvider.TRITON,
}
_KIND_IN = {v: k for k, v in _KIND.items()}


class VisionApi:
    """Needs `self._vision` (None when the service has no database)."""

    _vision: VisionService | None

    def _providers(self) -> VisionService:
        if self._vision is None:
            raise FailedPrecondition(
                "this inference service has no database (IMGTAG_INFERENCE_DATABASE_URL), so no "
                "vision-language provider can be configured",
                reason="VISION_PROVIDER_NOT_CONFIGURED",
            )
        return self._vision

    async def DescribeImage(
        self, request: pb.DescribeImageRequest, context: ServicerContext
    ) -> pb.DescribeImageResponse:
        description = await self._providers().describe(data=request.image.data, storage_key=request.image.storage_key)
        return pb.DescribeImageResponse(description=description_to_proto(description))

    async def CreateVisionProvider(
        self, request: vision_pb2.CreateVisionProviderRequest, context: ServicerContext
    ) -> vision_pb2.VisionProvider:
        draft = draft_from_proto(request.vision_provider, EDITABLE)
        created = await self._providers().create(draft, request.vision_provider_id)
        return provider_to_proto(created)

    async def GetVisionProvider(
        self, request: vision_pb2.GetVisionProviderRequest, context: ServicerContext
    ) -> vision_pb2.VisionProvider:
        return provider_to_proto(await self._providers().get(provider_id_of(request.name)))

    async def ListVisionProviders(
        self, request: vision_pb2.ListVisionProvidersRequest, context: ServicerContext
    ) -> vision_pb2.ListVisionProvidersResponse:
        size = clamp_page_size(request.page_size, default=50, maximum=500)
        after = _decode_token(request.page_token)
        page = await self._providers().list_page(after_id=after, limit=size + 1)
        token = base64.urlsafe_b64encode(page[size - 1].id.encode()).decode() if len(page) > size else ""
        return vision_pb2.ListVisionProvidersResponse(
            vision_providers=[provider_to_proto(p) for p in page[:size]], next_page_token=token
        )

    async def UpdateVisionProvider(
        self, request: vision_pb2.UpdateVisionProviderRequest, context: ServicerContext
    ) -> vision_pb2.VisionProvider:
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("update_mask names no field", reason="EMPTY_UPDATE_MASK")
        unknown = sorted(set(paths) - set(EDITABLE))
        if unknown:
            raise InvalidArgument(
                f"cannot update {', '.join(unknown)}; updatable: {', '.join(EDITABLE)}", reason="INVALID_UPDATE_MASK"
            )
        draft = draft_from_proto(request.vision_provider, paths, explicit=True)
        updated = await self._providers().update(provider_id_of(request.vision_provider.name), draft)
        return provider_to_proto(updated)

    async def DeleteVisionProvider(
        self, request: vision_pb2.DeleteVisionProviderRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self._providers().delete(provider_id_of(request.name))
        return empty_pb2.Empty()

    async def TestVisionProvider(
        self, request: pb.TestVisionProviderRequest, context: ServicerContext
    ) -> pb.TestVisionProviderResponse:
        description = await self._providers().test(provider_id_of(request.name), request.image)
        latency = duration_pb2.Duration()
        latency.FromTimedelta(timedelta(seconds=description.latency_s))
        return pb.TestVisionProviderResponse(
            description=description_to_proto(description),
            raw_output=description.raw_output,
            latency=latency,
            attempts=description.attempts,
        )


def _decode_token(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError as error:
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from error


def draft_from_proto(m: vision_pb2.VisionProvider, paths, *, explicit: bool = False) -> ProviderDraft:
    """The fields named in `paths`. On create (explicit False) a field left at its zero value
    or unset counts as not given, so the defaults apply; on update, a named field is taken as
    it is (an empty api_key removes the key)."""
    wanted = set(paths)

    def given(field: str, present: bool) -> bool:
        return field in wanted and (explicit or present)

    kind = None
    if given("kind", m.kind != vision_pb2.VisionProvider.KIND_UNSPECIFIED):
        if m.kind not in _KIND_IN:
            raise InvalidArgument("kind must be OPENAI_COMPATIBLE, OLLAMA or TRITON", reason="INVALID_VISION_PROVIDER")
        kind = _KIND_IN[m.kind]
    timeout_s = None
    if given("timeout", m.HasField("timeout")):
        timeout_s = m.timeout.ToTimedelta().total_seconds()
    return ProviderDraft(
        display_name=m.display_name if given("display_name", bool(m.display_name)) else None,
        kind=kind,
        endpoint=m.endpoint if given("endpoint", bool(m.endpoint)) else None,
        model=m.model if given("model", bool(m.model)) else None,
        api_key=m.api_key if given("api_key", bool(m.api_key)) else None,
        prompt=m.prompt if given("prompt", bool(m.prompt)) else None,
        language=m.language if given("language", bool(m.language)) else None,
        concurrency=m.concurrency if given("concurrency", m.HasField("concurrency")) else None,
        timeout_s=timeout_s,
        max_attempts=m.max_attempts if given("max_attempts", m.HasField("max_attempts")) else None,
        json_mode=m.json_mode if given("json_mode", m.HasField("json_mode")) else None,
        max_output_tokens=m.max_output_tokens if given("max_output_tokens", m.HasField("max_output_tokens")) else None,
        active=m.active if given("active", m.HasField("active")) else None,
    )


def provider_to_proto(p: VisionProvider) -> vision_pb2.VisionProvider:
    """Everything but the key: has_api_key says whether one is stored."""
    timeout = duration_pb2.Duration()
    timeout.FromTimedelta(timedelta(seconds=p.timeout_s))
    return vision_pb2.VisionProvider(
        name=p.name,
        display_name=p.display_name,
        kind=_KIND[p.kind],
        endpoint=p.endpoint,
        model=p.model,
        has_api_key=bool(p.sealed_api_key),
        prompt=p.prompt,
        language=p.language,
        concurrency=p.concurrency,
        timeout=timeout,
        max_attempts=p.max_attempts,
        json_mode=p.json_mode,
        max_output_tokens=p.max_output_tokens,
        active=p.active,
        create_time=to_timestamp(p.create_time),
        update_time=to_timestamp(p.update_time),
    )


def description_to_proto(d: Description) -> pb.ImageDescription:
    provider = d.provider
    return pb.ImageDescription(
        caption=d.parsed.caption,
        language=provider.language,
        tags=[
            pb.PredictedTag(
                label=t.label,
                display_name=t.names.get(provider.language.split("-")[0].lower(), t.label),
                category=t.category,
                confidence=t.confidence,
                model=provider.name,
                display_names=t.names,
            )
            for t in d.parsed.tags
        ],
        provider=provider.name,
        model=provider.model,
        truncated=d.parsed.truncated,
    )
