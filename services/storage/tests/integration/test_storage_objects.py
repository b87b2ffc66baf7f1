"""StorageService over gRPC against real PostgreSQL and the real SeaweedFS S3 (session stack)."""

from __future__ import annotations

import hashlib
import os
import uuid

import grpc
import pytest
from minio import Minio

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_dev.testing import as_service, as_user, channel_as

pytestmark = pytest.mark.integration


@pytest.fixture
async def storage(stack, service_tokens):
    """Storage's internal object RPCs, called as another ImgTag service would."""
    async with channel_as(stack.service_target("storage"), as_service(service_tokens)) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def _messages(key: str, data: bytes, *, chunk: int = 64 * 1024, **spec):
    yield storage_pb2.WriteObjectRequest(spec=storage_pb2.WriteObjectSpec(key=key, **spec))
    for i in range(0, len(data), chunk):
        yield storage_pb2.WriteObjectRequest(chunk=data[i : i + chunk])


async def _read(storage, key: str, **kwargs) -> tuple[storage_pb2.StoredObject, bytes]:
    meta, body = None, bytearray()
    async for message in storage.ReadObject(storage_pb2.ReadObjectRequest(key=key, **kwargs)):
        if message.HasField("metadata"):
            meta = message.metadata
        body += message.chunk
    return meta, bytes(body)


def _s3(stack) -> Minio:
    return Minio(
        stack.s3.endpoint_url.split("://")[1],
        access_key=stack.s3.credentials.access_key,
        secret_key=stack.s3.credentials.secret_key,
        secure=False,
    )


async def test_written_bytes_land_in_s3_and_read_back_identical(stack, storage) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = f"test/{uuid.uuid4()}"
    stored = await storage.WriteObject(
        _messages(key, data, content_type="application/octet-stream", expected_sha256=hashlib.sha256(data).hexdigest())
    )
    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert [r.state for r in stored.replicas] == [storage_pb2.Replica.VERIFIED]
    # The object really is in the S3 bucket, byte for byte.
    assert _s3(stack).get_object("imgtag", key).read() == data
    meta, body = await _read(storage, key)
    assert body == data and meta.sha256 == stored.sha256


async def test_ranged_read(storage) -> None:
    key = f"test/{uuid.uuid4()}"
    await storage.WriteObject(_messages(key, b"0123456789"))
    _, body = await _read(storage, key, offset=3, limit=4)
    assert body == b"3456"


async def test_checksum_mismatch_is_data_loss_and_stores_nothing(stack, storage) -> None:
    key = f"test/{uuid.uuid4()}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.WriteObject(_messages(key, b"actual bytes", expected_sha256="0" * 64))
    assert caught.value.code() is grpc.StatusCode.DATA_LOSS
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await storage.StatObject(storage_pb2.StatObjectRequest(key=key))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert not list(_s3(stack).list_objects("imgtag", prefix=key))


async def test_existing_object_is_never_overwritten(storage) -> None:
    key = f"test/{uuid.uuid4()}"
    await storage.WriteObject(_messages(key, b"original"))
    again = await storage.WriteObject(_messages(key, b"original"))  # same bytes: idempotent
    assert again.size_bytes == len(b"original")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.WriteObject(_messages(key, b"different"))
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    _, body = await _read(storage, key)
    assert body == b"original"


async def test_bad_requests_get_invalid_argument(storage) -> None:
    for messages in ([storage_pb2.WriteObjectRequest(chunk=b"no spec")], list(_messages("../escape", b"x"))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await storage.WriteObject(iter(messages))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await _read(storage, "test/does-not-exist")
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_default_endpoint_is_bootstrapped_without_leaking_the_secret(stack, admin) -> None:
    async with channel_as(stack.service_target("storage"), as_user(admin)) as channel:
        storage = storage_pb2_grpc.StorageServiceStub(channel)
        reply = await storage.ListEndpoints(storage_pb2.ListEndpointsRequest())
        (endpoint,) = [e for e in reply.endpoints if e.default_upload]  # other tests may add endpoints
        assert endpoint.role == storage_pb2.Endpoint.PRIMARY and endpoint.enabled
        assert endpoint.s3.bucket == "imgtag" and endpoint.s3.has_secret_access_key
        assert endpoint.s3.secret_access_key == ""
        fetched = await storage.GetEndpoint(storage_pb2.GetEndpointRequest(name=endpoint.name))
        assert fetched.name == endpoint.name


async def test_object_io_refuses_callers_without_a_service_credential(stack, admin) -> None:
    """Internal object RPCs have no gateway route, and a direct call needs a service credential:
    not even an admin's access token will do."""
    for metadata in (None, as_user(admin)):
        async with channel_as(stack.service_target("storage"), metadata) as channel:
            storage = storage_pb2_grpc.StorageServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await storage.StatObject(storage_pb2.StatObjectRequest(key="originals/x"))
            assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.aio.AioRpcError) as written:
                await storage.WriteObject(_messages(f"test/{uuid.uuid4()}", b"sneaky"))
            assert written.value.code() is grpc.StatusCode.PERMISSION_DENIED
