"""gRPC server bootstrap shared by every service: the guard interceptor, the standard health
service, reflection, port binding (0 = free port, for tests) and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from imgtag_common.access import AccessRule, ContractAuthenticator, CredentialResolver, contract_rule
from imgtag_common.channels import KEEPALIVE_TIME_MS, open_channel
from imgtag_common.credentials import AuthServiceResolver
from imgtag_common.interceptors import ServerGuard
from imgtag_common.logging import configure_logging
from imgtag_common.service_tokens import ServiceTokens
from imgtag_common.settings import ServiceSettings

log = logging.getLogger("imgtag.server")

Register = Callable[[grpc.aio.Server], None]
Cleanup = Callable[[], Awaitable[None]]


@dataclass
class GrpcApp:
    """A started server plus what must be closed after it stops (engines, channels, pools)."""

    server: grpc.aio.Server
    port: int
    health: health.HealthServicer
    cleanups: list[Cleanup] = field(default_factory=list)

    async def stop(self, grace_s: float) -> None:
        # NOT_SERVING first, so load balancers stop sending before connections close.
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        for cleanup in reversed(self.cleanups):
            await cleanup()


async def start_app(
    settings: ServiceSettings,
    *,
    services: Sequence[tuple[str, Register]],
    tokens: ServiceTokens,
    resolver: CredentialResolver | None = None,
    cleanups: Sequence[Cleanup] = (),
    rules: Callable[[str], AccessRule] = contract_rule,
    serving: bool = True,
) -> GrpcApp:
    """Build, bind and start a server for `services` (full service name, registration). Every
    call is checked against its method's access rule; `tokens` checks other services'
    credentials and `resolver` turns user credentials into principals (by default by asking the
    auth service at `settings.auth_target`). With `serving=False` health starts NOT_SERVING
    and the service sets SERVING itself once it is ready (e.g. models loaded)."""
    cleanups = list(cleanups)
    if resolver is None:
        auth_channel = open_channel(settings.auth_target, tokens=tokens)
        resolver = AuthServiceResolver(auth_channel)
        cleanups.append(auth_channel.close)
    authenticator = ContractAuthenticator(service_tokens=tokens, resolver=resolver, rules=rules)
    server = grpc.aio.server(
        interceptors=[ServerGuard(authenticator)],
        options=[
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # Accept the keepalive pings of our channels, idle ones too: gRPC's default (none without
            # calls, at most one per 5 min) answers them with GOAWAY "too_many_pings", failing calls.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
            *_connection_age_options(settings.max_connection_age_s),
        ],
    )
    for name, _ in services:
        try:
            descriptor_pool.Default().FindServiceByName(name)
        except KeyError:
            if rules is contract_rule:
                # The contract's rules are read from the pool: a service missing there would
                # refuse every call.
                raise RuntimeError(f"{name} is not in the descriptor pool: import its *_pb2 module") from None
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for _, register in services:
        register(server)
    names = [name for name, _ in services]
    if settings.enable_reflection:
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(settings.bind_address)
    if port == 0:
        raise OSError(f"cannot bind {settings.bind_address}: the port is in use or not permitted")
    await server.start()
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *names]:
        await health_servicer.set(name, status)
    return GrpcApp(server=server, port=port, health=health_servicer, cleanups=cleanups)


def _connection_age_options(age_s: float) -> list[tuple[str, int]]:
    if age_s <= 0:
        return []
    # Streams in flight (a large upload) may take their time: the grace only bounds them.
    return [("grpc.max_connection_age_ms", int(age_s * 1000)), ("grpc.max_connection_age_grace_ms", 3_600_000)]


def run_service(
    name: str,
    settings: ServiceSettings,
    build: Callable[[ServiceSettings], Awaitable[GrpcApp]],
) -> None:
    """Entry point for `python -m imgtag_<svc>`: serve until SIGTERM/SIGINT, then drain."""
    configure_logging(name, level=settings.log_level, json=settings.log_json)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app = await build(settings)
        log.info("serving", extra={"port": app.port, "service": name})
        await stop.wait()
        log.info("shutting down", extra={"grace_s": settings.shutdown_grace_s})
        await app.stop(settings.shutdown_grace_s)

    asyncio.run(main())
