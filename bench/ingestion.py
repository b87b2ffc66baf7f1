"""End-to-end ingestion: camera-like 12 MP JPEGs (about 4 MB each) uploaded through the gateway of a
real local stack started here (REST `POST /v1/assets:upload`, raw bytes, `skip_analysis=true`: AI
off), timed from the first byte sent until every asset is PROCESSING_COMPLETED (renditions made
and stored), next to the same probe + rendition work done directly with Pillow in one process in
the same run. Prints figures and their ratio, never pass/fail:

    .venv/bin/python bench/ingestion.py                    # 200 images, 4 clients
    .venv/bin/python bench/ingestion.py --count 50 --clients 1
    .venv/bin/python bench/ingestion.py --catalog process_concurrency=3 --catalog preview_px=1280

The stack runs with the catalog's settings as users run them (plus any --catalog overrides); the
Pillow baseline uses the same thumbnail and preview sizes, with one thread per core (Pillow
releases the GIL, so one process can use every core, as the stack does). CPU seconds per image
of each part of the stack are printed too: on a machine shared with other work they hold where
wall time does not."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from renditions import generate, pillow_baseline  # bench/renditions.py, next to this script

from imgtag_catalog.settings import CatalogSettings
from imgtag_dev.processes import descendants
from imgtag_dev.stack import Stack
from imgtag_dev.testing import ADMIN_PASSWORD, bench_stack, login

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Uploads:
    """What the clients did: per-upload seconds, the asset names, and any failures."""

    seconds: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def upload_all(gateway_url: str, token: str, paths: Sequence[Path], clients: int, ai: bool = False) -> Uploads:
    """Each of `clients` threads takes the next file and POSTs it, until none is left."""
    todo: queue.SimpleQueue[Path] = queue.SimpleQueue()
    for path in paths:
        todo.put(path)
    done = Uploads()

    def client() -> None:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/octet-stream"}
        with httpx.Client(base_url=gateway_url, timeout=300, headers=headers) as http:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                data = path.read_bytes()
                started = time.perf_counter()
                reply = http.post(
                    "/v1/assets:upload",
                    params={"filename": path.name, "skip_analysis": "false" if ai else "true"},
                    content=data,
                )
                with done.lock:
                    done.seconds.append(time.perf_counter() - started)
                    if reply.status_code == 200:
                        done.names.append(reply.json()["name"])
                    else:
                        done.errors.append(f"{path.name}: {reply.status_code} {reply.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def wait_until_all_processed(http: httpx.Client, count: int, timeout_s: float, ai: bool = False) -> dict:
    """Poll the caller's processing counts until `count` assets are done (completed or failed;
    with `ai`, also analysed: tags, colours and embeddings written, or failed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = http.get("/v1/processingStatus").raise_for_status().json()
        done = int(status.get("processingCompletedCount", 0)) + int(status.get("processingFailedCount", 0))
        if ai:
            analysed = int(status.get("analysisSucceededCount", 0)) + int(status.get("analysisFailedCount", 0))
            done = min(done, analysed)
        if done >= count:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout_s}s only {done} of {count} processed: {status}")
        time.sleep(0.5)


def check_every_asset(http: httpx.Client, names: Sequence[str]) -> None:
    """Every uploaded asset, read back one page at a time, is PROCESSING_COMPLETED."""
    states: dict[str, str] = {}
    token = ""
    while True:
        page = http.get("/v1/assets", params={"page_size": 500, "page_token": token}).raise_for_status().json()
        states |= {a["name"]: a.get("processingState", "") for a in page.get("assets", [])}
        token = page.get("nextPageToken", "")
        if not token:
            break
    wrong = {n: states.get(n, "missing") for n in names if states.get(n) != "PROCESSING_COMPLETED"}
    if wrong:
        raise AssertionError(f"{len(wrong)} assets not completed, e.g. {list(wrong.items())[:3]}")


# ---------------------------------------------------------------------------- processes


def _part(pid: int) -> str:
    """A readable name for one process of the stack: the service for Python, else its command."""
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if comm.startswith("python"):
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        module = next((a for a in argv if a.startswith("imgtag_")), comm)
        return module.removeprefix("imgtag_")
    return {"postgres": "postgres", "envoy": "envoy", "weed": "seaweedfs"}.get(comm, comm)


def cpu_seconds_by_part(root: int) -> dict[str, float]:
    """CPU seconds (user + system) each part of the stack has used so far."""
    parts: dict[str, float] = {}
    for pid in descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            name = _part(pid)
        except (OSError, IndexError):
            continue  # ended meanwhile
        parts[name] = parts.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return parts


def idle_cpu_rates(root: int, seconds: float = 10.0) -> dict[str, float]:
    """CPU seconds per second each part of an idle stack uses anyway (maintenance loops, queue
    polling): subtracted from what a measurement used, so the figures are the work's own."""
    before = cpu_seconds_by_part(root)
    time.sleep(seconds)
    after = cpu_seconds_by_part(root)
    return {part: max(0.0, after[part] - before.get(part, 0.0)) / seconds for part in after}


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of one process in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


# ---------------------------------------------------------------------------- the run


