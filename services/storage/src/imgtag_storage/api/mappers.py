"""Storage domain records -> protobuf. Secrets never leave: S3 keys only as has_secret_access_key."""

from __future__ import annotations

import uuid

from imgtag.storage.v1 import storage_pb2
from imgtag_common.resources import parse_resource_id, to_timestamp
from imgtag_storage.domain.models import Endpoint, EndpointKind, EndpointRole, HealthState, ReplicaState, StoredObject

_ROLE = {EndpointRole.PRIMARY: storage_pb2.Endpoint.PRIMARY, EndpointRole.BACKUP: storage_pb2.Endpoint.BACKUP}
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
}


def parse_endpoint_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "endpoints")


def endpoint_to_proto(endpoint: Endpoint) -> storage_pb2.Endpoint:
    message = storage_pb2.Endpoint(
        name=endpoint.name,
        display_name=endpoint.display_name,
        type=storage_pb2.Endpoint.S3 if endpoint.kind is EndpointKind.S3 else storage_pb2.Endpoint.LOCAL,
        role=_ROLE[endpoint.role],
        read_priority=endpoint.read_priority,
        read_weight=endpoint.read_weight,
        default_upload=endpoint.is_default_upload,
        enabled=endpoint.enabled,
        health=storage_pb2.EndpointHealth(
            state=_HEALTH[endpoint.health_state],
            last_check_time=to_timestamp(endpoint.last_check_time),
            last_error=endpoint.last_error,
        ),
        create_time=to_timestamp(endpoint.create_time),
        update_time=to_timestamp(endpoint.update_time),
    )
    c = endpoint.config
    if endpoint.kind is EndpointKind.S3:
        message.s3.CopyFrom(
            storage_pb2.S3Config(
                endpoint_url=c["endpoint_url"],
                region=c.get("region", ""),
                bucket=c["bucket"],
                prefix=c.get("prefix", ""),
                access_key_id=c["access_key_id"],
                has_secret_access_key=bool(c.get("secret_access_key")),
            )
        )
    else:
        message.local.CopyFrom(storage_pb2.LocalConfig(root_path=c["root"]))
    return message


def object_to_proto(obj: StoredObject) -> storage_pb2.StoredObject:
    return storage_pb2.StoredObject(
        key=obj.key,
        size_bytes=obj.size_bytes,
        sha256=obj.sha256,
        content_type=obj.content_type,
        create_time=to_timestamp(obj.create_time),
        replicas=[
            storage_pb2.Replica(
                endpoint=f"endpoints/{r.endpoint_id}",
                state=_REPLICA[r.state],
                verify_time=to_timestamp(r.verify_time),
                last_error=r.last_error,
                attempt_count=r.attempt_count,
            )
            for r in obj.replicas
        ],
    )
