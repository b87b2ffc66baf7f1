"""Catalog domain records, independent of protobuf and SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AssetState(StrEnum):
    UPLOADING = "uploading"  # the row is claimed, the bytes are on their way; never listed
    ACTIVE = "active"
    TRASHED = "trashed"


class Visibility(StrEnum):
    PRIVATE = "private"
    INSTANCE = "instance"  # every signed-in user of the instance may see it


class Variant(StrEnum):
    ORIGINAL = "original"
    THUMBNAIL = "thumbnail"
    PREVIEW = "preview"


class ProcessingState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class AnalysisState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class CaptionState(StrEnum):
    """The vision-language stage (caption and tags from the active provider), after analysis."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class TagSource(StrEnum):
    AI = "ai"
    MANUAL = "manual"
    COLLECTION = "collection"


class TagState(StrEnum):
    SUGGESTED = "suggested"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclass
class Camera:
    make: str = ""
    model: str = ""
    lens_model: str = ""
    focal_length_mm: float | None = None
    f_number: float | None = None
    exposure_time_s: float | None = None
    iso: int | None = None

    def __bool__(self) -> bool:
        return any(v not in ("", None) for v in self.__dict__.values())


@dataclass
class Location:
    latitude: float
    longitude: float
    altitude_m: float | None = None


@dataclass
class AssetRecord:
    id: uuid.UUID
    owner: str  # "users/{uuid}"
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    state: AssetState
    object_key: str  # internal: where storage keeps the original; never exposed publicly
    create_time: datetime
    update_time: datetime
    title: str = ""
    description: str = ""
    delete_time: datetime | None = None
    purge_time: datetime | None = None
    visibility: Visibility = Visibility.PRIVATE
    duplicate_of: uuid.UUID | None = None
    capture_time: datetime | None = None
    capture_time_zone_known: bool = False
    orientation: int = 1
    camera: Camera = field(default_factory=Camera)
    location: Location | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    favorite: bool = False
    rating: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    perceptual_hash: str = ""
    thumbnail_key: str = ""
    preview_key: str = ""
    processing_state: ProcessingState = ProcessingState.PENDING
    processing_error: str = ""
    analysis_state: AnalysisState = AnalysisState.PENDING
    analysis_error: str = ""
    analysis_time: datetime | None = None
    caption: str = ""
    recognized_text: str = ""
    caption_state: CaptionState = CaptionState.PENDING
    caption_error: str = ""
    caption_provider: str = ""  # "visionProviders/{id}" that wrote the caption
    # Filled when an asset is read for display: its tags and direct collections.
    tags: list[AssetTag] = field(default_factory=list)
    collection_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"assets/{self.id}"


@dataclass
class TagRecord:
    id: uuid.UUID
    name_key: str
    display_name: str
    create_time: datetime
    update_time: datetime
    display_names: dict[str, str] = field(default_factory=dict)  # by language: {"en": "cat", "zh": "猫"}
    category: str = ""
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    usage_count: int = 0
    confirmed_count: int = 0

    @property
    def name(self) -> str:
        return f"tags/{self.id}"

    def localized(self, language: str) -> str:
        """The name in `language` ("zh", "zh-CN", "en-US"...), else the canonical one."""
        base = language.split("-", 1)[0].lower() if language else ""
        return self.display_names.get(base) or self.display_name


@dataclass
class AssetTag:
    """A tag as it is on one asset."""

    tag: TagRecord
    source: TagSource
    state: TagState
    confidence: float
    create_time: datetime
    model: str = ""
    collection_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class CollectionRecord:
    id: uuid.UUID
    owner: str
    display_name: str
    create_time: datetime
    update_time: datetime
    parent_id: uuid.UUID | None = None
    description: str = ""
    auto_tag_ids: list[uuid.UUID] = field(default_factory=list)
    cover_asset_id: uuid.UUID | None = None
    asset_count: int = 0
    total_asset_count: int = 0
    child_count: int = 0

    @property
    def name(self) -> str:
        return f"collections/{self.id}"


@dataclass
class BatchOutcome:
    """What a batch operation did: per-name errors (None = succeeded) or just counts."""

    results: list[tuple[str, Exception | None]] = field(default_factory=list)
    succeeded: int = 0
    failed: int = 0
