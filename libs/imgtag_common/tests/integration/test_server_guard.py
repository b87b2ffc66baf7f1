"""The guard interceptor on a real grpc.aio server: domain errors become statuses with ErrorInfo,
bugs become a bare INTERNAL, request ids are kept, health goes NOT_SERVING on shutdown."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from imgtag_common.channels import open_channel
from imgtag_common.errors import NotFound
from imgtag_common.logging import request_id_var
from imgtag_common.server import start_app
from imgtag_common.settings import ServiceSettings

SERVICE = "imgtag.test.v1.ProbeService"


def _register(server: grpc.aio.Server) -> None:
    async def fail_domain(request: bytes, context) -> bytes:
        raise NotFound("thing/1 does not exist", reason="THING_NOT_FOUND")

    async def crash(request: bytes, context) -> bytes:
        raise ValueError("secret internals")

    async def echo_request_id(request: bytes, context) -> bytes:
        return request_id_var.get().encode()

    async def unimplemented(request: bytes, context) -> bytes:
        raise NotImplementedError

    async def stream_then_fail(request: bytes, context):
        yield b"first"
        raise NotFound("stream source vanished")

    handlers = {
        "FailDomain": grpc.unary_unary_rpc_method_handler(fail_domain),
        "Crash": grpc.unary_unary_rpc_method_handler(crash),
        "Echo": grpc.unary_unary_rpc_method_handler(echo_request_id),
        "Unimplemented": grpc.unary_unary_rpc_method_handler(unimplemented),
        "Stream": grpc.unary_stream_rpc_method_handler(stream_then_fail),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def app():
    started = await start_app(ServiceSettings(port=0), services=[(SERVICE, _register)])
    yield started
    await started.stop(0)


async def test_domain_error_maps_to_code_and_error_info(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/FailDomain")(b"")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "THING_NOT_FOUND"


async def test_unexpected_exception_is_internal_without_leaking(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/Crash")(b"")
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")


async def test_not_implemented_is_unimplemented(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/Unimplemented")(b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_request_id_from_caller_is_used_and_propagated(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        echo = channel.unary_unary(f"/{SERVICE}/Echo")
        assert await echo(b"", metadata=(("x-request-id", "req-42"),)) == b"req-42"
        token = request_id_var.set("outer-7")  # an outbound call made while serving "outer-7"
        try:
            assert await echo(b"") == b"outer-7"
        finally:
            request_id_var.reset(token)
        assert len(await echo(b"")) == 32  # none given: the server makes one


async def test_error_after_stream_started_still_reaches_the_client(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        call = channel.unary_stream(f"/{SERVICE}/Stream")(b"")
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for item in call:
                received.append(item)
    assert received == [b"first"]
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_health_serves_then_goes_not_serving_on_shutdown() -> None:
    app = await start_app(ServiceSettings(port=0), services=[(SERVICE, _register)])
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await app.health.enter_graceful_shutdown()
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await app.stop(0)


async def test_a_refused_credential_is_unauthenticated() -> None:
    from imgtag_common.errors import Unauthenticated

    class RefuseEveryone:
        async def authenticate(self, method, metadata):
            raise Unauthenticated("no credentials", reason="MISSING_CREDENTIALS")

    app = await start_app(ServiceSettings(port=0), services=[(SERVICE, _register)], authenticator=RefuseEveryone())
    async with open_channel(f"127.0.0.1:{app.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/Echo")(b"")
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for _ in channel.unary_stream(f"/{SERVICE}/Stream")(b""):
                pass
        assert streamed.value.code() is grpc.StatusCode.UNAUTHENTICATED
    await app.stop(0)
