"""Storage domain records <-> protobuf. Secrets never leave: S3 keys only as has_secret_access_key,
and no message carries a sealed value."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2

from imgtag.storage.v1 import storage_pb2
from imgtag_common.errors import InvalidArgument
from imgtag_common.resources import to_timestamp
from imgtag_storage.domain.endpoints import EndpointDraft
from imgtag_storage.domain.models import (
    Endpoint,
    EndpointRole,
    EndpointUsage,
    HealthState,
    LocalConfig,
    ObjectReplica,
    Replica,
    ReplicaState,
    ReplicationOverview,
    S3Config,
    Scrub,
    ScrubState,
    StoredObject,
)

_ROLE = {EndpointRole.PRIMARY: storage_pb2.Endpoint.PRIMARY, EndpointRole.BACKUP: storage_pb2.Endpoint.BACKUP}
_ROLE_IN = {v: k for k, v in _ROLE.items()}
_HEALTH = {
    HealthState.UNKNOWN: storage_pb2.EndpointHealth.STATE_UNSPECIFIED,
    HealthState.HEALTHY: storage_pb2.EndpointHealth.HEALTHY,
    HealthState.DEGRADED: storage_pb2.EndpointHealth.DEGRADED,
    HealthState.UNREACHABLE: storage_pb2.EndpointHealth.UNREACHABLE,
}
_REPLICA = {
    ReplicaState.PENDING: storage_pb2.Replica.PENDING,
    ReplicaState.VERIFIED: storage_pb2.Replica.VERIFIED,
    ReplicaState.FAILED: storage_pb2.Replica.FAILED,
    ReplicaState.MISSING: storage_pb2.Replica.MISSING,
    ReplicaState.CORRUPT: storage_pb2.Replica.CORRUPT,
    # Going away with its object; never visible for long (objects being deleted are hidden).
    ReplicaState.DELETING: storage_pb2.Replica.PENDING,
}
_SCRUB = {
    ScrubState.RUNNING: storage_pb2.Scrub.RUNNING,
    ScrubState.SUCCEEDED: storage_pb2.Scrub.SUCCEEDED,
    ScrubState.FAILED: storage_pb2.Scrub.FAILED,
}


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=max(seconds, 0)))
    return d


def endpoint_to_proto(endpoint: Endpoint, usage: EndpointUsage | None = None) -> storage_pb2.Endpoint:
    message = storage_pb2.Endpoint(
        name=endpoint.name,
        display_name=endpoint.display_name,
        type=storage_pb2.Endpoint.S3 if isinstance(endpoint.config, S3Config) else storage_pb2.Endpoint.LOCAL,
        role=_ROLE[endpoint.role],
        read_priority=endpoint.read_priority,
        read_weight=endpoint.read_weight,
        default_upload=endpoint.is_default_upload,
        enabled=endpoint.enabled,
        health=storage_pb2.EndpointHealth(
            state=_HEALTH[endpoint.health_state],
            last_check_time=to_timestamp(endpoint.last_check_time),
            last_healthy_time=to_timestamp(endpoint.last_healthy_time),
            last_error=endpoint.last_error,
            latency=_duration(endpoint.latency_ms / 1000),
            consecutive_failures=endpoint.consecutive_failures,
        ),
        create_time=to_timestamp(endpoint.create_time),
        update_time=to_timestamp(endpoint.update_time),
        etag=endpoint.etag,
    )
    if usage is not None:
        message.usage.CopyFrom(
            storage_pb2.EndpointUsage(
                object_count=usage.object_count, size_bytes=usage.size_bytes, available_bytes=usage.available_bytes
            )
        )
    c = endpoint.config
    if isinstance(c, S3Config):
        message.s3.CopyFrom(
            storage_pb2.S3Config(
                endpoint_url=c.endpoint_url,
                region=c.region,
                bucket=c.bucket,
                prefix=c.prefix,
                access_key_id=c.access_key_id,
                has_secret_access_key=bool(c.sealed_secret_access_key),
                force_path_style=c.force_path_style,
                insecure_skip_tls_verify=c.insecure_skip_tls_verify,
                public_url=c.public_url,
            )
        )
    else:
        message.local.CopyFrom(storage_pb2.LocalConfig(root_path=c.root_path))
    return message


def draft_from_proto(message: storage_pb2.Endpoint) -> EndpointDraft:
    config: S3Config | LocalConfig | None = None
    secret: str | None = None
    if message.HasField("s3"):
        s3 = message.s3
        config = S3Config(
            endpoint_url=s3.endpoint_url.strip(),
            bucket=s3.bucket.strip(),
            access_key_id=s3.access_key_id.strip(),
            region=s3.region.strip(),
            prefix=s3.prefix.strip(),
            force_path_style=s3.force_path_style,
            insecure_skip_tls_verify=s3.insecure_skip_tls_verify,
            public_url=s3.public_url.strip(),
        )
        secret = s3.secret_access_key
    elif message.HasField("local"):
        config = LocalConfig(root_path=message.local.root_path.strip())
    return EndpointDraft(
        display_name=message.display_name,
        role=_ROLE_IN.get(message.role),
        config=config,
        secret_access_key=secret,
        read_priority=message.read_priority if message.HasField("read_priority") else None,
        read_weight=message.read_weight if message.HasField("read_weight") else None,
        enabled=message.enabled if message.HasField("enabled") else None,
        etag=message.etag,
    )


def replica_to_proto(r: Replica) -> storage_pb2.Replica:
    return storage_pb2.Replica(
        endpoint=f"endpoints/{r.endpoint_id}",
        state=_REPLICA[r.state],
        verify_time=to_timestamp(r.verify_time),
        last_error=r.last_error,
        attempt_count=r.attempt_count,
        next_attempt_time=to_timestamp(r.next_attempt_time) if r.state is not ReplicaState.VERIFIED else None,
    )


def object_to_proto(obj: StoredObject) -> storage_pb2.StoredObject:
    return storage_pb2.StoredObject(
        key=obj.key,
        size_bytes=obj.size_bytes,
        sha256=obj.sha256,
        content_type=obj.content_type,
        create_time=to_timestamp(obj.create_time),
        replicas=[replica_to_proto(r) for r in obj.replicas if r.state is not ReplicaState.DELETING],
    )


def object_replica_to_proto(item: ObjectReplica) -> storage_pb2.ObjectReplica:
    return storage_pb2.ObjectReplica(key=item.key, size_bytes=item.size_bytes, replica=replica_to_proto(item.replica))


def overview_to_proto(overview: ReplicationOverview, now: datetime) -> storage_pb2.GetReplicationStatusResponse:
    return storage_pb2.GetReplicationStatusResponse(
        endpoints=[
            storage_pb2.EndpointReplicationStatus(
                endpoint=f"endpoints/{t.endpoint_id}",
                role=_ROLE[t.role],
                verified_count=t.counts[ReplicaState.VERIFIED],
                pending_count=t.counts[ReplicaState.PENDING],
                failed_count=t.counts[ReplicaState.FAILED],
                missing_count=t.counts[ReplicaState.MISSING],
                corrupt_count=t.counts[ReplicaState.CORRUPT],
                pending_bytes=t.pending_bytes,
                lag=_duration((now - t.oldest_unverified).total_seconds() if t.oldest_unverified else 0),
                last_verify_time=to_timestamp(t.last_verify_time),
            )
            for t in overview.endpoints
        ],
        object_count=overview.object_count,
        under_replicated_count=overview.under_replicated_count,
        unavailable_count=overview.unavailable_count,
        compute_time=to_timestamp(now),
    )


def scrub_to_proto(scrub: Scrub) -> storage_pb2.Scrub:
    return storage_pb2.Scrub(
        name=scrub.name,
        state=_SCRUB[scrub.state],
        total_count=scrub.total_count,
        checked_count=scrub.checked_count,
        verified_count=scrub.verified_count,
        missing_count=scrub.missing_count,
        corrupt_count=scrub.corrupt_count,
        error_count=scrub.error_count,
        error=scrub.error,
        create_time=to_timestamp(scrub.create_time),
        end_time=to_timestamp(scrub.end_time),
    )


# ---------------------------------------------------------------------------- page tokens


def _fingerprint(filter_text: str, order_by: str) -> str:
    return hashlib.sha256(f"{filter_text}\x00{order_by}".encode()).hexdigest()[:12]


def _plain(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _unplain(value: Any) -> Any:
    return datetime.fromisoformat(value["t"]) if isinstance(value, dict) else value


def encode_page_token(position: tuple[Any, ...], *, filter_text: str, order_by: str) -> str:
    raw = json.dumps({"f": _fingerprint(filter_text, order_by), "p": [_plain(v) for v in position]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, *, filter_text: str, order_by: str, size: int) -> tuple[Any, ...] | None:
    """The keyset position in a token; INVALID_ARGUMENT when it is not one of ours or was made
    for another filter or order."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = tuple(_unplain(v) for v in data["p"])
        valid = data["f"] == _fingerprint(filter_text, order_by) and len(position) == size
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise InvalidArgument(
            "page_token is not valid for this filter and order_by; start again without it",
            reason="INVALID_PAGE_TOKEN",
        )
    return position
