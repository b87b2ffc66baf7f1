"""StorageService: protobuf in, protobuf out; the rules live in domain/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from google.protobuf import empty_pb2
from grpc.aio import ServicerContext

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_common.errors import InvalidArgument, Unimplemented
from imgtag_common.pagination import clamp_page_size
from imgtag_common.streams import peek_first
from imgtag_storage.api import mappers
from imgtag_storage.domain.endpoints import EndpointService
from imgtag_storage.domain.models import WriteSpec, parse_endpoint_id
from imgtag_storage.domain.objects import ObjectService
from imgtag_storage.domain.replication import ReplicationService

_METHODS = {storage_pb2.CreatePresignedUrlRequest.GET: "GET", storage_pb2.CreatePresignedUrlRequest.PUT: "PUT"}


def _optional_endpoint(name: str) -> str | None:
    return parse_endpoint_id(name) if name else None


class StorageServicer(storage_pb2_grpc.StorageServiceServicer):
    def __init__(self, *, endpoints: EndpointService, objects: ObjectService, replication: ReplicationService) -> None:
        self._endpoints = endpoints
        self._objects = objects
        self._replication = replication

    # ------------------------------------------------------------------ endpoints

    async def _with_usage(self, endpoint) -> storage_pb2.Endpoint:
        return mappers.endpoint_to_proto(endpoint, await self._endpoints.usage(endpoint))

    async def CreateEndpoint(self, request: storage_pb2.CreateEndpointRequest, context: ServicerContext):
        created = await self._endpoints.create(
            mappers.draft_from_proto(request.endpoint),
            endpoint_id=request.endpoint_id,
            validate_only=request.validate_only,
        )
        return mappers.endpoint_to_proto(created)

    async def GetEndpoint(self, request: storage_pb2.GetEndpointRequest, context: ServicerContext):
        return await self._with_usage(await self._endpoints.get(parse_endpoint_id(request.name)))

    async def ListEndpoints(self, request: storage_pb2.ListEndpointsRequest, context: ServicerContext):
        size = clamp_page_size(request.page_size, default=50, maximum=500)
        after = mappers.decode_page_token(
            request.page_token, filter_text=request.filter, order_by=request.order_by, size=2
        )
        page = await self._endpoints.list_page(
            filter_text=request.filter, order_by=request.order_by, after=after, limit=size + 1
        )
        token = ""
        if len(page) > size:
            last = page[size - 1]
            field = request.order_by.split()[0] if request.order_by.split() else "read_priority"
            token = mappers.encode_page_token(
                (getattr(last, field), last.id), filter_text=request.filter, order_by=request.order_by
            )
        return storage_pb2.ListEndpointsResponse(
            endpoints=[mappers.endpoint_to_proto(e) for e in page[:size]], next_page_token=token
        )

    async def UpdateEndpoint(self, request: storage_pb2.UpdateEndpointRequest, context: ServicerContext):
        updated = await self._endpoints.update(
            parse_endpoint_id(request.endpoint.name),
            mappers.draft_from_proto(request.endpoint),
            mask=list(request.update_mask.paths),
            validate_only=request.validate_only,
        )
        return mappers.endpoint_to_proto(updated)

    async def DeleteEndpoint(self, request: storage_pb2.DeleteEndpointRequest, context: ServicerContext):
        await self._endpoints.delete(parse_endpoint_id(request.name), force=request.force)
        return empty_pb2.Empty()

    async def CheckEndpointHealth(self, request: storage_pb2.CheckEndpointHealthRequest, context: ServicerContext):
        return mappers.endpoint_to_proto(await self._endpoints.check_health(parse_endpoint_id(request.name)))

    async def SetDefaultUploadEndpoint(
        self, request: storage_pb2.SetDefaultUploadEndpointRequest, context: ServicerContext
    ):
        return mappers.endpoint_to_proto(await self._endpoints.set_default_upload(parse_endpoint_id(request.name)))

    # ------------------------------------------------------------------ replication

    async def GetReplicationStatus(self, request: storage_pb2.GetReplicationStatusRequest, context: ServicerContext):
        return mappers.overview_to_proto(await self._replication.overview(), datetime.now(UTC))

    async def ListReplicas(self, request: storage_pb2.ListReplicasRequest, context: ServicerContext):
        size = clamp_page_size(request.page_size, default=100, maximum=1000)
        after = mappers.decode_page_token(
            request.page_token, filter_text=request.filter, order_by=request.order_by, size=3
        )
        page = await self._replication.list_page(
            filter_text=request.filter, order_by=request.order_by, after=after, limit=size + 1
        )
        token = ""
        if len(page) > size:
            last = page[size - 1]
            field = request.order_by.split()[0] if request.order_by.split() else "next_attempt_time"
            value = {
                "key": last.key,
                "attempt_count": last.replica.attempt_count,
                "next_attempt_time": last.replica.next_attempt_time
                if last.replica.next_attempt_time is not None
                else datetime(9999, 1, 1, tzinfo=UTC),
            }[field]
            token = mappers.encode_page_token(
                (value, last.key, last.replica.endpoint_id), filter_text=request.filter, order_by=request.order_by
            )
        return storage_pb2.ListReplicasResponse(
            replicas=[mappers.object_replica_to_proto(r) for r in page[:size]], next_page_token=token
        )

    async def RetryReplication(self, request: storage_pb2.RetryReplicationRequest, context: ServicerContext):
        count = await self._replication.retry(keys=list(request.keys), endpoint_id=_optional_endpoint(request.endpoint))
        return storage_pb2.RetryReplicationResponse(scheduled_count=count)

    async def ResyncEndpoint(self, request: storage_pb2.ResyncEndpointRequest, context: ServicerContext):
        count = await self._replication.resync(parse_endpoint_id(request.name))
        return storage_pb2.ResyncEndpointResponse(scheduled_count=count)

    async def ScrubEndpoint(self, request: storage_pb2.ScrubEndpointRequest, context: ServicerContext):
        return mappers.scrub_to_proto(await self._replication.start_scrub(parse_endpoint_id(request.name)))

    async def GetScrub(self, request: storage_pb2.GetScrubRequest, context: ServicerContext):
        parts = request.name.split("/")
        if len(parts) != 4 or parts[2] != "scrubs" or not parts[3]:
            raise InvalidArgument(
                f"{request.name!r} is not a scrub name (endpoints/<id>/scrubs/<id>)", reason="INVALID_SCRUB_NAME"
            )
        endpoint_id = parse_endpoint_id("/".join(parts[:2]))
        return mappers.scrub_to_proto(await self._replication.get_scrub(endpoint_id, parts[3]))

    # ------------------------------------------------------------------ objects

    async def WriteObject(
        self, request_iterator: AsyncIterator[storage_pb2.WriteObjectRequest], context: ServicerContext
    ) -> storage_pb2.StoredObject:
        first, messages = await peek_first(request_iterator)
        if first is None or not first.HasField("spec"):
            raise InvalidArgument("the first WriteObject message must carry spec", reason="MISSING_SPEC")
        spec = first.spec
        if spec.overwrite:
            raise Unimplemented("overwriting stored objects is not supported", reason="OVERWRITE_NOT_SUPPORTED")
        stored = await self._objects.write(
            WriteSpec(
                key=spec.key,
                content_type=spec.content_type,
                expected_sha256=spec.expected_sha256,
                endpoint_id=_optional_endpoint(spec.endpoint),
                skip_replication=spec.skip_replication,
            ),
            (message.chunk async for message in messages if message.chunk),
        )
        return mappers.object_to_proto(stored)

    async def ReadObject(
        self, request: storage_pb2.ReadObjectRequest, context: ServicerContext
    ) -> AsyncIterator[storage_pb2.ReadObjectResponse]:
        obj, chunks = await self._objects.read(
            request.key, offset=request.offset, limit=request.limit, endpoint_id=_optional_endpoint(request.endpoint)
        )
        yield storage_pb2.ReadObjectResponse(metadata=mappers.object_to_proto(obj))
        async for chunk in chunks:
            yield storage_pb2.ReadObjectResponse(chunk=chunk)

    async def StatObject(self, request: storage_pb2.StatObjectRequest, context: ServicerContext):
        return mappers.object_to_proto(await self._objects.stat(request.key))

    async def DeleteObject(self, request: storage_pb2.DeleteObjectRequest, context: ServicerContext):
        await self._objects.delete(request.key)
        return empty_pb2.Empty()

    async def ListObjects(self, request: storage_pb2.ListObjectsRequest, context: ServicerContext):
        size = clamp_page_size(request.page_size, default=1000, maximum=10_000)
        page = await self._objects.list(
            prefix=request.prefix,
            endpoint_id=_optional_endpoint(request.endpoint),
            after=request.page_token,
            limit=size + 1,
        )
        token = page[size - 1].key if len(page) > size else ""
        return storage_pb2.ListObjectsResponse(
            objects=[mappers.object_to_proto(o) for o in page[:size]], next_page_token=token
        )

    async def CreatePresignedUrl(self, request: storage_pb2.CreatePresignedUrlRequest, context: ServicerContext):
        method = _METHODS.get(request.method)
        if method is None:
            raise InvalidArgument("method must be GET or PUT", reason="INVALID_METHOD")
        presigned = await self._objects.presign(
            request.key,
            method=method,
            ttl=request.ttl.ToTimedelta() if request.HasField("ttl") else None,
            content_type=request.content_type,
            endpoint_id=_optional_endpoint(request.endpoint),
        )
        return storage_pb2.CreatePresignedUrlResponse(
            url=presigned.url, expire_time=mappers.to_timestamp(presigned.expire_time), headers=presigned.headers
        )

    async def CommitObject(self, request: storage_pb2.CommitObjectRequest, context: ServicerContext):
        if request.size_bytes < 0 or len(request.sha256) != 64:
            raise InvalidArgument("size_bytes and a 64-character sha256 are required", reason="INVALID_COMMIT")
        return mappers.object_to_proto(
            await self._objects.commit(request.key, size_bytes=request.size_bytes, sha256=request.sha256)
        )
