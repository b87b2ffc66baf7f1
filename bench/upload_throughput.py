"""Upload throughput: the same bytes through the gateway (Envoy > catalog > storage > S3), into
the storage service directly (gRPC WriteObject > S3), and with the raw minio SDK into the same
SeaweedFS, in one run; prints MiB/s and the ratios (goal: storage path >= 0.7 of raw).

`make setup && .venv/bin/python bench/upload_throughput.py [MiB]` (default 34 MiB, a BMP image
of random pixels, since the catalog accepts only images). Figures, not pass/fail."""

from __future__ import annotations

import io
import shutil
import sys
import time
import uuid

import httpx
import numpy as np
from _storage_bench import ADMIN_PASSWORD, MiB, bench_settings, storage_stub, write_messages
from PIL import Image

from imgtag_dev.stack import running
from imgtag_dev.testing import new_data_dir

ROUNDS = 3


def _image(mib: int) -> bytes:
    side = int((mib * MiB / 3) ** 0.5)
    pixels = np.random.default_rng(1).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "BMP")
    return buffer.getvalue()


def _best(fn) -> float:
    """Best of ROUNDS runs, seconds (each run uses fresh keys; nothing is overwritten)."""
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 34
    data_dir = new_data_dir()
    try:
        with running(bench_settings(data_dir)) as stack:
            data = _image(mib)
            size = len(data) / MiB
            from minio import Minio

            raw = Minio(
                stack.s3.endpoint_url.split("://")[1],
                access_key=stack.s3.credentials.access_key,
                secret_key=stack.s3.credentials.secret_key,
                secure=False,
            )

            def raw_put() -> None:
                raw.put_object("imgtag", f"bench/raw-{uuid.uuid4()}", io.BytesIO(data), len(data))

            channel, stub, metadata = storage_stub(stack.service_target("storage"), stack.service_secret)

            def storage_write() -> None:
                stub.WriteObject(write_messages(f"bench/{uuid.uuid4()}", data), metadata=metadata, timeout=600)

            with httpx.Client(base_url=stack.gateway_url, timeout=600) as http:
                login = http.post("/v1/auth:login", json={"login": "admin", "password": ADMIN_PASSWORD})
                login.raise_for_status()
                headers = {"authorization": f"Bearer {login.json()['tokens']['accessToken']}"}

                def gateway_upload() -> None:
                    # A different image each time: equal bytes would be refused as a duplicate.
                    body = bytearray(data)
                    body[-16:] = uuid.uuid4().bytes
                    reply = http.post(
                        "/v1/assets:upload",
                        params={"filename": "bench.bmp"},
                        content=bytes(body),
                        headers={"content-type": "image/bmp", **headers},
                    )
                    reply.raise_for_status()

                raw_s = _best(raw_put)
                storage_s = _best(storage_write)
                gateway_s = _best(gateway_upload)
            channel.close()
        print(f"object: {size:.1f} MiB; best of {ROUNDS}; this machine: {__import__('os').cpu_count()} cores")
        print(f"raw minio put_object > SeaweedFS:            {size / raw_s:7.1f} MiB/s")
        print(
            f"storage WriteObject (gRPC) > SeaweedFS:      {size / storage_s:7.1f} MiB/s  ratio {raw_s / storage_s:.2f}"
        )
        print(
            f"gateway upload (Envoy>catalog>storage>S3):   {size / gateway_s:7.1f} MiB/s  ratio {raw_s / gateway_s:.2f}"
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
