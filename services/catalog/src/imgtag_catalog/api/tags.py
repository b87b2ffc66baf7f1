"""The tag RPCs of CatalogService."""

from __future__ import annotations

import uuid

from google.protobuf import empty_pb2
from grpc.aio import ServicerContext

from imgtag.catalog.v1 import tags_pb2
from imgtag_catalog.api.assets import request_language
from imgtag_catalog.api.mappers import tag_to_proto
from imgtag_catalog.domain.tags import CUSTOM, NewTag, TagStore, Vocabulary, clean_category, tag_key
from imgtag_catalog.domain.visibility import view_scope
from imgtag_common.auth import current_principal
from imgtag_common.errors import InvalidArgument
from imgtag_common.filtering import Comparison, parse_filter
from imgtag_common.pagination import clamp_page_size

_TAG_FIELDS = {"display_names", "category", "aliases", "description"}


def _tag_list_filter(text: str) -> tuple[str, str]:
    """(category, name substring) from ListTags' filter: `category = "animal"`, `display_name:"ca"`."""
    expr = parse_filter(text)
    terms = [] if expr is None else getattr(expr, "operands", (expr,))
    category = name = ""
    for term in terms:
        if not isinstance(term, Comparison):
            raise InvalidArgument("ListTags filters are terms joined by AND", reason="INVALID_FILTER")
        if term.field == "category" and term.op == "=":
            category = clean_category(term.value)
        elif term.field == "display_name" and term.op == ":":
            name = tag_key(term.value)
        else:
            raise InvalidArgument(
                'ListTags filters on category = "..." and display_name:"..."', reason="INVALID_FILTER"
            )
    return category, name


def _page_token(token: str) -> tuple[int, uuid.UUID] | None:
    if not token:
        return None
    try:
        usage, _, tag_id = token.partition(":")
        return int(usage), uuid.UUID(tag_id)
    except ValueError as error:
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from error


class TagsApi:
    _vocabulary: Vocabulary
    _tag_store: TagStore

    async def GetTag(self, request: tags_pb2.GetTagRequest, context: ServicerContext) -> tags_pb2.Tag:
        return tag_to_proto(await self._vocabulary.get(request.name))

    async def ListTags(self, request: tags_pb2.ListTagsRequest, context: ServicerContext) -> tags_pb2.ListTagsResponse:
        if request.order_by.strip() not in ("", "usage_count desc"):
            raise InvalidArgument("order_by is 'usage_count desc'", reason="INVALID_ORDER_BY")
        category, name = _tag_list_filter(request.filter)
        limit = clamp_page_size(request.page_size, default=100, maximum=1000)
        found, total = await self._tag_store.list_with_counts(
            scope=view_scope(current_principal.get()),
            category=category,
            name_contains=name,
            after=_page_token(request.page_token),
            limit=limit + 1,
        )
        page = found[:limit]
        token = f"{page[-1].usage_count}:{page[-1].id}" if len(found) > limit else ""
        return tags_pb2.ListTagsResponse(tags=[tag_to_proto(t) for t in page], next_page_token=token, total_size=total)

    async def AutocompleteTags(
        self, request: tags_pb2.AutocompleteTagsRequest, context: ServicerContext
    ) -> tags_pb2.AutocompleteTagsResponse:
        prefix = tag_key(request.query)
        if not prefix:
            raise InvalidArgument("type at least one character", reason="EMPTY_QUERY")
        limit = clamp_page_size(request.limit, default=10, maximum=50)
        found = await self._tag_store.autocomplete(
            scope=view_scope(current_principal.get()),
            prefix_key=prefix,
            category=clean_category(request.category),
            limit=limit,
        )
        language = request_language(context, request.language)
        suggestions = []
        for tag in found:
            shown = tag.localized(language)
            matched = next(
                (
                    n
                    for n in (shown, tag.display_name, *tag.display_names.values(), *tag.aliases)
                    if prefix in tag_key(n)
                ),
                shown,
            )
            suggestions.append(
                tags_pb2.TagSuggestion(
                    tag=tag.name,
                    display_name=shown,
                    matched_text=matched if matched != shown else "",
                    category=tag.category,
                    usage_count=tag.usage_count,
                )
            )
        return tags_pb2.AutocompleteTagsResponse(suggestions=suggestions)

    async def CreateTag(self, request: tags_pb2.CreateTagRequest, context: ServicerContext) -> tags_pb2.Tag:
        t = request.tag
        created = await self._vocabulary.create(
            NewTag(
                display_name=t.display_name,
                display_names=dict(t.display_names),
                category=t.category or CUSTOM,
                aliases=tuple(t.aliases),
                description=t.description,
            )
        )
        return tag_to_proto(created)

    async def UpdateTag(self, request: tags_pb2.UpdateTagRequest, context: ServicerContext) -> tags_pb2.Tag:
        paths = set(request.update_mask.paths)
        if not paths or paths - _TAG_FIELDS:
            raise InvalidArgument(
                "update_mask names some of: " + ", ".join(sorted(_TAG_FIELDS)), reason="INVALID_UPDATE_MASK"
            )
        t = request.tag
        updated = await self._vocabulary.update(
            t.name,
            display_names=dict(t.display_names) if "display_names" in paths else None,
            category=t.category if "category" in paths else None,
            aliases=list(t.aliases) if "aliases" in paths else None,
            description=t.description if "description" in paths else None,
        )
        return tag_to_proto(updated)

    async def RenameTag(self, request: tags_pb2.RenameTagRequest, context: ServicerContext) -> tags_pb2.Tag:
        renamed = await self._vocabulary.rename(
            request.name, request.display_name, keep_old_name_as_alias=request.keep_old_name_as_alias
        )
        return tag_to_proto(renamed)

    async def MergeTags(
        self, request: tags_pb2.MergeTagsRequest, context: ServicerContext
    ) -> tags_pb2.MergeTagsResponse:
        merged, changed = await self._vocabulary.merge(request.name, list(request.source_tags))
        return tags_pb2.MergeTagsResponse(tag=tag_to_proto(merged), updated_asset_count=changed)

    async def DeleteTag(self, request: tags_pb2.DeleteTagRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self._vocabulary.delete(request.name)
        return empty_pb2.Empty()
