"""Catalog domain records <-> protobuf messages."""

from __future__ import annotations

from imgtag.catalog.v1 import catalog_pb2
from imgtag_catalog.domain.content_urls import SignedUrls
from imgtag_catalog.domain.models import AssetRecord, AssetState, Variant, Visibility
from imgtag_common.errors import InvalidArgument
from imgtag_common.resources import to_timestamp

_STATE = {AssetState.ACTIVE: catalog_pb2.Asset.ACTIVE, AssetState.TRASHED: catalog_pb2.Asset.TRASHED}
_VISIBILITY = {Visibility.PRIVATE: catalog_pb2.Asset.PRIVATE, Visibility.INSTANCE: catalog_pb2.Asset.INSTANCE}
_VARIANT = {
    catalog_pb2.Asset.VARIANT_UNSPECIFIED: Variant.ORIGINAL,
    catalog_pb2.Asset.ORIGINAL: Variant.ORIGINAL,
    catalog_pb2.Asset.THUMBNAIL: Variant.THUMBNAIL,
    catalog_pb2.Asset.PREVIEW: Variant.PREVIEW,
}


def variant_from_proto(variant: int) -> Variant:
    if variant not in _VARIANT:
        raise InvalidArgument(f"unknown variant {variant}", reason="INVALID_VARIANT")
    return _VARIANT[variant]


def visibility_from_proto(visibility: int) -> Visibility:
    if visibility == catalog_pb2.Asset.VISIBILITY_UNSPECIFIED:
        return Visibility.PRIVATE
    for domain, value in _VISIBILITY.items():
        if value == visibility:
            return domain
    raise InvalidArgument(f"unknown visibility {visibility}", reason="INVALID_VISIBILITY")


def asset_to_proto(record: AssetRecord, urls: SignedUrls | None = None) -> catalog_pb2.Asset:
    message = catalog_pb2.Asset(
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
        owner=record.owner,
        title=record.title,
        description=record.description,
        etag=f'W/"{int(record.update_time.timestamp() * 1_000_000)}"',
        visibility=_VISIBILITY[record.visibility],
    )
    _set_urls(message, urls)
    return message


def public_asset_to_proto(record: AssetRecord, urls: SignedUrls) -> catalog_pb2.Asset:
    """What an API key embedded in a web page gets from the random-image API: enough to show
    the picture, nothing about who owns it or where, when and with what it was taken (no owner,
    file name, checksum, camera or location)."""
    message = catalog_pb2.Asset(
        name=record.name,
        content_type=record.content_type,
        width=record.width,
        height=record.height,
        state=_STATE[record.state],
        title=record.title,
        description=record.description,
    )
    _set_urls(message, urls)
    return message


def _set_urls(message: catalog_pb2.Asset, urls: SignedUrls | None) -> None:
    if urls is None:
        return
    message.content_urls.original = urls.urls.get(Variant.ORIGINAL, "")
    message.content_urls.thumbnail = urls.urls.get(Variant.THUMBNAIL, "")
    message.content_urls.preview = urls.urls.get(Variant.PREVIEW, "")
    message.content_urls.expire_time.FromSeconds(urls.expires)
