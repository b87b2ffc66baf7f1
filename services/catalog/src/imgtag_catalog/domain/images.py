"""What an uploaded file is, decided from its bytes alone: the format is sniffed from the magic
numbers (never from the declared type or the filename) and only that one Pillow plugin may parse
the file; width x height is checked against the pixel limit on the header, before any pixel is
decoded; the data is then checked to decode as cheaply as the format allows:

| format           | check in `probe_image`                                               |
|------------------|----------------------------------------------------------------------|
| JPEG (and MPO)   | a draft decode at 1/8 scale (the whole entropy-coded stream is read) |
| PNG              | every chunk's CRC up to IEND (no inflate)                            |
| GIF, TIFF, BMP   | the first frame is decoded                                           |
| WebP, AVIF, HEIF | the container is complete (RIFF / ISO-BMFF boxes); a decode would    |
|                  | cost 0.3-1 s per 12 MP and finds nothing more: flipped bits in these |
|                  | codecs decode without error. `make_renditions` decodes them and      |
|                  | raises CORRUPT_IMAGE for anything left                               |
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from PIL import Image
from pillow_heif import register_heif_opener

from imgtag_catalog.domain.exif import EXIF_MAX_BYTES, CameraFacts, GeoFacts, read_exif_facts
from imgtag_common.errors import InvalidArgument

__all__ = ["DEFAULT_MAX_PIXELS", "CameraFacts", "GeoFacts", "ImageFacts", "clean_filename", "open_image", "probe_image"]

register_heif_opener()  # iPhone photos (HEIC/HEIF)

# Pillow's own guard is process-wide, only raises at twice its limit and would fire before ours:
# every open in the catalog goes through `open_image`, which checks `max_pixels` on the header.
Image.MAX_IMAGE_PIXELS = None

# 300 MP: the largest phone sensors (200 MP) and stitched panoramas fit; a decoded 300 MP PNG or
# TIFF holds 1.2 GB (Pillow keeps RGB as 4 bytes a pixel), JPEG far less (see renditions).
DEFAULT_MAX_PIXELS = 300_000_000
MAX_SIDE_PX = 65_535  # JPEG's ceiling; no camera or scanner makes more
_HEADER_BYTES = 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# EXIF blocks larger than this are junk (a camera's is under 64 KiB) and are not parsed: Pillow
# would turn a block of 100 MB of LONGs into tuples of Python ints taking gigabytes.
MAX_EXIF_BLOCK_BYTES = 8 * 1024 * 1024
_HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# What Pillow and its plugins raise on data they cannot decode.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    RuntimeError,
    struct.error,
    zlib.error,
)


@dataclass(frozen=True)
class ImageFormat:
    """An accepted format: the one Pillow plugin allowed to parse it, and what we store."""

    name: str
    pil_format: str
    content_type: str
    browser_safe: bool  # every current browser shows the original as it is
    animatable: bool = False


JPEG = ImageFormat("JPEG", "JPEG", "image/jpeg", browser_safe=True)
PNG = ImageFormat("PNG", "PNG", "image/png", browser_safe=True, animatable=True)
GIF = ImageFormat("GIF", "GIF", "image/gif", browser_safe=True, animatable=True)
WEBP = ImageFormat("WebP", "WEBP", "image/webp", browser_safe=True, animatable=True)
TIFF = ImageFormat("TIFF", "TIFF", "image/tiff", browser_safe=False)
BMP = ImageFormat("BMP", "BMP", "image/bmp", browser_safe=False)
HEIC = ImageFormat("HEIC", "HEIF", "image/heic", browser_safe=False)
HEIF = ImageFormat("HEIF", "HEIF", "image/heif", browser_safe=False)
AVIF = ImageFormat("AVIF", "AVIF", "image/avif", browser_safe=False, animatable=True)
ACCEPTED_FORMATS = (JPEG, PNG, GIF, WEBP, TIFF, BMP, HEIC, HEIF, AVIF)


@dataclass(frozen=True)
class ImageFacts:
    """What the catalog records about an image at upload."""

    content_type: str  # sniffed from the bytes
    width: int  # as displayed: EXIF orientation applied
    height: int
    orientation: int  # EXIF orientation still to apply to the stored pixels, 1-8 (1 when absent)
    capture_time: datetime | None  # timezone-aware; UTC wall time when no offset is recorded
    capture_offset_known: bool
    camera: CameraFacts | None
    location: GeoFacts | None
    exif: dict[str, Any]  # JSON-safe, named tags, no binary, at most EXIF_MAX_BYTES serialized
    is_animated: bool


@dataclass
class OpenedImage:
    """An image whose format, dimensions and pixel count passed; pixels not decoded yet."""

    image: Image.Image
    format: ImageFormat


def probe_image(data: BinaryIO, *, max_pixels: int, exif_max_bytes: int = EXIF_MAX_BYTES) -> ImageFacts:
    """Identify and check the image without decoding it in full (see the module docstring).

    Raises InvalidArgument with reason NOT_AN_IMAGE, UNSUPPORTED_IMAGE_FORMAT, ABSURD_DIMENSIONS,
    TOO_MANY_PIXELS or CORRUPT_IMAGE. Leaves `data` at position 0."""
    with open_image(data, max_pixels=max_pixels) as opened:
        image, image_format = opened.image, opened.format
        width, height = image.size
        exif_block = _png_checked_exif(data, image) if image_format is PNG else _exif_of(image)
        exif = read_exif_facts(exif_block, max_bytes=exif_max_bytes)
        is_animated = image_format.animatable and bool(getattr(image, "is_animated", False))
        _check_decodes(opened, data)
    if exif.orientation in (5, 6, 7, 8):  # turned by 90 degrees when displayed
        width, height = height, width
    return ImageFacts(
        content_type=image_format.content_type,
        width=width,
        height=height,
        orientation=exif.orientation,
        capture_time=exif.capture_time,
        capture_offset_known=exif.capture_offset_known,
        camera=exif.camera,
        location=exif.location,
        exif=exif.exif,
        is_animated=is_animated,
    )


@contextmanager
def open_image(data: BinaryIO, *, max_pixels: int) -> Iterator[OpenedImage]:
    """Sniff, open with that format's plugin only, and check the dimensions; closes the image and
    rewinds `data` afterwards. Raises InvalidArgument as `probe_image` does."""
    data.seek(0)
    try:
        head = data.read(_HEADER_BYTES)
        image_format = sniff_format(head)
        data.seek(0)
        try:
            image = Image.open(data, formats=[image_format.pil_format])
        except DECODE_ERRORS as error:
            if 0 in _declared_size(head, image_format):  # Pillow refuses these as broken; say why
                raise InvalidArgument("the image declares a side of 0 pixels", reason="ABSURD_DIMENSIONS") from error
            raise corrupt(image_format) from error
        with image:
            if image_format is TIFF:
                _refuse_camera_raw(image)
            _check_dimensions(image.size, max_pixels)
            yield OpenedImage(image=image, format=image_format)
    finally:
        data.seek(0)


def sniff_format(head: bytes) -> ImageFormat:
    """The accepted format the first bytes announce; InvalidArgument for anything else."""
    if not head:
        raise InvalidArgument("the file is empty", reason="NOT_AN_IMAGE")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        if head[8:10] == b"CR":
            raise _unsupported("Canon CR2 camera raw")
        return TIFF
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in (12, 16, 40, 52, 56, 64, 108, 124)
    ):
        return BMP
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    raise _unknown(head)


def corrupt(image_format: ImageFormat) -> InvalidArgument:
    return InvalidArgument(
        f"the file looks like {image_format.name} but cannot be decoded "
        "(damaged, truncated, or a variant ImgTag cannot read)",
        reason="CORRUPT_IMAGE",
    )


def clean_filename(filename: str, content_type: str) -> str:
    """The file's base name (no directories, no control characters), at most 255 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name:
        name = "upload." + content_type.rsplit("/", 1)[-1]
    return name[:255]


