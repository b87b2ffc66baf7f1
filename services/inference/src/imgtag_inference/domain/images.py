"""Decoding and preparing images for the models (Pillow, blocking: run in the executor)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from imgtag_common.errors import InvalidArgument

try:  # HEIC from phones, as the catalog accepts them
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover
    pass

MAX_PIXELS = 64_000_000  # the catalog sends previews (<= 1920 px); anything this big is refused


def decode(data: bytes) -> Image.Image:
    """The image as RGB, or InvalidArgument (reason IMAGE_UNDECODABLE)."""
    if not data:
        raise InvalidArgument("the image is empty", reason="IMAGE_UNDECODABLE")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise InvalidArgument(
                    f"the image has {image.width}x{image.height} pixels, more than {MAX_PIXELS}",
                    reason="IMAGE_TOO_LARGE",
                )
            image.draft("RGB", (1024, 1024))  # JPEG: decode at a reduced scale when that is enough
            return image.convert("RGB")
    except InvalidArgument:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        SyntaxError,
    ) as error:
        raise InvalidArgument(f"the image cannot be decoded: {error}", reason="IMAGE_UNDECODABLE") from error


def center_crop(image: Image.Image, size: int, *, resize_to: int) -> Image.Image:
    """Resize so the short side is `resize_to`, then crop the centre `size` x `size`."""
    w, h = image.size
    scale = resize_to / min(w, h)
    resized = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = resized.size
    left, top = (w - size) // 2, (h - size) // 2
    return resized.crop((left, top, left + size, top + size))


def classifier_pixels(image: Image.Image, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: short side to size*256/224, centre crop (ImageNet evaluation)."""
    return np.asarray(center_crop(image, size, resize_to=round(size * 256 / 224)), dtype=np.uint8)


def clip_pixels(image: Image.Image, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: short side to size, centre crop (CLIP; the tower normalises)."""
    return np.asarray(center_crop(image, size, resize_to=size), dtype=np.uint8)
