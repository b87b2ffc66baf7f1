"""Real image files for tests and benchmarks, made with Pillow (pillow-heif for HEIC) from
scikit-image's photos: camera-like JPEGs, files in every accepted format, EXIF blocks, and
hostile files (decompression bombs, truncations)."""

from __future__ import annotations

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
    """A 12 MP JPEG that compresses like a camera's (about 4 MB): a real photo scaled up, with
    sensor-like luminance and colour noise so it does not shrink to 1 MB."""
    names = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")
    rng = np.random.default_rng(seed)
    base = Image.open(SKIMAGE_PHOTOS / names[seed % len(names)]).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(base, dtype=np.float32)
    pixels += rng.normal(0, 6, size=(size[1], size[0], 1)).astype(np.float32)
    pixels += rng.normal(0, 3, size=(size[1], size[0], 3)).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


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
