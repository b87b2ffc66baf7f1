"""CatalogService: protobuf in, protobuf out; the rules live in domain/. Methods not defined
here are answered UNIMPLEMENTED by the generated base class (mapped by the server guard)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

from google.api import httpbody_pb2
from grpc.aio import ServicerContext

from imgtag.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from imgtag_catalog.api.mappers import (
    asset_to_proto,
    public_asset_to_proto,
    variant_from_proto,
    visibility_from_proto,
)
from imgtag_catalog.domain.assets import AssetChanges, AssetService, UploadRequest, parse_asset_name
from imgtag_catalog.domain.content_urls import ContentSigner
from imgtag_catalog.domain.models import AssetRecord, Variant
from imgtag_common.auth import CredentialKind, current_principal
from imgtag_common.errors import InvalidArgument, Unimplemented
from imgtag_common.streams import peek_first

# An asset's original never changes, so clients may cache it for as long as they like.
_ORIGINAL_CACHE_CONTROL = "private, max-age=31536000, immutable"
# Variants that exist today; thumbnails and previews arrive with renditions.
_SERVED_VARIANTS = (Variant.ORIGINAL,)
_UPDATABLE = {"filename", "title", "description", "visibility"}


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, assets: AssetService, signer: ContentSigner) -> None:
        self._assets = assets
        self._signer = signer

    def _asset(self, record: AssetRecord) -> catalog_pb2.Asset:
        return asset_to_proto(record, self._signer.urls(record.id, _SERVED_VARIANTS))

    async def UploadAsset(
        self, request_iterator: AsyncIterator[catalog_pb2.UploadAssetRequest], context: ServicerContext
    ) -> catalog_pb2.Asset:
        first, messages = await peek_first(request_iterator)
        if first is None:
            raise InvalidArgument("an upload needs at least one message", reason="EMPTY_UPLOAD")
        if first.tags or first.collection:
            raise Unimplemented("tags and collections on upload are not supported by this version yet")
        chunks = (message.content.data async for message in messages)
        record = await self._assets.upload(
            current_principal.get(),
            UploadRequest(
                filename=first.filename,
                title=first.title,
                description=first.description,
                expected_sha256=first.expected_sha256,
                allow_duplicate=first.allow_duplicate,
            ),
            chunks,
        )
        return self._asset(record)

    async def GetAsset(self, request: catalog_pb2.GetAssetRequest, context: ServicerContext) -> catalog_pb2.Asset:
        return self._asset(await self._assets.get(current_principal.get(), request.name))

    async def ListAssets(
        self, request: catalog_pb2.ListAssetsRequest, context: ServicerContext
    ) -> catalog_pb2.ListAssetsResponse:
        if request.order_by.strip() not in ("", "create_time desc"):
            raise InvalidArgument(
                "order_by supports only 'create_time desc' in this version", reason="ORDER_NOT_SUPPORTED"
            )
        page = await self._assets.list_page(
            current_principal.get(),
            page_size=request.page_size,
            page_token=request.page_token,
            show_deleted=request.show_deleted,
            filter_text=request.filter,
        )
        return catalog_pb2.ListAssetsResponse(
            assets=[self._asset(a) for a in page.assets], next_page_token=page.next_page_token
        )

    async def UpdateAsset(self, request: catalog_pb2.UpdateAssetRequest, context: ServicerContext) -> catalog_pb2.Asset:
        paths = set(request.update_mask.paths)
        if "*" in paths:
            paths = set(_UPDATABLE)
        unknown = paths - _UPDATABLE
        if unknown or not paths:
            raise InvalidArgument(
                "update_mask may name "
                + ", ".join(sorted(_UPDATABLE))
                + " in this version"
                + (f" (not {', '.join(sorted(unknown))})" if unknown else ""),
                reason="INVALID_UPDATE_MASK",
            )
        asset = request.asset
        changes = AssetChanges(
            filename=asset.filename if "filename" in paths else None,
            title=asset.title if "title" in paths else None,
            description=asset.description if "description" in paths else None,
            visibility=visibility_from_proto(asset.visibility) if "visibility" in paths else None,
        )
        return self._asset(await self._assets.update(current_principal.get(), asset.name, changes))

    async def DeleteAsset(self, request: catalog_pb2.DeleteAssetRequest, context: ServicerContext) -> catalog_pb2.Asset:
        return self._asset(await self._assets.trash(current_principal.get(), request.name))

    async def GetRandomAssets(
        self, request: catalog_pb2.GetRandomAssetsRequest, context: ServicerContext
    ) -> catalog_pb2.GetRandomAssetsResponse:
        principal = current_principal.get()
        chosen = await self._assets.random(principal, count=request.count, filter_text=request.filter)
        # A key may be embedded in a public page: it gets the reduced public view.
        if principal.credential is CredentialKind.API_KEY:
            assets = [public_asset_to_proto(r, self._signer.urls(r.id, _SERVED_VARIANTS)) for r in chosen]
        else:
            assets = [self._asset(r) for r in chosen]
        return catalog_pb2.GetRandomAssetsResponse(assets=assets)

    # ------------------------------------------------------------------ bytes

    async def GetAssetContent(
        self, request: catalog_pb2.GetAssetContentRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        self._served(variant_from_proto(request.variant))
        record, chunks = await self._assets.original(current_principal.get(), request.name)
        async for message in _stream(context, record, chunks, _ORIGINAL_CACHE_CONTROL):
            yield message

    async def GetSignedAssetContent(
        self, request: catalog_pb2.GetSignedAssetContentRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        asset_id: uuid.UUID = parse_asset_name(request.name)
        variant = variant_from_proto(request.variant)
        self._signer.verify(asset_id, variant, request.expires, request.signature)
        self._served(variant)
        record, chunks = await self._assets.original_by_id(asset_id)
        # Anyone holding the URL may fetch it until it expires; shared caches must not keep it.
        async for message in _stream(context, record, chunks, "private, max-age=3600"):
            yield message

    @staticmethod
    def _served(variant: Variant) -> None:
        if variant not in _SERVED_VARIANTS:
            raise Unimplemented("thumbnail and preview renditions are not generated by this version yet")


async def _stream(
    context: ServicerContext, record: AssetRecord, chunks: AsyncIterator[bytes], cache_control: str
) -> AsyncIterator[httpbody_pb2.HttpBody]:
    # Pull the first chunk before any header goes out, so a storage failure is still a clean
    # error status (404/503) rather than a truncated 200.
    first = await anext(chunks, b"")
    await context.send_initial_metadata(
        (
            ("cache-control", cache_control),
            ("content-disposition", f"inline; filename*=UTF-8''{quote(record.filename)}"),
        )
    )
    # The first message's content type becomes the HTTP Content-Type header.
    yield httpbody_pb2.HttpBody(content_type=record.content_type, data=first)
    async for chunk in chunks:
        yield httpbody_pb2.HttpBody(data=chunk)
