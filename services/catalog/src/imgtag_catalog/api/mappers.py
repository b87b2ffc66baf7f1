"""Catalog domain records <-> protobuf messages."""

from __future__ import annotations

import uuid
from datetime import UTC

from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from imgtag.catalog.v1 import assets_pb2, collections_pb2, tags_pb2
from imgtag_catalog.domain.assets import AssetChanges
from imgtag_catalog.domain.collections import CollectionNode
from imgtag_catalog.domain.content_urls import SignedUrls
from imgtag_catalog.domain.models import (
    AnalysisState,
    AssetRecord,
    AssetState,
    AssetTag,
    BatchOutcome,
    CaptionState,
    CollectionRecord,
    Location,
    ProcessingState,
    TagRecord,
    TagSource,
    TagState,
    Variant,
    Visibility,
)
from imgtag_common.errors import ImgTagError, InvalidArgument, to_status_proto
from imgtag_common.resources import to_timestamp

Asset = assets_pb2.Asset
_STATE = {AssetState.ACTIVE: Asset.ACTIVE, AssetState.TRASHED: Asset.TRASHED}
_VISIBILITY = {Visibility.PRIVATE: Asset.PRIVATE, Visibility.INSTANCE: Asset.INSTANCE}
_VARIANT = {
    Asset.VARIANT_UNSPECIFIED: Variant.ORIGINAL,
    Asset.ORIGINAL: Variant.ORIGINAL,
    Asset.THUMBNAIL: Variant.THUMBNAIL,
    Asset.PREVIEW: Variant.PREVIEW,
}
_PROCESSING = {
    ProcessingState.PENDING: Asset.PROCESSING_PENDING,
    ProcessingState.RUNNING: Asset.PROCESSING_RUNNING,
    ProcessingState.COMPLETED: Asset.PROCESSING_COMPLETED,
    ProcessingState.FAILED: Asset.PROCESSING_FAILED,
}
_ANALYSIS = {
    AnalysisState.PENDING: Asset.PENDING,
    AnalysisState.RUNNING: Asset.RUNNING,
    AnalysisState.SUCCEEDED: Asset.SUCCEEDED,
    AnalysisState.FAILED: Asset.FAILED,
    AnalysisState.SKIPPED: Asset.SKIPPED,
}
_CAPTION = {
    CaptionState.PENDING: Asset.CAPTION_PENDING,
    CaptionState.RUNNING: Asset.CAPTION_RUNNING,
    CaptionState.SUCCEEDED: Asset.CAPTION_SUCCEEDED,
    CaptionState.FAILED: Asset.CAPTION_FAILED,
    CaptionState.SKIPPED: Asset.CAPTION_SKIPPED,
}
_SOURCE = {
    TagSource.AI: assets_pb2.AssetTag.AI,
    TagSource.MANUAL: assets_pb2.AssetTag.MANUAL,
    TagSource.COLLECTION: assets_pb2.AssetTag.COLLECTION,
}
_TAG_STATE = {
    TagState.SUGGESTED: assets_pb2.AssetTag.SUGGESTED,
    TagState.CONFIRMED: assets_pb2.AssetTag.CONFIRMED,
    TagState.REJECTED: assets_pb2.AssetTag.REJECTED,
}


def variant_from_proto(variant: int) -> Variant:
    if variant not in _VARIANT:
        raise InvalidArgument(f"unknown variant {variant}", reason="INVALID_VARIANT")
    return _VARIANT[variant]


def visibility_from_proto(visibility: int) -> Visibility:
    if visibility == Asset.VISIBILITY_UNSPECIFIED:
        return Visibility.PRIVATE
    for domain, value in _VISIBILITY.items():
        if value == visibility:
            return domain
    raise InvalidArgument(f"unknown visibility {visibility}", reason="INVALID_VISIBILITY")


def changes_from_proto(asset: assets_pb2.Asset, paths: set[str]) -> AssetChanges:
    location = None
    if "location" in paths and asset.HasField("location"):
        loc = asset.location
        location = Location(loc.latitude, loc.longitude, loc.altitude_meters or None)
    return AssetChanges(
        fields=paths,
        filename=asset.filename,
        title=asset.title,
        description=asset.description,
        visibility=visibility_from_proto(asset.visibility),
        capture_time=asset.capture_time.ToDatetime(UTC) if asset.HasField("capture_time") else None,
        favorite=asset.favorite,
        rating=asset.rating,
        labels=dict(asset.labels),
        location=location,
    )


def asset_tag_to_proto(link: AssetTag, language: str) -> assets_pb2.AssetTag:
    return assets_pb2.AssetTag(
        tag=link.tag.name,
        display_name=link.tag.localized(language),
        category=link.tag.category,
        source=_SOURCE[link.source],
        confidence=link.confidence,
        state=_TAG_STATE[link.state],
        model=link.model,
        create_time=to_timestamp(link.create_time),
        collections=[f"collections/{c}" for c in link.collection_ids],
    )


