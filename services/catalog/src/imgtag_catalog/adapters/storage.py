"""The storage service as the catalog's `ObjectStore` (gRPC, streamed both ways)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import BinaryIO

import grpc

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import NotFound, from_rpc_error


class StorageClient:
    def __init__(self, channel: grpc.aio.Channel, executor: BlockingExecutor, *, chunk_bytes: int) -> None:
        self._stub = storage_pb2_grpc.StorageServiceStub(channel)
        self._executor = executor
        self._chunk_bytes = chunk_bytes

    async def write(self, *, key: str, content_type: str, sha256: str, data: BinaryIO, replicate: bool = True) -> None:
        data.seek(0)

        async def messages() -> AsyncIterator[storage_pb2.WriteObjectRequest]:
            yield storage_pb2.WriteObjectRequest(
                spec=storage_pb2.WriteObjectSpec(
                    key=key, content_type=content_type, expected_sha256=sha256, skip_replication=not replicate
                )
            )
            while chunk := await self._executor.run(data.read, self._chunk_bytes):
                yield storage_pb2.WriteObjectRequest(chunk=chunk)

        try:
            await self._stub.WriteObject(messages(), timeout=600)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error

    async def read(self, *, key: str) -> AsyncIterator[bytes]:
        try:
            async for message in self._stub.ReadObject(storage_pb2.ReadObjectRequest(key=key), timeout=600):
                if message.chunk:
                    yield message.chunk
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error

    async def stat_sha256(self, *, key: str) -> str | None:
        """The stored object's sha256, None when there is none."""
        try:
            return (await self._stub.StatObject(storage_pb2.StatObjectRequest(key=key))).sha256
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise from_rpc_error(error) from error

    async def delete(self, *, key: str) -> None:
        """Idempotent: deleting what is already gone succeeds."""
        try:
            await self._stub.DeleteObject(storage_pb2.DeleteObjectRequest(key=key))
        except grpc.aio.AioRpcError as error:
            converted = from_rpc_error(error)
            if not isinstance(converted, NotFound):
                raise converted from error
