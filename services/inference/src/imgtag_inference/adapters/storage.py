"""Images by storage key: the storage service's ReadObject as the domain's ImageSource."""

from __future__ import annotations

import grpc

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_common.errors import InvalidArgument, NotFound, from_rpc_error


class StorageImageSource:
    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = 60.0) -> None:
        self._stub = storage_pb2_grpc.StorageServiceStub(channel)
        self._timeout_s = timeout_s

    async def read(self, key: str, *, limit: int) -> bytes:
        """The object's bytes; INVALID_ARGUMENT when it is larger than `limit`, NOT_FOUND when
        the key is unknown (per item in a batch, like an undecodable image)."""
        chunks, size = [], 0
        try:
            # Ask for one byte more than allowed: getting it means the object is too large.
            request = storage_pb2.ReadObjectRequest(key=key, limit=limit + 1)
            async for message in self._stub.ReadObject(request, timeout=self._timeout_s):
                chunks.append(message.chunk)
                size += len(message.chunk)
        except grpc.aio.AioRpcError as error:
            converted = from_rpc_error(error)
            if isinstance(converted, NotFound):
                raise NotFound(f"no stored object {key!r}", reason="IMAGE_NOT_FOUND") from error
            raise converted from error
        if size > limit:
            raise InvalidArgument(f"the stored image is larger than {limit} bytes", reason="IMAGE_TOO_LARGE")
        return b"".join(chunks)
