"""Shared pieces of the storage benchmarks: a stack with a known admin password, gRPC calls to
its storage service as another ImgTag service, raw minio clients, process memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
from minio import Minio
from pydantic import SecretStr

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_common.auth import service_principal
from imgtag_common.service_tokens import SERVICE_TOKEN_HEADER, ServiceTokens
from imgtag_dev.components import SeaweedS3
from imgtag_dev.stack import Stack, StackSettings

ADMIN_PASSWORD = "bench-admin-password-1"
MiB = 2**20


def bench_settings(data_dir: Path) -> StackSettings:
    settings = StackSettings.on_free_ports(data_dir)
    settings.admin_password = SecretStr(ADMIN_PASSWORD)
    return settings


def storage_stub(target: str, secret: str) -> tuple[grpc.Channel, storage_pb2_grpc.StorageServiceStub, list]:
    tokens = ServiceTokens("bench", secret)
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 * MiB)])
    metadata = [(SERVICE_TOKEN_HEADER, tokens.mint(service_principal("bench")))]
    return channel, storage_pb2_grpc.StorageServiceStub(channel), metadata


def write_messages(key: str, data: bytes, chunk: int = MiB) -> Iterator[storage_pb2.WriteObjectRequest]:
    yield storage_pb2.WriteObjectRequest(
        spec=storage_pb2.WriteObjectSpec(key=key, expected_sha256=hashlib.sha256(data).hexdigest())
    )
    view = memoryview(data)
    for i in range(0, len(data), chunk):
        yield storage_pb2.WriteObjectRequest(chunk=bytes(view[i : i + chunk]))


def minio_for(server: SeaweedS3) -> Minio:
    return Minio(
        server.endpoint_url.split("://")[1],
        access_key=server.credentials.access_key,
        secret_key=server.credentials.secret_key,
        secure=False,
    )


def storage_pid(stack: Stack) -> int:
    process = stack.services["storage"].process
    assert process is not None
    return process.pid


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def reset_peak_rss(pid: int) -> None:
    """Let VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