def ingest(stack: Stack, paths: Sequence[Path], clients: int, timeout_s: float, ai: bool = False) -> dict:
    admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)
    catalog = stack.services["catalog"].process
    assert catalog is not None
    idle_rss, _ = memory_mib(catalog.pid)
    idle = idle_cpu_rates(os.getpid())
    cpu_before = cpu_seconds_by_part(os.getpid())
    load_before = os.getloadavg()
    started = time.perf_counter()
    uploads = upload_all(stack.gateway_url, admin.access_token, paths, clients, ai)
    uploaded_s = time.perf_counter() - started
    if uploads.errors:
        raise AssertionError(f"{len(uploads.errors)} uploads failed, e.g. {uploads.errors[:3]}")
    with httpx.Client(base_url=stack.gateway_url, timeout=60, headers=admin.headers) as http:
        status = wait_until_all_processed(http, len(uploads.names), timeout_s, ai)
        processed_s = time.perf_counter() - started
        cpu_after = cpu_seconds_by_part(os.getpid())
        load_after = os.getloadavg()
        if int(status.get("processingFailedCount", 0)) or int(status.get("analysisFailedCount", 0)):
            raise AssertionError(f"processing failed for some assets: {status}")
        check_every_asset(http, uploads.names)
    _, peak_rss = memory_mib(catalog.pid)
    cpu = {
        part: max(0.0, cpu_after[part] - cpu_before.get(part, 0.0) - idle.get(part, 0.0) * processed_s)
        for part in cpu_after
    }
    return {
        "uploaded_s": uploaded_s,
        "processed_s": processed_s,
        "upload_seconds": sorted(uploads.seconds),
        "cpu": cpu,
        "idle_rss": idle_rss,
        "peak_rss": peak_rss,
        "load": (load_before, load_after),
    }


def baseline(paths: Sequence[Path], threads: int, thumbnail_px: int, preview_px: int) -> tuple[float, float]:
    """Pillow in a fresh process: (images per second, CPU ms per image)."""
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        sizes = {"thumbnail_px": thumbnail_px, "preview_px": preview_px}
        return pool.apply(pillow_baseline, (list(paths),), {"threads": threads, **sizes})


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="how many 12 MP JPEGs (default 200)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent upload clients (default 4)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "imgtag-bench-camera-jpegs")
    parser.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="a catalog setting for this run (field of CatalogSettings), e.g. process_concurrency=3",
    )
    parser.add_argument("--ai", action="store_true", help="analysis on: tags, colours, embeddings (OCR off)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for processing")
    parser.add_argument("--keep", action="store_true", help="keep the stack's data directory (logs)")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.catalog)
    catalog_settings = CatalogSettings(**overrides)  # what the catalog will run with (env included)
    sizes = (catalog_settings.thumbnail_px, catalog_settings.preview_px)
    cores = os.cpu_count() or 1

    paths = generate(args.count, args.dir)
    megabytes = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    print(f"{len(paths)} camera-like 4000x3000 JPEGs, {megabytes:.1f} MB each; {cores} cores")
    print(
        f"catalog: {sizes[1]} px WebP preview, {sizes[0]} px thumbnail, "
        f"process_concurrency {catalog_settings.process_concurrency}, "
        f"blocking_workers {catalog_settings.blocking_workers}" + (f"; overrides {overrides}" if overrides else "")
    )

    with bench_stack(keep=args.keep, catalog_settings=overrides) as stack:
        time.sleep(2)  # start-up work (migrations, first sweeps) out of the way
        run = ingest(stack, paths, args.clients, args.timeout, args.ai)

    rate = len(paths) / run["processed_s"]
    print(
        f"\nend to end, {args.clients} client{'s' * (args.clients > 1)} through the gateway "
        f"(first byte sent -> all PROCESSING_COMPLETED{' and analysed, AI on' if args.ai else ', AI off'}):"
    )
    print(f"  {run['processed_s']:.1f} s for {len(paths)} images: {rate:.2f} images/s")
    seconds = run["upload_seconds"]
    print(
        f"  uploads alone: all replied after {run['uploaded_s']:.1f} s ({len(paths) / run['uploaded_s']:.2f}/s); "
        f"per upload p50 {1000 * _percentile(seconds, 0.5):.0f} ms, p99 {1000 * _percentile(seconds, 0.99):.0f} ms"
    )
    print(f"  catalog RSS: {run['idle_rss']:.0f} MiB idle, peak {run['peak_rss']:.0f} MiB")
    total_cpu = sum(run["cpu"].values())
    print(
        f"  CPU ms per image, by part, less what the idle stack uses "
        f"(wall time x cores = {1000 * run['processed_s'] * cores / len(paths):.0f}):"
    )
    for part, used in sorted(run["cpu"].items(), key=lambda kv: -kv[1]):
        if used > 0:
            print(f"    {part:<12}{1000 * used / len(paths):>7.0f}")
    print(f"    {'stack total':<12}{1000 * total_cpu / len(paths):>7.0f}")

    print("\nthe same probe + renditions + hash with Pillow, one process (files read as it goes):")
    one_rate, one_cpu = baseline(paths, 1, *sizes)
    print(f"  1 thread : {one_rate:.2f} images/s, {one_cpu:.0f} CPU ms per image")
    all_rate, all_cpu = baseline(paths, cores, *sizes) if cores > 1 else (one_rate, one_cpu)
    print(f"  {cores} threads: {all_rate:.2f} images/s, {all_cpu:.0f} CPU ms per image")

    print(f"\nratio, end to end / Pillow with {cores} threads: {rate / all_rate:.2f} images/s per images/s")
    print(f"ratio of CPU per image, Pillow / whole stack: {one_cpu / (1000 * total_cpu / len(paths)):.2f}")
    (before_1, _, _), (after_1, after_5, after_15) = run["load"]
    print(
        f"load average: {before_1:.1f} when the uploads began; {after_1:.1f} {after_5:.1f} {after_15:.1f} "
        f"(1, 5, 15 min) when processing ended, on {cores} cores"
    )


if __name__ == "__main__":
    main()
