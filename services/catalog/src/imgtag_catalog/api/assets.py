"""The asset RPCs of CatalogService: protobuf in, protobuf out; rules live in domain/."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

from google.api import httpbody_pb2
from google.protobuf import empty_pb2
from grpc.aio import ServicerContext

from imgtag.catalog.v1 import assets_pb2, search_pb2
from imgtag_catalog.api.mappers import (
    asset_to_proto,
    batch_to_proto,
    changes_from_proto,
    status_of,
    variant_from_proto,
)
from imgtag_catalog.domain.assets import (
    AssetService,
    ContentRef,
    Outcome,
    Selection,
    UploadRequest,
    available_variants,
    parse_asset_name,
)
from imgtag_catalog.domain.content_urls import ContentSigner
from imgtag_catalog.domain.models import AssetRecord, BatchOutcome, Variant
from imgtag_common.auth import current_principal
from imgtag_common.errors import ImgTagError, InvalidArgument
from imgtag_common.streams import peek_first

log = logging.getLogger(__name__)

# An original never changes, and rendition keys change whenever a rendition does.
_IMMUTABLE = "private, max-age=31536000, immutable"


def request_language(context: ServicerContext, explicit: str = "") -> str:
    """The caller's language: the request's own field, else Accept-Language's first choice."""
    if explicit:
        return explicit
    for key, value in context.invocation_metadata() or ():
        if key == "accept-language":
            text = value if isinstance(value, str) else value.decode(errors="replace")
            return text.split(",", 1)[0].split(";", 1)[0].strip()
    return ""


def selection_from_proto(selection: assets_pb2.AssetSelection) -> Selection:
    which = selection.WhichOneof("selection")
    if which == "filter":
        return Selection(filter=selection.filter)
    if which == "names":
        return Selection(names=tuple(selection.names.names))
    raise InvalidArgument("a selection gives names or a filter", reason="INVALID_SELECTION")


