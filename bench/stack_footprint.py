"""Start-up time, idle memory and upload/download throughput of the whole local stack.

Prints figures measured in this one run (no pass/fail): `make setup && .venv/bin/python bench/stack_footprint.py`.
RSS double-counts memory PostgreSQL's processes share, so PSS (proportional) is printed too."""

from __future__ import annotations

import hashlib
import io
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from pydantic import SecretStr

from imgtag_dev.processes import descendants
from imgtag_dev.stack import StackSettings, running
from imgtag_dev.testing import ADMIN_PASSWORD, login, new_data_dir


def _memory_kib(pid: int) -> tuple[str, int, int]:
    name = Path(f"/proc/{pid}/comm").read_text().strip()
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    values = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.endswith("kB")}
    return name, values["Rss"], values["Pss"]


def main() -> None:
    import os

    data_dir = new_data_dir()
    started = time.perf_counter()
    settings = StackSettings.on_free_ports(data_dir)
    settings.admin_password = SecretStr(ADMIN_PASSWORD)
    with running(settings) as stack:
        startup_s = time.perf_counter() - started
        time.sleep(5)  # let start-up garbage settle: "idle"
        by_part: dict[str, list[int]] = {}
        for pid in descendants(os.getpid()):
            try:
                name, rss, pss = _memory_kib(pid)
            except (FileNotFoundError, ProcessLookupError, KeyError):
                continue
            part = by_part.setdefault(
                name if name != "python" else Path(f"/proc/{pid}/cmdline").read_text().split("\0")[2], [0, 0, 0]
            )
            part[0] += rss
            part[1] += pss
            part[2] += 1
        print(f"stack start-up (PostgreSQL, SeaweedFS, 4 services, Envoy): {startup_s:.1f} s")
        print(f"{'process':<28}{'count':>6}{'RSS MiB':>10}{'PSS MiB':>10}")
        for name, (rss, pss, count) in sorted(by_part.items(), key=lambda kv: -kv[1][0]):
            print(f"{name:<28}{count:>6}{rss / 1024:>10.1f}{pss / 1024:>10.1f}")
        total_rss = sum(v[0] for v in by_part.values()) / 1024
        total_pss = sum(v[1] for v in by_part.values()) / 1024
        print(f"{'TOTAL idle':<28}{sum(v[2] for v in by_part.values()):>6}{total_rss:>10.1f}{total_pss:>10.1f}")

        pixels = np.random.default_rng(1).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "BMP")
        data = buffer.getvalue()
        admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)  # uploads need a signed-in user
        with httpx.Client(base_url=stack.gateway_url, timeout=300, headers=admin.headers) as http:
            t = time.perf_counter()
            reply = http.post(
                "/v1/assets:upload",
                params={"filename": "bench.bmp"},
                content=data,
                headers={"content-type": "image/bmp"},
            )
            upload_s = time.perf_counter() - t
            reply.raise_for_status()
            t = time.perf_counter()
            body = http.get(f"/v1/{reply.json()['name']}/content").content
            download_s = time.perf_counter() - t
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
        mib = len(data) / 2**20
        print(f"upload {mib:.0f} MiB, Envoy>catalog>storage>S3: {upload_s:.2f} s, {mib / upload_s:.1f} MiB/s")
        print(f"download {mib:.0f} MiB, S3>storage>catalog>Envoy: {download_s:.2f} s, {mib / download_s:.1f} MiB/s")
        print(f"download/upload throughput ratio: {upload_s / download_s:.2f}")
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
