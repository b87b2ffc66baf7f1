"""What an uploaded file is: format, MIME type and display dimensions (Pillow, HEIC included)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from imgtag_common.errors import InvalidArgument

register_heif_opener()  # iPhone photos (HEIC/HEIF)

# Pillow format name -> MIME type we store and serve.
MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}

# Decompression bombs are rejected rather than decoded.
Image.MAX_IMAGE_PIXELS = 300_000_000


@dataclass(frozen=True)
class ImageFacts:
    content_type: str
    width: int
    height: int


def probe_image(data: BinaryIO) -> ImageFacts:
    """Identify the image without decoding all pixels; EXIF rotation swaps width and height."""
    data.seek(0)
    try:
        with Image.open(data) as image:
            image_format = image.format or ""
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise InvalidArgument(
            "the upload is not an image ImgTag can read (" + ", ".join(sorted(MIME_BY_FORMAT)) + ")",
            reason="NOT_AN_IMAGE",
        ) from error
    finally:
        data.seek(0)
    mime = MIME_BY_FORMAT.get(image_format)
    if mime is None:
        raise InvalidArgument(
            f"image format {image_format or 'unknown'} is not supported", reason="UNSUPPORTED_IMAGE_FORMAT"
        )
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
        width, height = height, width
    return ImageFacts(content_type=mime, width=width, height=height)


def clean_filename(filename: str, content_type: str) -> str:
    """The file's base name (no directories, no control characters), at most 255 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name:
        name = "upload." + content_type.rsplit("/", 1)[-1]
    return name[:255]
