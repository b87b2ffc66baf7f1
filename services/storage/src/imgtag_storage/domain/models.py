"""Storage domain records, independent of protobuf and SQL."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from imgtag_common.errors import InvalidArgument

# AIP-122 ids chosen by admins ("nas-backup"); generated ones look the same.
_NEW_ENDPOINT_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
# Ids that exist: also the UUID (as text) of the endpoint bootstrapped before ids were chosen.
_ENDPOINT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_MAX_KEY_BYTES = 1024
_KEY_CHARS = re.compile(r"^[A-Za-z0-9/._-]+$")

DEFAULT_READ_PRIORITY = 100
DEFAULT_READ_WEIGHT = 1
MAX_READ_WEIGHT = 1000


def validate_new_endpoint_id(endpoint_id: str) -> str:
    if not _NEW_ENDPOINT_ID.match(endpoint_id):
        raise InvalidArgument(
            "endpoint_id must be 2-63 characters of a-z, 0-9 and '-', starting with a letter",
            reason="INVALID_ENDPOINT_ID",
        )
    return endpoint_id


def parse_endpoint_id(name: str) -> str:
    """The id in "endpoints/{id}"; INVALID_ARGUMENT for anything else."""
    prefix, _, endpoint_id = name.partition("/")
    if prefix != "endpoints" or not _ENDPOINT_ID.match(endpoint_id):
        raise InvalidArgument(f"{name!r} is not an endpoint name (endpoints/<id>)", reason="INVALID_ENDPOINT_NAME")
    return endpoint_id


def generate_endpoint_id() -> str:
    return "endpoint-" + secrets.token_hex(4)


def validate_key(key: str) -> str:
    """Keys are relative paths of [A-Za-z0-9/._-]: no leading '/', no '.' or '..' segment,
    nothing that could leave an endpoint's root."""
    parts = key.split("/")
    if (
        not key
        or len(key.encode()) > _MAX_KEY_BYTES
        or not _KEY_CHARS.match(key)
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == ".imgtag"  # the service's own area (health probes, staging uploads)
    ):
        raise InvalidArgument(f"invalid object key {key[:100]!r}", reason="INVALID_OBJECT_KEY")
    return key


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
    MISSING = "missing"
    CORRUPT = "corrupt"
    # The object is being deleted; the replica row goes once its bytes are gone.
    DELETING = "deleting"


# Replicas that need a copy (scheduled again by RetryReplication, resync, recovery).
NEEDS_COPY = (ReplicaState.PENDING, ReplicaState.FAILED, ReplicaState.MISSING, ReplicaState.CORRUPT)


class ObjectState(StrEnum):
    # Key claimed by a WriteObject in progress; readable by nobody.
    WRITING = "writing"
    # Key claimed by a presigned PUT waiting for CommitObject.
    UPLOADING = "uploading"
    STORED = "stored"
    DELETING = "deleting"


class ScrubState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class S3Config:
    endpoint_url: str
    bucket: str
    access_key_id: str
    region: str = ""
    prefix: str = ""
    force_path_style: bool = True
    insecure_skip_tls_verify: bool = False
    public_url: str = ""
    # The secret access key, sealed by the SecretBox: never plain text outside an adapter.
    sealed_secret_access_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LocalConfig:
    root_path: str

    def to_dict(self) -> dict[str, Any]:
        return {"root_path": self.root_path}


@dataclass
class Endpoint:
    """Somewhere objects live: a local directory or an S3 bucket (+ prefix)."""

    id: str
    display_name: str
    role: EndpointRole
    config: S3Config | LocalConfig
    read_priority: int = DEFAULT_READ_PRIORITY  # lower is read first
    read_weight: int = DEFAULT_READ_WEIGHT  # share among endpoints of equal priority
    is_default_upload: bool = False
    enabled: bool = True
    health_state: HealthState = HealthState.UNKNOWN
    consecutive_failures: int = 0
    last_check_time: datetime | None = None
    last_healthy_time: datetime | None = None
    last_error: str = ""
    latency_ms: float = 0.0
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"endpoints/{self.id}"

    @property
    def kind(self) -> EndpointKind:
        return EndpointKind.S3 if isinstance(self.config, S3Config) else EndpointKind.LOCAL

    @property
    def etag(self) -> str:
        return f'"{self.update_time.timestamp():.6f}"' if self.update_time else ""

    @property
    def readable(self) -> bool:
        return self.enabled and self.health_state is not HealthState.UNREACHABLE


@dataclass
class EndpointUsage:
    object_count: int = 0
    size_bytes: int = 0
    available_bytes: int = 0


@dataclass
class Replica:
    endpoint_id: str
    state: ReplicaState
    verify_time: datetime | None = None
    last_error: str = ""
    attempt_count: int = 0
    next_attempt_time: datetime | None = None
    create_time: datetime | None = None


@dataclass
class StoredObject:
    key: str
    size_bytes: int
    sha256: str
    content_type: str
    state: ObjectState = ObjectState.STORED
    create_time: datetime | None = None
    replicas: list[Replica] = field(default_factory=list)

    def replica_on(self, endpoint_id: str) -> Replica | None:
        return next((r for r in self.replicas if r.endpoint_id == endpoint_id), None)


@dataclass
class ObjectReplica:
    """A replica with its object's key and size (the admin replication view)."""

    key: str
    size_bytes: int
    replica: Replica


@dataclass
class ReplicationTotals:
    endpoint_id: str
    role: EndpointRole
    counts: dict[ReplicaState, int]
    pending_bytes: int
    oldest_unverified: datetime | None
    last_verify_time: datetime | None


@dataclass
class ReplicationOverview:
    endpoints: list[ReplicationTotals]
    object_count: int
    under_replicated_count: int
    unavailable_count: int


@dataclass
class Scrub:
    id: str
    endpoint_id: str
    state: ScrubState
    total_count: int = 0
    checked_count: int = 0
    verified_count: int = 0
    missing_count: int = 0
    corrupt_count: int = 0
    error_count: int = 0
    error: str = ""
    # The last key checked: a scrub resumed after a restart goes on from here.
    last_key: str = ""
    create_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"endpoints/{self.endpoint_id}/scrubs/{self.id}"


@dataclass(frozen=True)
class WriteSpec:
    key: str
    content_type: str = ""
    expected_sha256: str = ""
    endpoint_id: str | None = None
    skip_replication: bool = False


@dataclass(frozen=True)
class PresignedUrl:
    url: str
    expire_time: datetime
    headers: dict[str, str]
