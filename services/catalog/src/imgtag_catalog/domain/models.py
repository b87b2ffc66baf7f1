"""Catalog domain records, independent of protobuf and SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AssetState(StrEnum):
    ACTIVE = "active"
    TRASHED = "trashed"


class Visibility(StrEnum):
    PRIVATE = "private"
    INSTANCE = "instance"  # every signed-in user of the instance may see it


class Variant(StrEnum):
    ORIGINAL = "original"
    THUMBNAIL = "thumbnail"
    PREVIEW = "preview"


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

    @property
    def name(self) -> str:
        return f"assets/{self.id}"