# ---------------------------------------------------------------- sniffing


def _sniff_iso_bmff(head: bytes) -> ImageFormat:
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
    major = head[8:12]
    if major in _AVIF_BRANDS or (brands & _AVIF_BRANDS and not brands & _HEVC_BRANDS):
        return AVIF
    if brands & _HEVC_BRANDS:
        return HEIC
    if brands & _HEIF_BRANDS:
        return HEIF
    if b"crx " in brands:
        raise _unsupported("Canon CR3 camera raw")
    if b"jxl " in brands:
        raise _unsupported("JPEG XL")
    raise InvalidArgument("the file is not an image (an ISO media file such as a video?)", reason="NOT_AN_IMAGE")


def _unknown(head: bytes) -> InvalidArgument:
    """UNSUPPORTED_IMAGE_FORMAT for images and documents we recognise but do not take, else NOT_AN_IMAGE."""
    text = head[:1024].decode("utf-8", "ignore").lstrip("\ufeff \t\r\n").lower()
    if text.startswith("<svg") or (text.startswith(("<?xml", "<!doctype svg", "<!--")) and "<svg" in text):
        return _unsupported("SVG")
    if head.startswith(b"%PDF-"):
        return _unsupported("PDF")
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return _unsupported("JPEG XL")
    if head.startswith((b"IIRO", b"IIRS", b"MMOR", b"IIU\x00", b"FUJIFILMCCD-RAW")):
        return _unsupported("camera raw")
    Image.init()
    accepted = {image_format.pil_format for image_format in ACCEPTED_FORMATS}
    for pil_format in Image.ID:
        accept = Image.OPEN[pil_format][1]
        if pil_format in accepted or accept is None:
            continue
        try:
            recognised = accept(head) is True
        except Exception:  # a plugin's magic check on odd bytes is not our failure
            recognised = False
        if recognised:
            return _unsupported(pil_format)
    return InvalidArgument(
        "the file is not an image ImgTag can read (" + ", ".join(f.name for f in ACCEPTED_FORMATS) + ")",
        reason="NOT_AN_IMAGE",
    )


