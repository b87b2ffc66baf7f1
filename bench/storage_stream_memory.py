"""Peak RSS growth of the storage service while it streams one large object in (WriteObject, to
SeaweedFS, with the read-back check) and out again (ReadObject); goal: under 64 MB for 500 MB.

`make setup && .venv/bin/python bench/storage_stream_memory.py [MB]` (default 500). The client
generates the bytes as it sends them, so only the service's memory is measured. Figures, not
pass/fail."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import uuid

from _storage_bench import MiB, bench_settings, reset_peak_rss, rss_kib, storage_pid, storage_stub

from imgtag.storage.v1 import storage_pb2
from imgtag_dev.stack import running
from imgtag_dev.testing import new_data_dir


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    total = megabytes * 1000 * 1000
    data_dir = new_data_dir()
    try:
        with running(bench_settings(data_dir)) as stack:
            pid = storage_pid(stack)
            channel, stub, metadata = storage_stub(stack.service_target("storage"), stack.service_secret)
            # Warm up (first S3 connection, imports, pools), then measure from here.
            stub.WriteObject(_messages(f"bench/warm-{uuid.uuid4()}", 4 * MiB, hashlib.sha256()), metadata=metadata)
            time.sleep(1)
            before, _ = rss_kib(pid)
            reset_peak_rss(pid)
            digest = hashlib.sha256()
            key = f"bench/big-{uuid.uuid4()}"
            started = time.perf_counter()
            stored = stub.WriteObject(_messages(key, total, digest), metadata=metadata, timeout=3600)
            write_s = time.perf_counter() - started
            _, write_peak = rss_kib(pid)
            assert stored.size_bytes == total and stored.sha256 == digest.hexdigest()
            reset_peak_rss(pid)
            after_write, _ = rss_kib(pid)
            started = time.perf_counter()
            check, size = hashlib.sha256(), 0
            for message in stub.ReadObject(storage_pb2.ReadObjectRequest(key=key), metadata=metadata, timeout=3600):
                check.update(message.chunk)
                size += len(message.chunk)
            read_s = time.perf_counter() - started
            _, read_peak = rss_kib(pid)
            assert size == total and check.hexdigest() == digest.hexdigest()
            channel.close()
        mb = total / 1e6
        print(f"object: {mb:.0f} MB; storage service RSS before: {before / 1024:.1f} MiB; {os.cpu_count()} cores")
        print(f"WriteObject {mb / write_s:6.1f} MB/s; peak RSS growth {(write_peak - before) / 1024:6.1f} MiB")
        print(f"ReadObject  {mb / read_s:6.1f} MB/s; peak RSS growth {(read_peak - after_write) / 1024:6.1f} MiB")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _messages(key: str, total: int, digest):
    yield storage_pb2.WriteObjectRequest(spec=storage_pb2.WriteObjectSpec(key=key))
    block = os.urandom(MiB)
    sent = 0
    while sent < total:
        # Different bytes in every chunk (a counter in front), made as they are sent.
        chunk = sent.to_bytes(8, "big") + block[: min(MiB, total - sent) - 8]
        digest.update(chunk)
        sent += len(chunk)
        yield storage_pb2.WriteObjectRequest(chunk=chunk)


if __name__ == "__main__":
    main()
