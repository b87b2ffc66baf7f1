"""`python -m imgtag_common.healthcheck PORT`: exit 0 when the service on this host's PORT
answers SERVING on the standard grpc.health.v1 service, else 1. For container health checks
where no native gRPC probe exists (Docker Compose); Kubernetes probes gRPC itself."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def serving(target: str, timeout_s: float = 3.0) -> bool:
    """True when `target` reports SERVING for the whole server (service name "")."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m imgtag_common.healthcheck PORT")
    sys.exit(0 if serving(f"127.0.0.1:{sys.argv[1]}") else 1)