class AssetsApi:
    _assets: AssetService
    _signer: ContentSigner

    def _asset(
        self, record: AssetRecord, context: ServicerContext, *, with_exif: bool = False, language: str | None = None
    ) -> assets_pb2.Asset:
        urls = self._signer.urls(record.id, available_variants(record))
        language = request_language(context) if language is None else language
        return asset_to_proto(record, urls, language=language, with_exif=with_exif)

    # ------------------------------------------------------------------ uploads

    async def UploadAsset(
        self, request_iterator: AsyncIterator[assets_pb2.UploadAssetRequest], context: ServicerContext
    ) -> assets_pb2.Asset:
        first, messages = await peek_first(request_iterator)
        if first is None:
            raise InvalidArgument("an upload needs at least one message", reason="EMPTY_UPLOAD")
        chunks = (message.content.data async for message in messages)
        record = await self._assets.upload(
            current_principal.get(),
            UploadRequest(
                filename=first.filename,
                title=first.title,
                description=first.description,
                expected_sha256=first.expected_sha256,
                allow_duplicate=first.allow_duplicate,
                skip_analysis=first.skip_analysis,
                collection=first.collection,
                tags=tuple(first.tags),
            ),
            chunks,
        )
        return self._asset(record, context)

    async def BatchUploadAssets(
        self, request_iterator: AsyncIterator[assets_pb2.BatchUploadAssetsRequest], context: ServicerContext
    ) -> assets_pb2.BatchUploadAssetsResponse:
        principal = current_principal.get()
        results: list[assets_pb2.UploadResult] = []
        messages = aiter(request_iterator)
        message = await anext(messages, None)
        while message is not None:
            if message.WhichOneof("part") != "file":
                raise InvalidArgument("each file starts with a `file` message", reason="MALFORMED_STREAM")
            header = message.file
            following: list[assets_pb2.BatchUploadAssetsRequest | None] = [None]
            request = UploadRequest(
                filename=header.filename,
                expected_sha256=header.expected_sha256,
                allow_duplicate=header.allow_duplicate,
                skip_analysis=header.skip_analysis,
                collection=header.collection,
                tags=tuple(header.tags),
            )
            result = assets_pb2.UploadResult(filename=header.filename)
            stream = _file_chunks(messages, following)
            try:
                async with self._assets.receive(stream) as upload:
                    ingested = await self._assets.ingest(principal, request, upload)
                result.outcome = (
                    assets_pb2.UploadResult.CREATED
                    if ingested.outcome is Outcome.CREATED
                    else assets_pb2.UploadResult.DUPLICATE
                )
                result.asset.CopyFrom(self._asset(ingested.asset, context))
            except ImgTagError as error:
                result.outcome = assets_pb2.UploadResult.REJECTED
                result.error.CopyFrom(status_of(error))
            except Exception as error:
                # A bug with one file must not cost the others their upload.
                log.exception("batch upload of %r crashed", header.filename)
                result.outcome = assets_pb2.UploadResult.REJECTED
                result.error.CopyFrom(status_of(error))
            async for _ in stream:  # a refused file's remaining bytes are read and dropped
                pass
            results.append(result)
            message = following[0]
        return assets_pb2.BatchUploadAssetsResponse(results=results)

    async def FindAssetsBySha256(
        self, request: assets_pb2.FindAssetsBySha256Request, context: ServicerContext
    ) -> assets_pb2.FindAssetsBySha256Response:
        found = await self._assets.existing_sha256s(current_principal.get(), list(request.sha256s))
        return assets_pb2.FindAssetsBySha256Response(
            matches=[assets_pb2.Sha256Match(sha256=sha, asset=record.name) for sha, record in sorted(found.items())]
        )

    # ------------------------------------------------------------------ reading

    async def GetAsset(self, request: assets_pb2.GetAssetRequest, context: ServicerContext) -> assets_pb2.Asset:
        return self._asset(await self._assets.get(current_principal.get(), request.name), context, with_exif=True)

    async def ListAssets(
        self, request: assets_pb2.ListAssetsRequest, context: ServicerContext
    ) -> assets_pb2.ListAssetsResponse:
        page = await self._assets.list_page(
            current_principal.get(),
            page_size=request.page_size,
            page_token=request.page_token,
            show_deleted=request.show_deleted,
            filter_text=request.filter,
            order_by=request.order_by,
        )
        language = request_language(context)
        return assets_pb2.ListAssetsResponse(
            assets=[self._asset(a, context, language=language) for a in page.assets],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetProcessingStatus(
        self, request: assets_pb2.GetProcessingStatusRequest, context: ServicerContext
    ) -> assets_pb2.ProcessingStatus:
        counts = await self._assets.processing_status(current_principal.get(), request.filter)
        p, a = counts["processing"], counts["analysis"]
        return assets_pb2.ProcessingStatus(
            total_count=sum(p.values()),
            processing_pending_count=p.get("pending", 0),
            processing_running_count=p.get("running", 0),
            processing_completed_count=p.get("completed", 0),
            processing_failed_count=p.get("failed", 0),
            analysis_pending_count=a.get("pending", 0),
            analysis_running_count=a.get("running", 0),
            analysis_succeeded_count=a.get("succeeded", 0),
            analysis_failed_count=a.get("failed", 0),
            analysis_skipped_count=a.get("skipped", 0),
        )

    async def GetAssetContent(
        self, request: assets_pb2.GetAssetContentRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        record, ref, chunks = await self._assets.content(
            current_principal.get(), request.name, variant_from_proto(request.variant)
        )
        async for message in _stream(context, record, ref, chunks, _IMMUTABLE):
            yield message

    async def GetRandomAssetContent(
        self, request: search_pb2.GetRandomAssetContentRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        record, ref, chunks = await self._assets.random_content(
            current_principal.get(), filter_text=request.filter, variant=variant_from_proto(request.variant)
        )
        # Each call chooses again: nothing may cache the answer; a header names the photo chosen.
        chosen = (("x-imgtag-asset", f"assets/{record.id}"),)
        async for message in _stream(context, record, ref, chunks, "no-store", extra=chosen):
            yield message

    async def GetSignedAssetContent(
        self, request: assets_pb2.GetSignedAssetContentRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        asset_id: uuid.UUID = parse_asset_name(request.name)
        variant = variant_from_proto(request.variant)
        self._signer.verify(asset_id, variant, request.expires, request.signature)
        record, ref, chunks = await self._assets.content_by_id(asset_id, variant)
        # Anyone holding the URL may fetch it until it expires; shared caches must not keep it.
        max_age = max(0, self._signer.seconds_left(request.expires))
        async for message in _stream(context, record, ref, chunks, f"private, max-age={max_age}, immutable"):
            yield message

    # ------------------------------------------------------------------ changing one

    async def UpdateAsset(self, request: assets_pb2.UpdateAssetRequest, context: ServicerContext) -> assets_pb2.Asset:
        paths = set(request.update_mask.paths)
        if "*" in paths:
            paths = {"filename", "title", "description", "visibility", "capture_time", "favorite", "rating", "labels"}
        record = await self._assets.update(
            current_principal.get(), request.asset.name, changes_from_proto(request.asset, paths)
        )
        return self._asset(record, context)

    async def DeleteAsset(self, request: assets_pb2.DeleteAssetRequest, context: ServicerContext) -> assets_pb2.Asset:
        return self._asset(await self._assets.trash(current_principal.get(), request.name), context)

    async def UndeleteAsset(
        self, request: assets_pb2.UndeleteAssetRequest, context: ServicerContext
    ) -> assets_pb2.Asset:
        return self._asset(await self._assets.restore(current_principal.get(), request.name), context)

    async def PurgeAsset(self, request: assets_pb2.PurgeAssetRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self._assets.purge(current_principal.get(), request.name)
        return empty_pb2.Empty()

    async def ReanalyzeAsset(
        self, request: assets_pb2.ReanalyzeAssetRequest, context: ServicerContext
    ) -> assets_pb2.Asset:
        return self._asset(await self._assets.reanalyze(current_principal.get(), request.name), context)

    async def AddAssetTags(self, request: assets_pb2.AddAssetTagsRequest, context: ServicerContext) -> assets_pb2.Asset:
        record = await self._assets.add_tags(current_principal.get(), request.name, list(request.tags))
        return self._asset(record, context)

    async def RemoveAssetTags(
        self, request: assets_pb2.RemoveAssetTagsRequest, context: ServicerContext
    ) -> assets_pb2.Asset:
        record = await self._assets.remove_tags(current_principal.get(), request.name, list(request.tags))
        return self._asset(record, context)

    async def ConfirmAssetTag(
        self, request: assets_pb2.ConfirmAssetTagRequest, context: ServicerContext
    ) -> assets_pb2.Asset:
        record = await self._assets.review_tag(current_principal.get(), request.name, request.tag, confirm=True)
        return self._asset(record, context)

    async def RejectAssetTag(
        self, request: assets_pb2.RejectAssetTagRequest, context: ServicerContext
    ) -> assets_pb2.Asset:
        record = await self._assets.review_tag(current_principal.get(), request.name, request.tag, confirm=False)
        return self._asset(record, context)

    # ------------------------------------------------------------------ batches

    async def _batch(
        self, selection: assets_pb2.AssetSelection, operation: str, **arguments
    ) -> assets_pb2.BatchAssetsResponse:
        outcome: BatchOutcome = await self._assets.batch(
            current_principal.get(), selection_from_proto(selection), operation, **arguments
        )
        return batch_to_proto(outcome)

    async def BatchDeleteAssets(self, request, context: ServicerContext) -> assets_pb2.BatchAssetsResponse:
        return await self._batch(request.selection, "trash")

    async def BatchUndeleteAssets(self, request, context: ServicerContext) -> assets_pb2.BatchAssetsResponse:
        return await self._batch(request.selection, "restore")

    async def BatchPurgeAssets(self, request, context: ServicerContext) -> assets_pb2.BatchAssetsResponse:
        return await self._batch(request.selection, "purge")

    async def BatchAddTags(self, request, context: ServicerContext) -> assets_pb2.BatchAssetsResponse:
        return await self._batch(request.selection, "add_tags", tags=list(request.tags))

    async def BatchRemoveTags(self, request, context: ServicerContext) -> assets_pb2.BatchAssetsResponse:
        return await self._batch(request.selection, "remove_tags", tags=list(request.tags))

    async def BatchReanalyzeAssets(self, request, context: ServicerContext) -> assets_pb2.BatchAssetsResponse:
        return await self._batch(request.selection, "reanalyze")

    async def EmptyTrash(
        self, request: assets_pb2.EmptyTrashRequest, context: ServicerContext
    ) -> assets_pb2.BatchAssetsResponse:
        return batch_to_proto(await self._assets.empty_trash(current_principal.get()))

    async def BatchUpdateAssets(
        self, request: assets_pb2.BatchUpdateAssetsRequest, context: ServicerContext
    ) -> assets_pb2.BatchUpdateAssetsResponse:
        if not request.requests or len(request.requests) > 1000:
            raise InvalidArgument("a batch has 1-1000 updates", reason="INVALID_SELECTION")
        principal = current_principal.get()
        reply = assets_pb2.BatchUpdateAssetsResponse()
        for item in request.requests:
            result = assets_pb2.AssetResult(asset=item.asset.name)
            try:
                paths = set(item.update_mask.paths)
                record = await self._assets.update(principal, item.asset.name, changes_from_proto(item.asset, paths))
                reply.assets.append(self._asset(record, context))
            except ImgTagError as error:
                result.status.CopyFrom(status_of(error))
            reply.results.append(result)
        return reply


async def _file_chunks(
    messages: AsyncIterator[assets_pb2.BatchUploadAssetsRequest],
    following: list[assets_pb2.BatchUploadAssetsRequest | None],
) -> AsyncIterator[bytes]:
    """One file's bytes: data messages up to the next `file` message, which is kept in
    `following` for the caller."""
    async for part in messages:
        if part.WhichOneof("part") == "file":
            following[0] = part
            return
        yield part.data


async def _stream(
    context: ServicerContext,
    record: AssetRecord,
    ref: ContentRef,
    chunks: AsyncIterator[bytes],
    cache_control: str,
    *,
    extra: tuple[tuple[str, str], ...] = (),
) -> AsyncIterator[httpbody_pb2.HttpBody]:
    # Pull the first chunk before any header goes out, so a storage failure is still a clean
    # error status (404/503) rather than a truncated 200.
    first = await anext(chunks, b"")
    filename = record.filename if ref.variant is Variant.ORIGINAL else f"{record.filename}.{ref.variant.value}.webp"
    await context.send_initial_metadata(
        (
            ("cache-control", cache_control),
            ("content-disposition", f"inline; filename*=UTF-8''{quote(filename)}"),
            *extra,
        )
    )
    # The first message's content type becomes the HTTP Content-Type header.
    yield httpbody_pb2.HttpBody(content_type=ref.content_type, data=first)
    async for chunk in chunks:
        yield httpbody_pb2.HttpBody(data=chunk)
