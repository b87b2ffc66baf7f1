"""Channels spread calls over every address their target resolves to (a Kubernetes headless
Service lists each replica), so added replicas of a service share the work."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from imgtag_common.channels import open_channel
from imgtag_common.service_tokens import ServiceTokens


class CountingHealth(health.aio.HealthServicer):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def Check(self, request, context):
        self.calls += 1
        return await super().Check(request, context)


async def test_calls_spread_over_every_resolved_address() -> None:
    servers, servicers, ports = [], [], []
    for _ in range(2):
        server = grpc.aio.server()
        servicer = CountingHealth()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        servers.append(server)
        servicers.append(servicer)
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    channel = open_channel(target, tokens=ServiceTokens("test", "s" * 32))
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(20):
            await stub.Check(health_pb2.HealthCheckRequest())
    finally:
        await channel.close()
        for server in servers:
            await server.stop(0)
    assert all(s.calls >= 5 for s in servicers), [s.calls for s in servicers]


async def test_calls_keep_working_when_the_server_ends_connections_by_age() -> None:
    import asyncio

    from imgtag_common.server import _connection_age_options

    assert _connection_age_options(0) == []
    server = grpc.aio.server(options=_connection_age_options(0.3))
    servicer = CountingHealth()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", tokens=ServiceTokens("test", "s" * 32))
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(6):  # spans several connection lifetimes: clients reconnect by themselves
            await stub.Check(health_pb2.HealthCheckRequest())
            await asyncio.sleep(0.25)
    finally:
        await channel.close()
        await server.stop(0)
    assert servicer.calls == 6
