"""CatalogService: one servicer composed of the per-resource parts (assets, tags, collections,
imports, search). Methods not defined here answer UNIMPLEMENTED through the generated base class."""

from __future__ import annotations

from grpc.aio import ServicerContext

from imgtag.catalog.v1 import catalog_pb2_grpc, search_pb2
from imgtag_catalog.api.assets import AssetsApi
from imgtag_catalog.api.collections import CollectionsApi
from imgtag_catalog.api.imports import ImportsApi
from imgtag_catalog.api.mappers import public_asset_to_proto
from imgtag_catalog.api.search import SearchApi
from imgtag_catalog.api.tags import TagsApi
from imgtag_catalog.domain.assets import AssetService, available_variants
from imgtag_catalog.domain.collections import Collections
from imgtag_catalog.domain.content_urls import ContentSigner
from imgtag_catalog.domain.duplicates import Duplicates
from imgtag_catalog.domain.imports import ImportService
from imgtag_catalog.domain.search import Search
from imgtag_catalog.domain.tags import TagStore, Vocabulary
from imgtag_common.auth import CredentialKind, current_principal


class CatalogServicer(
    AssetsApi, TagsApi, CollectionsApi, SearchApi, ImportsApi, catalog_pb2_grpc.CatalogServiceServicer
):
    def __init__(
        self,
        assets: AssetService,
        vocabulary: Vocabulary,
        tag_store: TagStore,
        collections: Collections,
        search: Search,
        duplicates: Duplicates,
        signer: ContentSigner,
        *,
        imports: ImportService,
    ) -> None:
        self._assets = assets
        self._vocabulary = vocabulary
        self._tag_store = tag_store
        self._collections = collections
        self._search = search
        self._duplicates = duplicates
        self._signer = signer
        self._imports = imports

    async def GetRandomAssets(
        self, request: search_pb2.GetRandomAssetsRequest, context: ServicerContext
    ) -> search_pb2.GetRandomAssetsResponse:
        principal = current_principal.get()
        chosen = await self._assets.random(principal, count=request.count, filter_text=request.filter)
        # A key may be embedded in a public page: it gets the reduced public view.
        if principal.credential is CredentialKind.API_KEY:
            assets = [public_asset_to_proto(r, self._signer.urls(r.id, available_variants(r))) for r in chosen]
        else:
            assets = [self._asset(r, context) for r in await self._assets.decorate(chosen)]
        return search_pb2.GetRandomAssetsResponse(assets=assets)
