"""The auth service process. Its contract (imgtag/auth/v1) is complete; the servicer is not:
every AuthService method still answers UNIMPLEMENTED (users, JWT and API keys are the next
auth issue). It runs so the gateway, health checks and the local stack have all four services."""

from __future__ import annotations

from imgtag.auth.v1 import auth_pb2_grpc
from imgtag_auth.settings import AuthSettings
from imgtag_common.server import GrpcApp, start_app

SERVICE_NAME = "imgtag.auth.v1.AuthService"


async def build_server(settings: AuthSettings) -> GrpcApp:
    servicer = auth_pb2_grpc.AuthServiceServicer()  # the generated base: UNIMPLEMENTED throughout
    return await start_app(
        settings,
        services=[(SERVICE_NAME, lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server))],
    )
