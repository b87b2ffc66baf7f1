"""The asset fields ListAssets filters compile to (see the grammar in the catalog contract).
Tag, collection and analysis fields join this list as those features land."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, not_

from imgtag_catalog.db.tables import assets
from imgtag_catalog.domain.models import AssetState, Visibility
from imgtag_common.filtering import (
    FieldCompiler,
    enum_field,
    integer_field,
    invalid,
    text_field,
    timestamp_field,
)


def _content_type(op: str, value: str, position: int) -> ColumnElement[bool]:
    """content_type = "image/png", or a wildcard like "image/*"."""
    if op not in ("=", "!="):
        raise invalid("content_type supports = and !=", position)
    if value.endswith("/*"):
        condition = assets.c.content_type.startswith(value[:-1], autoescape=True)
    else:
        condition = assets.c.content_type == value.lower()
    return condition if op == "=" else not_(condition)


ASSET_FILTER_FIELDS: Mapping[str, FieldCompiler] = {
    "state": enum_field(assets.c.state, "state", {s.name: s.value for s in AssetState}),
    "visibility": enum_field(assets.c.visibility, "visibility", {v.name: v.value for v in Visibility}),
    "content_type": _content_type,
    "owner": text_field(assets.c.owner, "owner"),
    "filename": text_field(assets.c.filename, "filename"),
    "title": text_field(assets.c.title, "title"),
    "description": text_field(assets.c.description, "description"),
    "width": integer_field(assets.c.width, "width"),
    "height": integer_field(assets.c.height, "height"),
    "size_bytes": integer_field(assets.c.size_bytes, "size_bytes"),
    "create_time": timestamp_field(assets.c.create_time, "create_time"),
    "update_time": timestamp_field(assets.c.update_time, "update_time"),
    "delete_time": timestamp_field(assets.c.delete_time, "delete_time"),
}
