"""The catalog's per-image work done directly with Pillow in one process: probe (sniff, EXIF,
cheap decode check) + renditions (one draft decode, WebP preview and thumbnail at the catalog's
default sizes) + perceptual hash, on camera-like 12 MP JPEGs of about 4 MB. Prints figures, never pass/fail:

    .venv/bin/python bench/renditions.py                 # 20 images
    .venv/bin/python bench/renditions.py --count 200 --memory

`pillow_baseline(paths)` is the "same work done directly with Pillow" that the end-to-end
ingestion benchmark divides its own images per second by. The images are kept between runs in
--dir (the same seed always makes the same file). Each measurement runs in a fresh process so its
peak RSS is its own."""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imgtag_catalog.domain.images import DEFAULT_MAX_PIXELS, probe_image
from imgtag_catalog.domain.renditions import make_renditions
from imgtag_catalog.settings import CatalogSettings

# The catalog's defaults, so the baseline does what a stack does unless told otherwise.
THUMBNAIL_PX = CatalogSettings.model_fields["thumbnail_px"].default
PREVIEW_PX = CatalogSettings.model_fields["preview_px"].default


def generate(count: int, directory: Path) -> list[Path]:
    """`count` distinct camera-like 12 MP JPEGs in `directory`, made only where missing."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"camera-{seed:04d}.jpg" for seed in range(count)]
    missing = [seed for seed, path in enumerate(paths) if not path.exists()]
    if missing:
        print(f"making {len(missing)} camera-like 12 MP JPEGs in {directory} ...", flush=True)
        with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
            pool.starmap(_write_camera_jpeg, [(seed, paths[seed]) for seed in missing])
    return paths


def ingest_work(data: bytes, *, thumbnail_px: int = THUMBNAIL_PX, preview_px: int = PREVIEW_PX) -> None:
    """What the catalog does for one upload: the probe at upload, then renditions and hash."""
    probe_image(io.BytesIO(data), max_pixels=DEFAULT_MAX_PIXELS)
    make_renditions(io.BytesIO(data), thumbnail_px=thumbnail_px, preview_px=preview_px, max_pixels=DEFAULT_MAX_PIXELS)


def pillow_baseline(
    paths: Sequence[Path], *, threads: int = 1, thumbnail_px: int = THUMBNAIL_PX, preview_px: int = PREVIEW_PX
) -> tuple[float, float]:
    """(images per second, CPU milliseconds per image) for probe + renditions + hash of `paths`
    (files read as it goes), with `threads` threads in this process (Pillow releases the GIL
    while decoding, resizing, encoding). The CPU figure holds on a machine shared with other
    work, where wall time does not."""

    def work(path: Path) -> None:
        ingest_work(Path(path).read_bytes(), thumbnail_px=thumbnail_px, preview_px=preview_px)

    work(paths[0])  # warm-up: imports, plugin registration, first allocations
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(work, paths):
            pass
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return len(paths) / elapsed, 1000 * cpu / len(paths)


def stage_milliseconds(paths: Sequence[Path], thumbnail_px: int, preview_px: int) -> tuple[float, float]:
    """Mean milliseconds per image of the probe and of the renditions, one thread."""
    probe_s = renditions_s = 0.0
    for path in paths:
        data = Path(path).read_bytes()
        started = time.perf_counter()
        probe_image(io.BytesIO(data), max_pixels=DEFAULT_MAX_PIXELS)
        probed = time.perf_counter()
        make_renditions(
            io.BytesIO(data), thumbnail_px=thumbnail_px, preview_px=preview_px, max_pixels=DEFAULT_MAX_PIXELS
        )
        probe_s += probed - started
        renditions_s += time.perf_counter() - probed
    return 1000 * probe_s / len(paths), 1000 * renditions_s / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20, help="how many 12 MP JPEGs (default 20; 200 for the goal)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "imgtag-bench-camera-jpegs")
    parser.add_argument("--memory", action="store_true", help="also measure one 200 MP JPEG, PNG and HEIC")
    parser.add_argument("--preview-px", type=int, default=PREVIEW_PX)
    parser.add_argument("--thumbnail-px", type=int, default=THUMBNAIL_PX)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    paths = generate(args.count, args.dir)
    megabytes = sum(path.stat().st_size for path in paths) / len(paths) / 1e6
    print(f"{len(paths)} camera-like 4000x3000 JPEGs, {megabytes:.1f} MB each; {cores} cores")
    sizes = (args.thumbnail_px, args.preview_px)
    print(f"work per image: probe + {args.preview_px} px WebP preview + {args.thumbnail_px} px WebP thumbnail + dHash")
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        probe_ms, renditions_ms = pool.apply(stage_milliseconds, (paths[: min(len(paths), 10)], *sizes))
        print(f"  one thread, per image: probe {probe_ms:.0f} ms, renditions + hash {renditions_ms:.0f} ms")
        for threads in sorted({1, cores}):
            rate, cpu_ms, peak_mib, idle_mib = pool.apply(_measured, (paths, threads, *sizes))
            per_core = f", {rate / threads:.2f} per core" if threads > 1 else " (= per core)"
            print(
                f"  one process, {threads} thread{'s' * (threads > 1)}: {rate:.2f} images/s{per_core}; "
                f"{cpu_ms:.0f} CPU ms per image; peak RSS {peak_mib:.0f} MiB ({idle_mib:.0f} MiB after imports)"
            )
        print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {cores} cores")
    if args.memory:
        print("one 200 MP image (16320x12240), probe + renditions, in a fresh process:")
        for pil_format in ("JPEG", "PNG", "HEIF"):
            path = _big_image(args.dir, pil_format)
            with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
                seconds, peak_mib, idle_mib = pool.apply(_measured_once, (path,))
            print(
                f"  {pil_format:5s} ({path.stat().st_size / 1e6:.0f} MB): {seconds:.1f} s, "
                f"peak RSS {peak_mib:.0f} MiB, {peak_mib - idle_mib:.0f} MiB above the idle process"
            )


def _measured(
    paths: Sequence[Path], threads: int, thumbnail_px: int, preview_px: int
) -> tuple[float, float, float, float]:
    idle = _peak_rss_mib()
    rate, cpu_ms = pillow_baseline(paths, threads=threads, thumbnail_px=thumbnail_px, preview_px=preview_px)
    return rate, cpu_ms, _peak_rss_mib(), idle


def _measured_once(path: Path) -> tuple[float, float, float]:
    idle = _peak_rss_mib()
    started = time.perf_counter()
    with open(path, "rb") as f:  # a file, as the catalog's upload spool holds large uploads
        probe_image(f, max_pixels=DEFAULT_MAX_PIXELS)
        make_renditions(f, thumbnail_px=THUMBNAIL_PX, preview_px=PREVIEW_PX, max_pixels=DEFAULT_MAX_PIXELS)
    return time.perf_counter() - started, _peak_rss_mib(), idle


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_camera_jpeg(seed: int, path: Path) -> None:
    from imgtag_dev.imagefiles import camera_like_jpeg

    partial = path.with_suffix(".partial")
    partial.write_bytes(camera_like_jpeg(seed))
    partial.rename(path)


def _big_image(directory: Path, pil_format: str) -> Path:
    path = directory / f"big-200mp.{pil_format.lower()}"
    if not path.exists():
        print(f"  making a 200 MP {pil_format} ...", flush=True)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(_write_big_image, (path, pil_format))
    return path


def _write_big_image(path: Path, pil_format: str) -> None:
    from PIL import Image

    from imgtag_dev.imagefiles import SAVE_PARAMS, photo

    image = photo("astronaut.png").resize((16_320, 12_240), Image.Resampling.BILINEAR)
    heic = {**SAVE_PARAMS["HEIF"], "tile_size": 512}  # a grid of tiles, as phones write
    params = {"PNG": {"compress_level": 1}, "HEIF": heic, "JPEG": {"quality": 90}}[pil_format]
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as out:
        image.save(out, pil_format, **params)
    partial.rename(path)


if __name__ == "__main__":
    main()
