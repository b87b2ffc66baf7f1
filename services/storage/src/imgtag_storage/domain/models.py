"""Storage domain records, independent of protobuf and SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EndpointKind(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class EndpointRole(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class HealthState(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"


class ReplicaState(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


@dataclass
class Endpoint:
    """Somewhere objects live: a local directory or an S3 bucket (+ prefix)."""

    id: uuid.UUID
    display_name: str
    kind: EndpointKind
    role: EndpointRole
    config: dict[str, Any]  # backend settings, secrets included: never mapped to public messages
    read_priority: int = 100  # lower is read first
    read_weight: int = 1  # share among endpoints of equal priority
    is_default_upload: bool = False
    enabled: bool = True
    health_state: HealthState = HealthState.UNKNOWN
    last_check_time: datetime | None = None
    last_error: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"endpoints/{self.id}"


@dataclass
class Replica:
    endpoint_id: uuid.UUID
    state: ReplicaState
    verify_time: datetime | None = None
    last_error: str = ""
    attempt_count: int = 0


@dataclass
class StoredObject:
    key: str
    size_bytes: int
    sha256: str
    content_type: str
    create_time: datetime | None = None
    replicas: list[Replica] = field(default_factory=list)