def asset_to_proto(
    record: AssetRecord, urls: SignedUrls | None = None, *, language: str = "", with_exif: bool = False
) -> assets_pb2.Asset:
    message = Asset(
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
        capture_time=to_timestamp(record.capture_time),
        capture_time_zone_known=record.capture_time_zone_known,
        tags=[asset_tag_to_proto(t, language) for t in record.tags],
        collections=[f"collections/{c}" for c in record.collection_ids],
        favorite=record.favorite,
        rating=record.rating,
        labels=record.labels,
        perceptual_hash=record.perceptual_hash,
        processing_state=_PROCESSING[record.processing_state],
        processing_error=record.processing_error,
        analysis_state=_ANALYSIS[record.analysis_state],
        analysis_error=record.analysis_error,
        analysis_time=to_timestamp(record.analysis_time),
        caption=record.caption,
        recognized_text=record.recognized_text,
        caption_state=_CAPTION[record.caption_state],
        caption_error=record.caption_error,
        caption_provider=record.caption_provider,
        etag=f'W/"{int(record.update_time.timestamp() * 1_000_000)}"',
        visibility=_VISIBILITY[record.visibility],
        has_suggestions=any(t.source is TagSource.AI and t.state is TagState.SUGGESTED for t in record.tags),
    )
    c = record.camera
    if c:
        message.camera.CopyFrom(
            assets_pb2.CameraInfo(
                make=c.make,
                model=c.model,
                lens_model=c.lens_model,
                focal_length_mm=c.focal_length_mm or 0,
                f_number=c.f_number or 0,
                exposure_time_seconds=c.exposure_time_s or 0,
                iso=c.iso or 0,
            )
        )
    if record.location:
        message.location.CopyFrom(
            assets_pb2.GeoLocation(
                latitude=record.location.latitude,
                longitude=record.location.longitude,
                altitude_meters=record.location.altitude_m or 0,
            )
        )
    if with_exif and record.exif:
        exif = struct_pb2.Struct()
        exif.update(record.exif)
        message.exif.CopyFrom(exif)
    _set_urls(message, urls)
    return message


def public_asset_to_proto(record: AssetRecord, urls: SignedUrls) -> assets_pb2.Asset:
    """What an API key embedded in a web page gets from the random-image API: enough to show
    the picture, nothing about who owns it or where, when and with what it was taken (no owner,
    file name, checksum, camera, location or EXIF)."""
    message = Asset(
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


def _set_urls(message: assets_pb2.Asset, urls: SignedUrls | None) -> None:
    if urls is None:
        return
    message.content_urls.original = urls.urls.get(Variant.ORIGINAL, "")
    message.content_urls.thumbnail = urls.urls.get(Variant.THUMBNAIL, "")
    message.content_urls.preview = urls.urls.get(Variant.PREVIEW, "")
    message.content_urls.expire_time.FromSeconds(urls.expires)


def status_of(error: Exception | None) -> status_pb2.Status:
    """OK for None; the domain error's status; a bare INTERNAL for anything else (a bug)."""
    if error is None:
        return status_pb2.Status()
    if isinstance(error, ImgTagError):
        return to_status_proto(error)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


def batch_to_proto(outcome: BatchOutcome) -> assets_pb2.BatchAssetsResponse:
    return assets_pb2.BatchAssetsResponse(
        results=[assets_pb2.AssetResult(asset=name, status=status_of(error)) for name, error in outcome.results],
        succeeded_count=outcome.succeeded,
        failed_count=outcome.failed,
    )


def tag_to_proto(tag: TagRecord) -> tags_pb2.Tag:
    return tags_pb2.Tag(
        name=tag.name,
        display_name=tag.display_name,
        display_names=tag.display_names,
        category=tag.category,
        aliases=tag.aliases,
        description=tag.description,
        usage_count=tag.usage_count,
        confirmed_count=tag.confirmed_count,
        create_time=to_timestamp(tag.create_time),
        update_time=to_timestamp(tag.update_time),
    )


def collection_to_proto(
    collection: CollectionRecord, tag_names: dict[uuid.UUID, str], cover: uuid.UUID | None
) -> collections_pb2.Collection:
    return collections_pb2.Collection(
        name=collection.name,
        display_name=collection.display_name,
        description=collection.description,
        parent=f"collections/{collection.parent_id}" if collection.parent_id else "",
        auto_tags=[f"tags/{t}" for t in collection.auto_tag_ids if t in tag_names],
        cover_asset=f"assets/{cover}" if cover else "",
        asset_count=collection.asset_count,
        total_asset_count=collection.total_asset_count,
        child_count=collection.child_count,
        owner=collection.owner,
        create_time=to_timestamp(collection.create_time),
        update_time=to_timestamp(collection.update_time),
        etag=f'W/"{int(collection.update_time.timestamp() * 1_000_000)}"',
    )


def tree_to_proto(
    nodes: list[CollectionNode], tag_names: dict[uuid.UUID, str], covers: dict[uuid.UUID, uuid.UUID]
) -> list[collections_pb2.CollectionNode]:
    return [
        collections_pb2.CollectionNode(
            collection=collection_to_proto(n.collection, tag_names, covers.get(n.collection.id)),
            children=tree_to_proto(n.children, tag_names, covers),
        )
        for n in nodes
    ]
