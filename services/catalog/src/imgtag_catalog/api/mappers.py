"""Catalog domain records -> protobuf messages."""

from __future__ import annotations

from imgtag.catalog.v1 import catalog_pb2
from imgtag_catalog.domain.models import AssetRecord, AssetState
from imgtag_common.resources import to_timestamp

_STATE = {AssetState.ACTIVE: catalog_pb2.Asset.ACTIVE, AssetState.TRASHED: catalog_pb2.Asset.TRASHED}


def asset_to_proto(record: AssetRecord) -> catalog_pb2.Asset:
    return catalog_pb2.Asset(
        name=record.name,
        filename=record.filename,
        content_type=record.content_type,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        width=record.width,
        height=record.height,
        state=_STATE[record.state],
        create_time=to_timestamp(record.create_time),
        update_time=to_timestamp(record.update_time),
        delete_time=to_timestamp(record.delete_time),
        purge_time=to_timestamp(record.purge_time),
        owner=record.owner if record.owner.startswith("users/") else "",
        title=record.title,
        description=record.description,
        etag=f'W/"{int(record.update_time.timestamp() * 1_000_000)}"',
    )
