"""The asset fields filters compile to (the grammar is documented in the catalog contract).

Tag and collection fields become EXISTS subqueries on indexed link tables, so a filter never
multiplies rows and the planner can still walk the keyset index for ordering."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, text

from imgtag_catalog.db.tables import asset_tags, assets, collection_assets, tags
from imgtag_catalog.domain.models import (
    AnalysisState,
    AssetState,
    CaptionState,
    ProcessingState,
    TagSource,
    TagState,
    Visibility,
)
from imgtag_common.filtering import (
    FieldCompiler,
    boolean_field,
    enum_field,
    integer_field,
    invalid,
    text_field,
    timestamp_field,
)

# Tag conditions look at an alias of asset_tags: a filter inside a statement that itself reads
# asset_tags (search by tags) would otherwise correlate with the outer table and lose its FROM.
_links = asset_tags.alias("filter_links")

_SHOWN = (TagState.SUGGESTED.value, TagState.CONFIRMED.value)
# The capture-time sort key (assets without a capture time sort by their upload), which the
# capture-time indexes are built on.
CAPTURE_ORDER = func.coalesce(assets.c.capture_time, assets.c.create_time)
_SPACES = re.compile(r"\s+")


def _equality(op: str, field: str, position: int) -> None:
    if op not in ("=", "!=", ":"):
        raise invalid(f"{field} supports = and !=", position)


def _tag_key(value: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip().casefold()


def _has_tag(states: tuple[str, ...]) -> FieldCompiler:
    """tag = "tags/{id}" or a name in any language or an alias."""

    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _equality(op, "tag", position)
        if value.startswith("tags/"):
            try:
                which = _links.c.tag_id == uuid.UUID(value.removeprefix("tags/"))
            except ValueError as error:
                raise invalid(f"{value!r} is not a tag name", position) from error
        else:
            which = _links.c.tag_id.in_(select(tags.c.id).where(tags.c.search_names.any(_tag_key(value))))
        condition = exists().where(_links.c.asset_id == assets.c.id, _links.c.state.in_(states), which)
        return condition if op != "!=" else not_(condition)

    return build


def _tag_category(op: str, value: str, position: int) -> ColumnElement[bool]:
    _equality(op, "tag_category", position)
    condition = exists().where(
        _links.c.asset_id == assets.c.id,
        _links.c.state.in_(_SHOWN),
        _links.c.tag_id.in_(select(tags.c.id).where(tags.c.category == value.strip().lower())),
    )
    return condition if op != "!=" else not_(condition)


def _tag_source(op: str, value: str, position: int) -> ColumnElement[bool]:
    _equality(op, "tag_source", position)
    sources = {s.name: s.value for s in TagSource}
    if value.upper() not in sources:
        raise invalid(f"tag_source is one of {', '.join(sources)}", position)
    condition = exists().where(
        _links.c.asset_id == assets.c.id,
        _links.c.state.in_(_SHOWN),
        _links.c.source == sources[value.upper()],
    )
    return condition if op != "!=" else not_(condition)


def _has_suggestions(op: str, value: str, position: int) -> ColumnElement[bool]:
    pending = exists().where(
        _links.c.asset_id == assets.c.id,
        _links.c.source == TagSource.AI.value,
        _links.c.state == TagState.SUGGESTED.value,
    )
    if op not in ("=", "!=") or value.lower() not in ("true", "false"):
        raise invalid("has_suggestions = true or has_suggestions = false", position)
    wanted = (value.lower() == "true") == (op == "=")
    return pending if wanted else not_(pending)


def _collection_id(value: str, position: int) -> uuid.UUID:
    try:
        prefix, _, raw = value.partition("/")
        if prefix != "collections":
            raise ValueError(value)
        return uuid.UUID(raw)
    except ValueError as error:
        raise invalid(f"{value!r} is not a collection name (collections/<id>)", position) from error


def _in_collection(tree: bool) -> FieldCompiler:
    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _equality(op, "collection", position)
        collection_id = _collection_id(value, position)
        if tree:
            subtree = text(
                "WITH RECURSIVE sub(id) AS (SELECT id FROM collections WHERE id = :root UNION ALL "
                "SELECT c.id FROM collections c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub"
            ).bindparams(root=collection_id)
            which = collection_assets.c.collection_id.in_(subtree.columns(id=collection_assets.c.collection_id.type))
        else:
            which = collection_assets.c.collection_id == collection_id
        condition = exists().where(collection_assets.c.asset_id == assets.c.id, which)
        return condition if op != "!=" else not_(condition)

    return build


def _content_type(op: str, value: str, position: int) -> ColumnElement[bool]:
    """content_type = "image/png", or a wildcard like "image/*"."""
    if op not in ("=", "!="):
        raise invalid("content_type supports = and !=", position)
    if value.endswith("/*"):
        condition = assets.c.content_type.startswith(value[:-1], autoescape=True)
    else:
        condition = assets.c.content_type == value.lower()
    return condition if op == "=" else not_(condition)


def _rating(op: str, value: str, position: int) -> ColumnElement[bool]:
    condition = integer_field(assets.c.rating, "rating")(op, value, position)
    if not 0 <= int(value) <= 5:
        raise invalid("rating is 0-5", position)
    return condition


def _label(key: str) -> FieldCompiler:
    if not re.fullmatch(r"[a-z0-9_-]{1,63}", key):
        raise invalid(f"label keys are lower-case [a-z0-9_-], not {key!r}")

    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _equality(op, f"labels.{key}", position)
        stored = assets.c.labels[key].astext
        condition = stored == value if op != ":" else stored.ilike(f"%{value}%")
        return condition if op != "!=" else or_(stored.is_(None), stored != value)

    return build


def _capture_time(op: str, value: str, position: int) -> ColumnElement[bool]:
    condition = timestamp_field(assets.c.capture_time, "capture_time")(op, value, position)
    # The same bound on the sort key, which equals capture_time wherever that is set: redundant
    # for the result, but it is what lets a capture-ordered listing seek into its index to the
    # range instead of reading (and dropping) every photo taken after or before it.
    on_sort_key = timestamp_field(CAPTURE_ORDER, "capture_time")(op, value, position)
    return and_(assets.c.capture_time.is_not(None), condition, on_sort_key)


ASSET_FILTER_FIELDS: Mapping[str, FieldCompiler] = {
    "tag": _has_tag(_SHOWN),
    "confirmed_tag": _has_tag((TagState.CONFIRMED.value,)),
    "tag_category": _tag_category,
    "tag_source": _tag_source,
    "has_suggestions": _has_suggestions,
    "collection": _in_collection(tree=False),
    "collection_tree": _in_collection(tree=True),
    "state": enum_field(
        assets.c.state, "state", {s.name: s.value for s in AssetState if s is not AssetState.UPLOADING}
    ),
    "visibility": enum_field(assets.c.visibility, "visibility", {v.name: v.value for v in Visibility}),
    "processing_state": enum_field(
        assets.c.processing_state,
        "processing_state",
        {f"PROCESSING_{s.name}": s.value for s in ProcessingState} | {s.name: s.value for s in ProcessingState},
    ),
    "analysis_state": enum_field(assets.c.analysis_state, "analysis_state", {s.name: s.value for s in AnalysisState}),
    "caption_state": enum_field(
        assets.c.caption_state, "caption_state", {f"CAPTION_{s.name}": s.value for s in CaptionState}
    ),
    "content_type": _content_type,
    "owner": text_field(assets.c.owner, "owner"),
    "filename": text_field(assets.c.filename, "filename"),
    "title": text_field(assets.c.title, "title"),
    "description": text_field(assets.c.description, "description"),
    "favorite": boolean_field(assets.c.favorite, "favorite"),
    "rating": _rating,
    "width": integer_field(assets.c.width, "width"),
    "height": integer_field(assets.c.height, "height"),
    "size_bytes": integer_field(assets.c.size_bytes, "size_bytes"),
    "create_time": timestamp_field(assets.c.create_time, "create_time"),
    "update_time": timestamp_field(assets.c.update_time, "update_time"),
    "capture_time": _capture_time,
    "delete_time": timestamp_field(assets.c.delete_time, "delete_time"),
}

KEYED_FIELDS: Mapping[str, Callable[[str], FieldCompiler]] = {"labels": _label}
