"""The search and near-duplicate RPCs of CatalogService."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from grpc.aio import ServicerContext

from imgtag.catalog.v1 import search_pb2
from imgtag_catalog.domain.assets import AssetService, Selection, parse_asset_name
from imgtag_catalog.domain.duplicates import Duplicates
from imgtag_catalog.domain.search import Search, SearchPage
from imgtag_common.auth import current_principal
from imgtag_common.errors import InvalidArgument
from imgtag_common.pagination import clamp_page_size
from imgtag_common.streams import peek_first

_MAX_QUERY_IMAGE = 50 * 1024 * 1024


class SearchApi:
    _assets: AssetService
    _search: Search
    _duplicates: Duplicates

    async def _results(self, page: SearchPage, context: ServicerContext) -> search_pb2.SearchAssetsResponse:
        records = await self._assets.by_ids([h.asset_id for h in page.hits])
        results = []
        for hit in page.hits:
            record = records.get(hit.asset_id)
            if record is None:
                continue  # purged since it was found
            results.append(
                search_pb2.SearchResult(
                    asset=self._asset(record, context),
                    score=hit.score,
                    matched_tags=[f"tags/{t}" for t in hit.matched_tags],
                    matched_by=hit.matched_by,
                )
            )
        return search_pb2.SearchAssetsResponse(results=results, next_page_token=page.next_page_token)

    async def SearchAssets(
        self, request: search_pb2.SearchAssetsRequest, context: ServicerContext
    ) -> search_pb2.SearchAssetsResponse:
        page = await self._search.search(
            current_principal.get(),
            query=request.query,
            similar_to=request.similar_to,
            filter_text=request.filter,
            page_size=request.page_size,
            page_token=request.page_token,
            min_score=request.min_score,
        )
        return await self._results(page, context)

    async def SearchAssetsByImage(
        self, request_iterator: AsyncIterator[search_pb2.SearchAssetsByImageRequest], context: ServicerContext
    ) -> search_pb2.SearchAssetsResponse:
        first, messages = await peek_first(request_iterator)
        if first is None:
            raise InvalidArgument("send an image to search with", reason="EMPTY_UPLOAD")
        image = bytearray()
        async for message in messages:
            image += message.content.data
            if len(image) > _MAX_QUERY_IMAGE:
                raise InvalidArgument("a query image is at most 50 MB", reason="UPLOAD_TOO_LARGE")
        if not image:
            raise InvalidArgument("send an image to search with", reason="EMPTY_UPLOAD")
        page = await self._search.by_image(
            current_principal.get(), bytes(image), filter_text=first.filter, page_size=first.page_size
        )
        return await self._results(page, context)

    async def ListDuplicateGroups(
        self, request: search_pb2.ListDuplicateGroupsRequest, context: ServicerContext
    ) -> search_pb2.ListDuplicateGroupsResponse:
        size = clamp_page_size(request.page_size, default=20, maximum=100)
        groups = await self._duplicates.groups(current_principal.get())
        start = 0
        if request.page_token:
            try:
                start = next(i + 1 for i, g in enumerate(groups) if g.id == request.page_token)
            except StopIteration:
                raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from None
        page = groups[start : start + size]
        records = await self._assets.by_ids([m for g in page for m in g.members])
        reply = search_pb2.ListDuplicateGroupsResponse(
            next_page_token=page[-1].id if start + size < len(groups) else ""
        )
        for group in page:
            members = sorted(
                (records[m] for m in group.members if m in records),
                key=lambda r: (-(r.width * r.height), -r.size_bytes, r.create_time),
            )
            reply.groups.append(
                search_pb2.DuplicateGroup(
                    group=group.id,
                    assets=[self._asset(r, context) for r in members],
                    max_hash_distance=group.max_hash_distance,
                )
            )
        return reply

    async def ResolveDuplicateGroup(
        self, request: search_pb2.ResolveDuplicateGroupRequest, context: ServicerContext
    ) -> search_pb2.ResolveDuplicateGroupResponse:
        principal = current_principal.get()
        keep = [parse_asset_name(n) for n in request.keep]
        trash: list[uuid.UUID] = await self._duplicates.resolve(principal, request.group, keep)
        if trash:
            await self._assets.batch(principal, Selection(names=tuple(f"assets/{t}" for t in trash)), "trash")
        return search_pb2.ResolveDuplicateGroupResponse(trashed=[f"assets/{t}" for t in trash])
