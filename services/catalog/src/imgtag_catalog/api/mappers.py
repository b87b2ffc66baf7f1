"""Catalog domain records -> protobuf messages."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from imgtag.catalog.v1 import catalog_pb2
from imgtag_catalog.domain.models import AssetRecord, AssetState

_STATE = {AssetState.ACTIVE: catalog_pb2.Asset.ACTIVE, AssetState.TRASHED: catalog_pb2.Asset.TRASHED}


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


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
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        delete_time=timestamp(record.delete_time),
        purge_time=timestamp(record.purge_time),
        owner=record.owner if record.owner.startswith("users/") else "",
        title=record.title,
        description=record.description,
        etag=f'W/"{int(record.update_time.timestamp() * 1_000_000)}"',
    )
