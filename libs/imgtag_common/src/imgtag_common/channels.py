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


def open_channel(
    target: str, *, default_timeout_s: float = 30.0, max_message_bytes: int = 16 * 1024 * 1024
) -> grpc.aio.Channel:
    """An insecure channel to another ImgTag service (mTLS belongs to the mesh in Kubernetes)."""
    interceptors = [
        cls(default_timeout_s)
        for cls in (OutboundUnaryUnary, OutboundUnaryStream, OutboundStreamUnary, OutboundStreamStream)
    ]
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
        interceptors=interceptors,
    )
