"""The container health check says yes only to a server that reports SERVING."""

from __future__ import annotations

import asyncio
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from imgtag_common.healthcheck import serving
from imgtag_dev.processes import free_port


async def check(port: int) -> int:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "imgtag_common.healthcheck", str(port))
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_serving_follows_the_health_service_and_a_closed_port_is_not_serving() -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await check(port) == 1
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert await check(port) == 0
    finally:
        await server.stop(0)
    assert not serving(f"127.0.0.1:{free_port()}", timeout_s=1)
