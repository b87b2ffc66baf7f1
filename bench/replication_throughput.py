"""Replication throughput between two SeaweedFS servers: the storage service's queue copying
1 MiB objects from its primary to a backup endpoint (each copy's source SHA-256 checked on the
way, the target read back and checked), against a raw minio SDK loop copying the same objects
(get + put, no checks) with as many threads as the service's replication concurrency.

`make setup && .venv/bin/python bench/replication_throughput.py [objects]` (default 200). Figures,
not pass/fail."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from _storage_bench import MiB, bench_settings, minio_for, storage_stub, write_messages
from google.protobuf import field_mask_pb2

from imgtag.storage.v1 import storage_pb2
from imgtag_dev.components import S3Credentials, SeaweedPorts, SeaweedS3
from imgtag_dev.stack import running
from imgtag_dev.testing import new_data_dir

CONCURRENCY = 8  # the service's default replication_concurrency


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    data_dir = new_data_dir()
    backup_home = new_data_dir()
    backup = SeaweedS3(backup_home / "s3", SeaweedPorts.free(), S3Credentials.load_or_create(backup_home / "c.json"))
    try:
        backup.start(backup_home / "seaweedfs.log")
        backup_client = minio_for(backup)
        for bucket in ("backup", "raw-copy"):
            backup_client.make_bucket(bucket)
        settings = bench_settings(data_dir)
        settings.service_settings = {"storage": {"replication_concurrency": str(CONCURRENCY)}}
        with running(settings) as stack:
            channel, stub, metadata = storage_stub(stack.service_target("storage"), stack.service_secret)
            admin = _admin_metadata(stack)
            created = stub.CreateEndpoint(
                storage_pb2.CreateEndpointRequest(
                    endpoint_id="bench-backup",
                    endpoint=storage_pb2.Endpoint(
                        display_name="backup",
                        role=storage_pb2.Endpoint.BACKUP,
                        enabled=False,
                        s3=storage_pb2.S3Config(
                            endpoint_url=backup.endpoint_url,
                            bucket="backup",
                            access_key_id=backup.credentials.access_key,
                            secret_access_key=backup.credentials.secret_key,
                            force_path_style=True,
                        ),
                    ),
                ),
                metadata=admin,
            )
            keys = [f"bench/{uuid.uuid4()}" for _ in range(count)]
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda k: stub.WriteObject(write_messages(k, os.urandom(MiB)), metadata=metadata), keys))

            started = time.perf_counter()
            stub.UpdateEndpoint(
                storage_pb2.UpdateEndpointRequest(
                    endpoint=storage_pb2.Endpoint(name=created.name, enabled=True),
                    update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
                ),
                metadata=admin,
            )
            while True:
                status = stub.GetReplicationStatus(storage_pb2.GetReplicationStatusRequest(), metadata=admin)
                mine = next(e for e in status.endpoints if e.endpoint == created.name)
                if mine.verified_count >= count:
                    break
                time.sleep(0.1)
            service_s = time.perf_counter() - started

            primary = minio_for(stack.s3)

            def raw_copy(key: str) -> None:
                data = primary.get_object("imgtag", key).read()
                backup_client.put_object("raw-copy", key, io.BytesIO(data), len(data))

            started = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(raw_copy, keys))
            raw_s = time.perf_counter() - started
            channel.close()
        print(f"{count} objects of 1 MiB; replication concurrency {CONCURRENCY}; {os.cpu_count()} cores")
        print(f"raw minio copy loop:          {count / raw_s:7.1f} objects/s {count / raw_s:7.1f} MiB/s")
        print(
            f"storage replication (queue):  {count / service_s:7.1f} objects/s {count / service_s:7.1f} MiB/s"
            f"  ratio {raw_s / service_s:.2f}"
        )
    finally:
        if backup.process is not None:
            backup.process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(backup_home, ignore_errors=True)


def _admin_metadata(stack) -> list[tuple[str, str]]:
    import httpx
    from _storage_bench import ADMIN_PASSWORD

    reply = httpx.post(f"{stack.gateway_url}/v1/auth:login", json={"login": "admin", "password": ADMIN_PASSWORD})
    reply.raise_for_status()
    return [("authorization", f"Bearer {reply.json()['tokens']['accessToken']}")]


if __name__ == "__main__":
    main()
