"""The Triton path against raw in-process inference, in the same run, on the same machine.

Prints figures measured in this one run (no pass/fail):
`make setup && .venv/bin/python bench/triton.py [--rounds N] [--batches 1,8,32] [--clients N]`.

- raw: the classifier's ONNX Runtime session called directly in this process on uint8 pixel
  batches (the ceiling: no transport, no server);
- Triton: the same batches through the service's Triton adapter (tritonclient.grpc.aio, KServe v2)
  to a real Triton server with `--clients` requests in flight, including the server's dynamic
  batching and its model execution. Here that server is PyPI nvidia-pytriton's tritonserver 2.51 on
  the CPU, running the repository's CPU variant (the classifier on the python backend wrapping
  ONNX Runtime); on a GPU node, pass --triton-url of a server filled with the gpu variant;
- transport alone: the checksum model fed 224 x 224 images as uint8 (what the service sends,
  147 KB each) and as the bytes float32 pixels would take (602 KB each): what sending float32
  would cost before any model runs.
Rounds of the paths alternate, so both see the same load on the machine. Prints the ratio
Triton / raw per batch size (goal: at least 0.25 of the raw ceiling)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from imgtag_dev.testing import SKIMAGE_PHOTOS
from imgtag_dev.triton import TritonServer, fill_module
from imgtag_inference.adapters import efficientnet
from imgtag_inference.adapters.triton import TRANSPORT_CHECK, TritonBackend
from imgtag_inference.domain import images

PHOTOS = ["chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "astronaut.png", "camera.png"]
CLASSIFIER = "efficientnet-lite0"


def pixel_batch(n: int) -> np.ndarray:
    base = [images.classifier_pixels(images.decode((SKIMAGE_PHOTOS / p).read_bytes()), 224) for p in PHOTOS]
    return np.stack([base[i % len(base)] for i in range(n)])


def raw_rate(session: ort.InferenceSession, batch: np.ndarray, seconds: float) -> float:
    session.run(None, {"pixels": batch})  # warm
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {"pixels": batch})
        done += len(batch)
    return done / (time.perf_counter() - start)


async def triton_rate(backend: TritonBackend, model: str, inputs: dict, n: int, seconds: float, clients: int) -> float:
    await backend.run(model, inputs)  # warm
    done = 0
    start = time.perf_counter()

    async def client() -> None:
        nonlocal done
        while time.perf_counter() - start < seconds:
            await backend.run(model, inputs)
            done += n

    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per path, batch size and round")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--clients", type=int, default=2, help="Triton requests in flight")
    parser.add_argument("--models-dir", type=Path, help="models directory (default: a temporary one)")
    parser.add_argument("--triton-url", default="", help="use this server instead of starting the CPU one")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    work = Path(tempfile.mkdtemp(prefix="imgtag-bench-triton-"))
    models_dir = args.models_dir or work / "models"
    server = None
    try:
        converted = efficientnet.converted(models_dir)
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(converted.path), options, providers=["CPUExecutionProvider"])
        url = args.triton_url
        if not url:
            fill_module().fill(work / "repository", models_dir, clip="none", variant="cpu")
            server = TritonServer(work / "repository", work / "tritonserver.log")
            started = time.perf_counter()
            server.start(timeout_s=300)
            print(f"Triton (CPU variant) ready in {time.perf_counter() - started:.1f} s")
            url = server.url
        backend = TritonBackend(url, timeout_s=120)
        await backend.check_transport()
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")

        raw: dict[int, list[float]] = {b: [] for b in batches}
        remote: dict[int, list[float]] = {b: [] for b in batches}
        for _ in range(args.rounds):
            for b in batches:
                batch = pixel_batch(b)
                raw[b].append(raw_rate(session, batch, args.seconds))
                remote[b].append(
                    await triton_rate(backend, CLASSIFIER, {"pixels": batch}, b, args.seconds, args.clients)
                )
        print(f"\nEfficientNet-Lite0 tags + embedding, uint8 224x224 NHWC, {args.clients} Triton clients")
        print(f"{'batch':>5} | {'raw in process':>15} | {'through Triton':>15} | ratio")
        for b in batches:
            r, t = statistics.median(raw[b]), statistics.median(remote[b])
            print(f"{b:>5} | {r:>10.1f} img/s | {t:>10.1f} img/s | {t / r:.2f}")

        print("\ntransport alone (checksum model, batch 32, images/s)")
        for label, row_bytes in (("uint8 pixels, 147 KB", 224 * 224 * 3), ("float32-sized, 602 KB", 224 * 224 * 3 * 4)):
            rows = np.random.default_rng(0).integers(0, 256, size=(32, row_bytes), dtype=np.uint8)
            inputs = {"rows": rows, "texts": np.array([""], dtype=object)}
            rates = [
                await triton_rate(backend, TRANSPORT_CHECK, inputs, 32, args.seconds, args.clients) for _ in range(2)
            ]
            print(f"  {label}: {statistics.median(rates):.1f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        await backend.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