def _unsupported(what: str) -> InvalidArgument:
    accepted = ", ".join(f.name for f in ACCEPTED_FORMATS)
    return InvalidArgument(
        f"{what} files are not supported (ImgTag takes {accepted})", reason="UNSUPPORTED_IMAGE_FORMAT"
    )


def _refuse_camera_raw(image: Image.Image) -> None:
    """DNG, NEF, ARW and friends are TIFF files whose first image is a small preview."""
    tags = getattr(image, "tag_v2", {})
    if 0xC612 in tags or (tags.get(0x00FE) == 1 and 0x014A in tags):  # DNGVersion; reduced image + SubIFDs
        raise _unsupported("camera raw (DNG, NEF, ARW...)")


def _declared_size(head: bytes, image_format: ImageFormat) -> tuple[int, int]:
    """Width and height straight from a PNG, BMP or JPEG header; (-1, -1) when not found there."""
    if image_format is PNG and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if image_format is BMP and len(head) >= 26:
        return int.from_bytes(head[18:22], "little", signed=True), abs(
            int.from_bytes(head[22:26], "little", signed=True)
        )
    if image_format is JPEG:
        position = 2
        while position + 9 <= len(head) and head[position] == 0xFF:
            marker = head[position + 1]
            if marker in _JPEG_SOF_MARKERS:
                return int.from_bytes(head[position + 7 : position + 9], "big"), int.from_bytes(
                    head[position + 5 : position + 7], "big"
                )
            position += 2 + int.from_bytes(head[position + 2 : position + 4], "big")
    return -1, -1


