"""A storage service of its own for the multi-endpoint tests: its own database on the session's
PostgreSQL, two SeaweedFS servers of its own (primary and backup, both stoppable) and a local
directory, with short health, backoff and heartbeat intervals. The shared stack's storage
service is never stopped or reconfigured by these tests."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from minio import Minio

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_dev.components import SeaweedS3, ServiceProcess
from imgtag_dev.processes import free_port, tail
from imgtag_dev.testing import Account, as_service, as_user, channel_as, new_data_dir

RIG_SETTINGS = {
    "HEALTH_INTERVAL_S": "1",
    "UNREACHABLE_AFTER_FAILURES": "2",
    "REPLICATION_CONCURRENCY": "4",
    "REPLICATION_MAX_ATTEMPTS": "6",
    "REPLICATION_INITIAL_BACKOFF_S": "0.2",
    "REPLICATION_MAX_BACKOFF_S": "1.5",
    "JOB_HEARTBEAT_TIMEOUT_S": "3",
    "JOB_POLL_INTERVAL_S": "0.5",
    "S3_CONNECT_TIMEOUT_S": "1",
}


def minio_for(server: SeaweedS3) -> Minio:
    return Minio(
        server.endpoint_url.split("://")[1],
        access_key=server.credentials.access_key,
        secret_key=server.credentials.secret_key,
        secure=False,
    )


@dataclass
class StorageRig:
    stack: object
    primary: SeaweedS3
    backup: SeaweedS3
    home: Path
    database: str
    port: int = field(default_factory=free_port)
    service: ServiceProcess | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def local_dir(self) -> Path:
        return self.home / "disk"

    @property
    def database_url(self) -> str:
        return self.stack.postgres.url(self.database)

    def sql(self, query: str) -> str:
        return self.stack.postgres.query(query, database=self.database)

    def env(self) -> dict[str, str]:
        p = "IMGTAG_STORAGE_"
        return {
            p + "PORT": str(self.port),
            p + "LOG_JSON": "true",
            p + "SERVICE_SECRET": self.stack.service_secret,
            p + "AUTH_TARGET": self.stack.service_target("auth"),
            p + "DATABASE_URL": self.database_url,
            p + "SECRETS_KEY_FILE": str(self.home / "secrets-key"),
            p + "BOOTSTRAP_S3_ENDPOINT": self.primary.endpoint_url,
            p + "BOOTSTRAP_S3_ACCESS_KEY": self.primary.credentials.access_key,
            p + "BOOTSTRAP_S3_SECRET_KEY": self.primary.credentials.secret_key,
            p + "BOOTSTRAP_S3_BUCKET": "primary",
            **{p + k: v for k, v in RIG_SETTINGS.items()},
        }

    def start(self) -> None:
        self.service = ServiceProcess("storage", self.port, self.env())
        self.service.start(self.home / "storage.log")

    def kill9(self) -> None:
        assert self.service is not None and self.service.process is not None
        os.killpg(self.service.process.pid, signal.SIGKILL)
        self.service.process.popen.wait()

    def stop(self) -> None:
        if self.service is not None and self.service.process is not None:
            self.service.process.stop()

    def log_tail(self) -> str:
        return tail(self.home / "storage.log", 60)


@pytest.fixture(scope="session")
def rig(stack, extra_s3: Callable[[str], SeaweedS3]) -> Iterator[StorageRig]:
    home = new_data_dir()
    (home / "disk").mkdir()
    key_file = home / "secrets-key"
    key_file.write_text(secrets.token_urlsafe(32))
    key_file.chmod(0o600)
    database = "imgtag_storage_rig_" + uuid.uuid4().hex[:8]
    stack.postgres.query(f'CREATE DATABASE "{database}"')
    rig = StorageRig(
        stack=stack, primary=extra_s3("rig-primary"), backup=extra_s3("rig-backup"), home=home, database=database
    )
    minio_for(rig.backup).make_bucket("backup")
    try:
        rig.start()
        yield rig
    except Exception:
        print(rig.log_tail())
        raise
    finally:
        rig.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def rig_admin(rig: StorageRig, admin: Account) -> AsyncIterator[storage_pb2_grpc.StorageServiceStub]:
    """The rig's storage service called as the admin (admin RPCs, directly over gRPC)."""
    async with channel_as(rig.target, as_user(admin)) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


@pytest.fixture
async def rig_objects(rig: StorageRig, service_tokens) -> AsyncIterator[storage_pb2_grpc.StorageServiceStub]:
    """The rig's storage service called as another ImgTag service (object I/O)."""
    async with channel_as(rig.target, as_service(service_tokens)) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


# ---------------------------------------------------------------------------- helpers


def write_messages(key: str, data: bytes, *, chunk: int = 64 * 1024, **spec):
    yield storage_pb2.WriteObjectRequest(spec=storage_pb2.WriteObjectSpec(key=key, **spec))
    for i in range(0, len(data), chunk):
        yield storage_pb2.WriteObjectRequest(chunk=data[i : i + chunk])


async def write(stub, key: str, data: bytes, **spec) -> storage_pb2.StoredObject:
    return await stub.WriteObject(write_messages(key, data, expected_sha256=hashlib.sha256(data).hexdigest(), **spec))


async def read(stub, key: str, **kwargs) -> tuple[storage_pb2.StoredObject, bytes]:
    meta, body = None, bytearray()
    async for message in stub.ReadObject(storage_pb2.ReadObjectRequest(key=key, **kwargs)):
        if message.HasField("metadata"):
            meta = message.metadata
        body += message.chunk
    return meta, bytes(body)


async def write_many(stub, prefix: str, count: int, size: int, *, parallel: int = 12) -> dict[str, bytes]:
    objects = {f"{prefix}/{i:04d}": os.urandom(size) for i in range(count)}
    semaphore = asyncio.Semaphore(parallel)

    async def one(key: str, data: bytes) -> None:
        async with semaphore:
            await write(stub, key, data)

    await asyncio.gather(*(one(k, d) for k, d in objects.items()))
    return objects


def replica_states(rig: StorageRig, prefix: str, endpoint_id: str) -> dict[str, int]:
    rows = rig.sql(
        f"SELECT r.state, count(*) FROM replicas r WHERE r.endpoint_id = '{endpoint_id}' "
        f"AND r.object_key LIKE '{prefix}/%' GROUP BY r.state"
    )
    return {line.split("|")[0]: int(line.split("|")[1]) for line in rows.splitlines() if line}


async def wait_for(check: Callable[[], object], *, timeout_s: float, what: str, interval_s: float = 0.2) -> object:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def expect_rpc_error(call, code: grpc.StatusCode, reason: str | None = None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() is code, f"{error.code()} {error.details()}"
    if reason is not None:
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status

        status = rpc_status.from_call(error)
        reasons = []
        for detail in status.details if status else []:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reasons.append(info.reason)
        assert reasons == [reason], f"{reasons} {error.details()}"
    return error
