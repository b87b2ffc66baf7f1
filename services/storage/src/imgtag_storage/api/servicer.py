"""StorageService: protobuf in, protobuf out; the rules live in domain/. Methods not defined
here are answered UNIMPLEMENTED by the generated base class (mapped by the server guard)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from google.protobuf import empty_pb2
from grpc.aio import ServicerContext

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_common.errors import InvalidArgument, Unimplemented
from imgtag_common.streams import peek_first
from imgtag_storage.api.mappers import endpoint_to_proto, object_to_proto, parse_endpoint_name
from imgtag_storage.domain.service import StorageService, WriteSpec

_MAX_ENDPOINT_PAGE = 1000


class StorageServicer(storage_pb2_grpc.StorageServiceServicer):
    def __init__(self, storage: StorageService) -> None:
        self._storage = storage

    async def WriteObject(
        self, request_iterator: AsyncIterator[storage_pb2.WriteObjectRequest], context: ServicerContext
    ) -> storage_pb2.StoredObject:
        first, messages = await peek_first(request_iterator)
        if first is None or not first.HasField("spec"):
            raise InvalidArgument("the first WriteObject message must carry spec", reason="MISSING_SPEC")
        spec = first.spec
        if spec.overwrite:
            raise Unimplemented("overwriting stored objects is not supported by this version")
        chunks = (message.chunk async for message in messages)

        stored = await self._storage.write_object(
            WriteSpec(
                key=spec.key,
                content_type=spec.content_type,
                expected_sha256=spec.expected_sha256,
                endpoint_id=parse_endpoint_name(spec.endpoint) if spec.endpoint else None,
            ),
            chunks,
        )
        return object_to_proto(stored)

    async def ReadObject(
        self, request: storage_pb2.ReadObjectRequest, context: ServicerContext
    ) -> AsyncIterator[storage_pb2.ReadObjectResponse]:
        endpoint_id = parse_endpoint_name(request.endpoint) if request.endpoint else None
        obj, chunks = await self._storage.read_object(
            request.key, offset=request.offset, limit=request.limit, endpoint_id=endpoint_id
        )
        yield storage_pb2.ReadObjectResponse(metadata=object_to_proto(obj))
        async for chunk in chunks:
            yield storage_pb2.ReadObjectResponse(chunk=chunk)

    async def StatObject(
        self, request: storage_pb2.StatObjectRequest, context: ServicerContext
    ) -> storage_pb2.StoredObject:
        return object_to_proto(await self._storage.stat_object(request.key))

    async def DeleteObject(self, request: storage_pb2.DeleteObjectRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self._storage.delete_object(request.key)
        return empty_pb2.Empty()

    async def GetEndpoint(
        self, request: storage_pb2.GetEndpointRequest, context: ServicerContext
    ) -> storage_pb2.Endpoint:
        return endpoint_to_proto(await self._storage.get_endpoint(parse_endpoint_name(request.name)))

    async def ListEndpoints(
        self, request: storage_pb2.ListEndpointsRequest, context: ServicerContext
    ) -> storage_pb2.ListEndpointsResponse:
        if request.filter or request.order_by:
            raise InvalidArgument(
                "filter and order_by are not supported for endpoints yet", reason="FILTER_NOT_SUPPORTED"
            )
        if request.page_size < 0:
            raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE")
        size = min(request.page_size or 100, _MAX_ENDPOINT_PAGE)
        after = None
        if request.page_token:
            try:
                after = uuid.UUID(request.page_token)
            except ValueError as error:
                raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from error
        endpoints = await self._storage.list_endpoints(after=after, limit=size + 1)
        page = endpoints[:size]
        token = str(page[-1].id) if len(endpoints) > size else ""
        return storage_pb2.ListEndpointsResponse(endpoints=[endpoint_to_proto(e) for e in page], next_page_token=token)