def _check_dimensions(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1 or width > MAX_SIDE_PX or height > MAX_SIDE_PX:
        raise InvalidArgument(
            f"the image declares {width}x{height} pixels; each side must be 1 to {MAX_SIDE_PX}",
            reason="ABSURD_DIMENSIONS",
        )
    if width * height > max_pixels:
        raise InvalidArgument(
            f"the image has {width * height / 1e6:.0f} megapixels; at most {max_pixels / 1e6:.0f} are accepted",
            reason="TOO_MANY_PIXELS",
        )


# ---------------------------------------------------------------- checking the data


def _check_decodes(opened: OpenedImage, data: BinaryIO) -> None:
    image, image_format = opened.image, opened.format
    try:
        if image_format is JPEG:  # 1/8 scale: libjpeg skips most IDCT work, still reads every bit
            image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
        elif image_format in (GIF, TIFF, BMP):
            image.seek(0)
            image.load()
        elif image_format in (HEIC, HEIF, AVIF) and not _iso_bmff_complete(data):
            raise corrupt(image_format)
        # PNG: CRCs checked with the EXIF; WebP: Pillow's demuxer refuses an incomplete RIFF at open.
    except DECODE_ERRORS as error:
        raise corrupt(image_format) from error


def _iso_bmff_complete(data: BinaryIO) -> bool:
    """Every top-level box lies inside the file (a truncated upload cuts the last one short)."""
    end = data.seek(0, os.SEEK_END)
    position = 0
    while end - position >= 8:
        data.seek(position)
        header = data.read(16)
        size = int.from_bytes(header[:4], "big")
        if size == 0:  # "extends to the end of the file"
            return True
        if size == 1:
            if len(header) < 16:
                return False
            size = int.from_bytes(header[8:16], "big")
        if size < 8 or position + size > end:
            return False
        position += size
    return True


def _png_checked_exif(data: BinaryIO, image: Image.Image) -> Image.Exif:
    """Walk every chunk to IEND checking CRCs, and read the eXIf chunk wherever it lies (Pillow's
    own getexif() decodes all pixels to look for one after the image data)."""
    image_format = PNG
    data.seek(len(_PNG_SIGNATURE))
    exif: bytes | None = None
    while True:
        header = data.read(8)
        if len(header) < 8:
            raise corrupt(image_format)
        length, chunk_type = int.from_bytes(header[:4], "big"), header[4:8]
        if length > 0x7FFFFFFF:
            raise corrupt(image_format)
        keep = chunk_type == b"eXIf" and exif is None and length <= MAX_EXIF_BLOCK_BYTES
        crc, parts, remaining = zlib.crc32(chunk_type), [], length
        while remaining:
            block = data.read(min(remaining, 1 << 20))
            if not block:
                raise corrupt(image_format)
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
            if keep:
                parts.append(block)
        if data.read(4) != crc.to_bytes(4, "big"):
            raise corrupt(image_format)
        if keep:
            exif = b"".join(parts)
        if chunk_type == b"IEND":
            break
    data.seek(0)
    if exif is None and "Raw profile type exif" in image.info:  # ImageMagick's text chunk
        try:
            exif = bytes.fromhex("".join(str(image.info["Raw profile type exif"]).split("\n")[3:]))
        except ValueError:
            exif = None
    parsed = Image.Exif()
    if exif:
        try:
            parsed.load(exif)
        except DECODE_ERRORS:
            return Image.Exif()
    return parsed


def _exif_of(image: Image.Image) -> Image.Exif:
    raw = image.info.get("exif")
    if isinstance(raw, bytes) and len(raw) > MAX_EXIF_BLOCK_BYTES:
        return Image.Exif()
    try:
        return image.getexif()
    except DECODE_ERRORS:  # broken EXIF is no EXIF; the photo is still a photo
        return Image.Exif()
