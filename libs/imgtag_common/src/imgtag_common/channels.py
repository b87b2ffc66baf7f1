"""The one way to open a client channel: bounded message size, keepalive, a default deadline on
every call and the request id passed along."""

from __future__ import annotations

import grpc

from imgtag_common.interceptors import (
    OutboundStreamStream,
    OutboundStreamUnary,
    OutboundUnaryStream,
    OutboundUnaryUnary,
)
from imgtag_common.service_tokens import ServiceTokens

# How often an idle channel pings its server; servers (server.py) accept pings this frequent.
KEEPALIVE_TIME_MS = 30_000


def open_channel(
    target: str,
    *,
    tokens: ServiceTokens,
    default_timeout_s: float = 30.0,
    max_message_bytes: int = 16 * 1024 * 1024,
) -> grpc.aio.Channel:
    """An insecure channel to another ImgTag service (mTLS belongs to the mesh in Kubernetes);
    every call carries this service's credential and the principal it acts for."""
    interceptors = [
        cls(default_timeout_s, tokens)
        for cls in (OutboundUnaryUnary, OutboundUnaryStream, OutboundStreamUnary, OutboundStreamStream)
    ]
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            # Every address the name resolves to gets calls (a Kubernetes headless Service lists
            # each replica); with one address this is the same as the default pick_first.
            ("grpc.lb_policy_name", "round_robin"),
        ],
        interceptors=interceptors,
    )
