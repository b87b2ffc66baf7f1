"""The collection RPCs of CatalogService."""

from __future__ import annotations

import uuid

from google.protobuf import empty_pb2

from imgtag.catalog.v1 import assets_pb2, collections_pb2
from imgtag_catalog.api.assets import selection_from_proto
from imgtag_catalog.api.mappers import batch_to_proto, collection_to_proto, tree_to_proto
from imgtag_catalog.domain.assets import AssetService, parse_asset_name
from imgtag_catalog.domain.collections import ChildHandling, Collections
from imgtag_catalog.domain.models import AssetRecord, CollectionRecord
from imgtag_catalog.domain.tags import TagStore
from imgtag_common.auth import current_principal
from imgtag_common.errors import InvalidArgument
from imgtag_common.filtering import Comparison, parse_filter

_FIELDS = {"display_name", "description", "auto_tags", "cover_asset"}
_CHILDREN = {
    collections_pb2.DeleteCollectionRequest.CHILD_HANDLING_UNSPECIFIED: ChildHandling.REFUSE,
    collections_pb2.DeleteCollectionRequest.REPARENT: ChildHandling.REPARENT,
    collections_pb2.DeleteCollectionRequest.CASCADE: ChildHandling.CASCADE,
}


def _parent_filter(text: str) -> str | None:
    """ListCollections' filter: `parent = "collections/{c}"` or `parent = ""` (roots); None: all."""
    expr = parse_filter(text)
    if expr is None:
        return None
    if isinstance(expr, Comparison) and expr.field == "parent" and expr.op == "=":
        return expr.value
    raise InvalidArgument('ListCollections filters on parent = "collections/..." (or "")', reason="INVALID_FILTER")


class CollectionsApi:
    _collections: Collections
    _assets: AssetService
    _tag_store: TagStore

    async def _messages(self, records: list[CollectionRecord]) -> list[collections_pb2.Collection]:
        tag_ids = list({t for c in records for t in c.auto_tag_ids})
        names = {t.id: t.name for t in await self._tag_store.get_many(tag_ids=tag_ids)}
        covers = await self._collections.covers(records)
        return [collection_to_proto(c, names, covers.get(c.id)) for c in records]

    async def _one(self, record: CollectionRecord) -> collections_pb2.Collection:
        return (await self._messages([record]))[0]

    async def _cover(self, name: str) -> AssetRecord | None:
        if not name:
            return None
        return await self._assets.get(current_principal.get(), name) if parse_asset_name(name) else None

    async def GetCollection(self, request, context) -> collections_pb2.Collection:
        return await self._one(await self._collections.get(current_principal.get(), request.name))

    async def ListCollections(self, request, context) -> collections_pb2.ListCollectionsResponse:
        if request.page_token:
            raise InvalidArgument("collections come in one page; page_token must be empty", reason="INVALID_PAGE_TOKEN")
        records = await self._collections.list(current_principal.get(), parent=_parent_filter(request.filter))
        return collections_pb2.ListCollectionsResponse(collections=await self._messages(records))

    async def GetCollectionTree(self, request, context) -> collections_pb2.GetCollectionTreeResponse:
        if request.max_depth < 0:
            raise InvalidArgument("max_depth must not be negative", reason="INVALID_DEPTH")
        nodes = await self._collections.tree(current_principal.get(), root=request.root, max_depth=request.max_depth)

        def flatten(items) -> list[CollectionRecord]:
            return [n.collection for n in items] + [c for n in items for c in flatten(n.children)]

        every = flatten(nodes)
        tag_ids = list({t for c in every for t in c.auto_tag_ids})
        names = {t.id: t.name for t in await self._tag_store.get_many(tag_ids=tag_ids)}
        covers: dict[uuid.UUID, uuid.UUID] = await self._collections.covers(every)
        return collections_pb2.GetCollectionTreeResponse(nodes=tree_to_proto(nodes, names, covers))

    async def CreateCollection(self, request, context) -> collections_pb2.Collection:
        c = request.collection
        created = await self._collections.create(
            current_principal.get(),
            display_name=c.display_name,
            description=c.description,
            parent=c.parent,
            auto_tags=list(c.auto_tags),
            cover=await self._cover(c.cover_asset),
        )
        return await self._one(created)

    async def UpdateCollection(self, request, context) -> collections_pb2.Collection:
        paths = set(request.update_mask.paths)
        if not paths or paths - _FIELDS:
            raise InvalidArgument(
                "update_mask names some of: " + ", ".join(sorted(_FIELDS)), reason="INVALID_UPDATE_MASK"
            )
        c = request.collection
        updated = await self._collections.update(
            current_principal.get(),
            c.name,
            display_name=c.display_name if "display_name" in paths else None,
            description=c.description if "description" in paths else None,
            auto_tags=list(c.auto_tags) if "auto_tags" in paths else None,
            cover=(await self._cover(c.cover_asset)) if "cover_asset" in paths else False,
        )
        return await self._one(updated)

    async def MoveCollection(self, request, context) -> collections_pb2.Collection:
        return await self._one(await self._collections.move(current_principal.get(), request.name, request.new_parent))

    async def DeleteCollection(self, request, context) -> empty_pb2.Empty:
        await self._collections.delete(current_principal.get(), request.name, _CHILDREN[request.children])
        return empty_pb2.Empty()

    async def AddCollectionAssets(self, request, context) -> assets_pb2.BatchAssetsResponse:
        principal = current_principal.get()
        await self._collections.get(principal, request.name)  # a missing collection fails the call
        outcome = await self._assets.batch(
            principal, selection_from_proto(request.selection), "add_to_collection", collection=request.name
        )
        return batch_to_proto(outcome)

    async def RemoveCollectionAssets(self, request, context) -> assets_pb2.BatchAssetsResponse:
        principal = current_principal.get()
        await self._collections.get(principal, request.name)
        outcome = await self._assets.batch(
            principal, selection_from_proto(request.selection), "remove_from_collection", collection=request.name
        )
        return batch_to_proto(outcome)
