"""Real image files for tests and benchmarks, made with Pillow (pillow-heif for HEIC) from
scikit-image's photos: camera-like JPEGs, files in every accepted format, EXIF blocks, and
hostile files (decompression bombs, truncations)."""

from __future__ import annotations

import functools
import importlib.util
import io
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pillow_heif import register_heif_opener

register_heif_opener()

# scikit-image's sample photos, found without importing scikit-image (slow, and not needed here).
SKIMAGE_PHOTOS = Path(importlib.util.find_spec("skimage").origin).parent / "data"  # type: ignore[union-attr, arg-type]

RED = (255, 0, 0)
# Per-format save parameters: fast ones (x265's default preset takes seconds per image here).
SAVE_PARAMS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 90},
    "WEBP": {"quality": 80},
    "HEIF": {"quality": 60, "enc_params": {"preset": "ultrafast"}},
    "TIFF": {"compression": "tiff_deflate"},
    "AVIF": {"quality": 60, "speed": 10},
}


def photo(name: str = "chelsea.png") -> Image.Image:
    """A real photo in RGB with a red 40 px square in its top-left corner (shows orientation)."""
    image = Image.open(SKIMAGE_PHOTOS / name).convert("RGB")
    image.paste(RED, (0, 0, 40, 40))
    return image


def encode(image: Image.Image, pil_format: str, **params: Any) -> io.BytesIO:
    """The image saved in `pil_format` (Pillow's name: JPEG, PNG, WEBP, GIF, HEIF, TIFF, AVIF, BMP...)."""
    out = io.BytesIO()
    image.save(out, pil_format, **{**SAVE_PARAMS.get(pil_format, {}), **params})
    out.seek(0)
    return out


def exif_block(
    main: Mapping[int, Any] | None = None, exif: Mapping[int, Any] | None = None, gps: Mapping[int, Any] | None = None
) -> Image.Exif:
    """An EXIF block: IFD0 tags, Exif sub-IFD tags, GPS tags (numbers as in the EXIF standard)."""
    block = Image.Exif()
    block.update(main or {})
    if exif:
        block.get_ifd(0x8769).update(exif)
    if gps:
        block.get_ifd(0x8825).update(gps)
    return block


def is_red(pixel: Any) -> bool:
    return pixel[0] > 200 and pixel[1] < 70 and pixel[2] < 70


def camera_like_jpeg(seed: int, size: tuple[int, int] = (4000, 3000), quality: int = 92) -> bytes:
    """A JPEG that compresses like a camera's (12 MP: about 4 MB), different for every seed: a real
    photo scaled up, with sensor-like luminance and colour noise so it does not shrink to 1 MB."""
    rng = np.random.default_rng(seed)
    width, height = size
    noise = np.roll(_sensor_noise(size), (int(rng.integers(height)), int(rng.integers(width))), axis=(0, 1))
    pixels = _scaled_photo(_CAMERA_SCENES[seed % len(_CAMERA_SCENES)], size) + noise
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


_CAMERA_SCENES = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")


@functools.lru_cache(maxsize=len(_CAMERA_SCENES))
def _scaled_photo(name: str, size: tuple[int, int]) -> np.ndarray:
    image = Image.open(SKIMAGE_PHOTOS / name).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.int16)


@functools.lru_cache(maxsize=1)
def _sensor_noise(size: tuple[int, int]) -> np.ndarray:
    """Made once and shifted per image: drawing 36 M normal samples per image is most of the cost."""
    rng = np.random.default_rng(0)
    width, height = size
    luminance = rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    colour = rng.normal(0, 3, size=(height, width, 3)).astype(np.float32)
    return np.rint(luminance + colour).astype(np.int16)


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes of valid PNG claiming width x height RGB pixels (a decompression bomb
    when large: its zlib stream would inflate to gigabytes of zero rows)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compressobj(9)
    data = rows.compress(b"\0" * (1 << 20)) + rows.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim width x height."""
    data = bytearray(encode(Image.new("RGB", (64, 48), "gray"), "JPEG").getvalue())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)
