"""Inference throughput through the service (gRPC) against the same ONNX Runtime work done
directly in this process, on the same batch in the same run; and cold start.

Prints figures measured in this one run (no pass/fail):
`make setup && .venv/bin/python bench/inference.py [--rounds N] [--batch N]`.

- tagging + embedding: BatchTagImages(want_embeddings) of a batch of WebP photos (what the catalog
  sends), against decoding, preparing, one classifier forward pass, tags and colours in process
  (the same code and the same ONNX graph, without gRPC, batching and the service around them);
- text embedding: EmbedTexts of short texts against the text encoder's session directly;
- cold start: service process start to the first answered EmbedTexts, with an empty models
  directory (the classifier is converted first) and with the conversion cached.
Rounds of the two paths alternate, so both see the same load on the machine."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
from PIL import Image

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.service_tokens import ServiceTokens
from imgtag_dev.processes import free_port, spawn, tail
from imgtag_dev.testing import SKIMAGE_PHOTOS, as_service, channel_as
from imgtag_inference.adapters import efficientnet
from imgtag_inference.adapters.embedded import use_model_path
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.domain import colours, images
from imgtag_inference.domain.vocabulary import imagenet_vocabulary

PHOTOS = [
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "astronaut.png",
    "camera.png",
    "grass.png",
    "page.png",
]
TEXTS = ["a cat on a sofa", "一只猫", "red car", "咖啡杯", "rocket launch", "海边的日落", "birthday party", "雪山"]


def webp(name: str) -> bytes:
    out = io.BytesIO()
    Image.open(SKIMAGE_PHOTOS / name).convert("RGB").save(out, "WEBP", quality=80)
    return out.getvalue()


def start_service(models_dir: Path, secret: str, log: Path):
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "IMGTAG_INFERENCE_PORT": str(port),
        "IMGTAG_INFERENCE_SERVICE_SECRET": secret,
        "IMGTAG_INFERENCE_MODELS_DIR": str(models_dir),
        "IMGTAG_INFERENCE_AUTH_TARGET": f"127.0.0.1:{free_port()}",
        "IMGTAG_INFERENCE_LOG_LEVEL": "WARNING",
    }
    return spawn("inference-bench", [sys.executable, "-m", "imgtag_inference"], log_path=log, env=env), port


async def first_answer(port: int, tokens: ServiceTokens, process, log: Path) -> float:
    """Seconds until EmbedTexts answers (the caller started the clock at spawn)."""
    async with channel_as(f"127.0.0.1:{port}", as_service(tokens)) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        while True:
            process.raise_if_exited()
            try:
                await stub.EmbedTexts(pb.EmbedTextsRequest(texts=["hello"]), timeout=5)
                return time.perf_counter()
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise RuntimeError(f"{error.code()}: {error.details()}\n{tail(log)}") from error
            await asyncio.sleep(0.02)


class Direct:
    """The same ONNX graphs and the same preparation code, called in this process."""

    def __init__(self, models_dir: Path) -> None:
        # Sessions made exactly as the service makes them (same options), run from this thread.
        backend = OnnxRuntimeBackend(BlockingExecutor(1))
        self.classifier = backend.load("classifier", efficientnet.converted(models_dir).path)
        self.text = backend.load("text", use_model_path(), custom_ops=True)
        self.pool = ThreadPoolExecutor(8)  # like the service's blocking_workers, for decoding
        self.vocabulary = imagenet_vocabulary()

    def _prepare(self, data: bytes):
        image = images.decode(data)
        return images.classifier_pixels(image, 224), colours.colour_tags(image)

    def tag(self, batch: list[bytes]) -> int:
        prepared = list(self.pool.map(self._prepare, batch))
        logits, embeddings = self.classifier.run(
            ["logits", "embedding"], {"pixels": np.stack([p for p, _ in prepared])}
        )
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        _ = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        return sum(len(self.vocabulary.tags(p)) for p in probabilities)

    def model_only(self, pixels: np.ndarray) -> None:
        self.classifier.run(["logits", "embedding"], {"pixels": pixels})

    def embed(self, texts: list[str]) -> None:
        self.text.run(None, {"inputs": np.array(texts, dtype=object)})


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgtag-bench-inference-"))
    secret = secrets.token_urlsafe(32)
    tokens = ServiceTokens("bench", secret)
    try:
        # Cold starts: first ever (conversion included), then with the conversion cached.
        cold = {}
        for label in ("empty models dir (converts the classifier)", "conversion cached"):
            started = time.perf_counter()
            process, port = start_service(work / "models", secret, work / "service.log")
            try:
                cold[label] = await first_answer(port, tokens, process, work / "service.log") - started
            finally:
                if label != "conversion cached":
                    process.stop()
        print("cold start, process start -> first answered EmbedTexts:")
        for label, seconds in cold.items():
            print(f"  {label:<46} {seconds:6.2f} s")

        direct = Direct(work / "models")
        batch = [webp(PHOTOS[i % len(PHOTOS)]) for i in range(args.batch)]
        texts = [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(64)]
        pixels = np.stack([images.classifier_pixels(images.decode(d), 224) for d in batch])
        requests = pb.BatchTagImagesRequest(
            requests=[
                pb.TagImageRequest(image=pb.ImageInput(id=str(i), data=d), want_embeddings=True)
                for i, d in enumerate(batch)
            ]
        )
        service_s, direct_s, raw_s, text_service_s, text_direct_s = [], [], [], [], []
        async with channel_as(f"127.0.0.1:{port}", as_service(tokens)) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            await stub.BatchTagImages(requests)  # warm both paths
            direct.tag(batch)
            for _ in range(args.rounds):
                t = time.perf_counter()
                reply = await stub.BatchTagImages(requests, timeout=300)
                service_s.append(time.perf_counter() - t)
                assert all(r.status.code == 0 for r in reply.results)
                t = time.perf_counter()
                direct.tag(batch)
                direct_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                direct.model_only(pixels)
                raw_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                await stub.EmbedTexts(pb.EmbedTextsRequest(texts=texts))
                text_service_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                direct.embed(texts)
                text_direct_s.append(time.perf_counter() - t)
            single = []
            for name in PHOTOS:
                t = time.perf_counter()
                await stub.TagImage(pb.TagImageRequest(image=pb.ImageInput(data=webp(name)), want_embeddings=True))
                single.append(time.perf_counter() - t)
            one_text = []
            for text in TEXTS:
                t = time.perf_counter()
                await stub.EmbedTexts(pb.EmbedTextsRequest(texts=[text]))
                one_text.append(time.perf_counter() - t)
        process.stop()

        n = args.batch
        med = statistics.median
        print(
            f"\ntagging + embedding, batch of {n} WebP photos, {os.cpu_count()} cores ({args.rounds} rounds, medians):"
        )
        per_image = 1000 * med(service_s) / n
        print(
            f"  through the service (BatchTagImages)     {n / med(service_s):8.1f} images/s  ({per_image:.1f} ms/image)"
        )
        per_image = 1000 * med(direct_s) / n
        print(
            f"  same work in process                     {n / med(direct_s):8.1f} images/s  ({per_image:.1f} ms/image)"
        )
        print(f"  ratio service / in process               {med(direct_s) / med(service_s):8.2f}   (goal >= 0.9)")
        print(f"  the classifier's forward pass alone      {n / med(raw_s):8.1f} images/s  (decoding excluded)")
        print(f"  one TagImage call (one photo, want_embeddings): median {1000 * med(single):.1f} ms")
        print("\ntext embedding, 64 short texts:")
        print(f"  through the service (EmbedTexts)         {1000 * med(text_service_s) / 64:8.2f} ms/text")
        print(f"  session directly                         {1000 * med(text_direct_s) / 64:8.2f} ms/text")
        print(f"  ratio service / in process               {med(text_direct_s) / med(text_service_s):8.2f}")
        print(f"  one EmbedTexts call with one text: median {1000 * med(one_text):.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
