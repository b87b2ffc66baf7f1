"""What an uploaded file is (format sniffed from the bytes, displayed size, EXIF facts) and its
renditions (WebP thumbnail and preview, orientation applied) with a perceptual hash."""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO

import imagehash
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
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
# Our own pixel limit is checked before decoding; Pillow's would only warn below twice its value.
Image.MAX_IMAGE_PIXELS = None
MAX_SIDE = 65_535
EXIF_LIMIT_BYTES = 64 * 1024


@dataclass(frozen=True)
class CameraFacts:
    make: str = ""
    model: str = ""
    lens_model: str = ""
    focal_length_mm: float | None = None
    f_number: float | None = None
    exposure_time_s: float | None = None
    iso: int | None = None

    def __bool__(self) -> bool:
        return any(v not in ("", None) for v in self.__dict__.values())


@dataclass(frozen=True)
class GeoFacts:
    latitude: float
    longitude: float
    altitude_m: float | None = None


@dataclass(frozen=True)
class ImageFacts:
    content_type: str
    width: int
    height: int
    orientation: int = 1
    capture_time: datetime | None = None
    capture_offset_known: bool = False
    camera: CameraFacts | None = None
    location: GeoFacts | None = None
    exif: dict[str, Any] | None = None
    is_animated: bool = False


@dataclass(frozen=True)
class Rendition:
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Renditions:
    thumbnail: Rendition
    preview: Rendition | None
    perceptual_hash: str


def _refuse(message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(message, reason=reason)


def _open(data: BinaryIO, max_pixels: int) -> Image.Image:
    data.seek(0)
    head = data.read(16)
    data.seek(0)
    if not head:
        raise _refuse("the file is empty", "NOT_AN_IMAGE")
    try:
        image = Image.open(data)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise _refuse(
            "the file is not an image ImgTag can read (" + ", ".join(sorted(MIME_BY_FORMAT)) + ")", "NOT_AN_IMAGE"
        ) from error
    if image.format not in MIME_BY_FORMAT:
        raise _refuse(f"image format {image.format or 'unknown'} is not supported", "UNSUPPORTED_IMAGE_FORMAT")
    width, height = image.size
    if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE:
        raise _refuse(f"{width}x{height} pixels is not a usable image size", "ABSURD_DIMENSIONS")
    if width * height > max_pixels:
        raise _refuse(f"{width}x{height} pixels is more than the {max_pixels}-pixel limit", "TOO_MANY_PIXELS")
    return image


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return None
    if isinstance(value, tuple | list):
        items = [_json_safe(v) for v in value]
        return [v for v in items if v is not None]
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _json_safe(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, str):
        return value.replace("\x00", "").strip()
    number = _number(value)
    if number is not None:
        return int(number) if float(number).is_integer() else round(number, 6)
    return str(value)


def _exif_dict(exif: Image.Exif) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for ifd in (None, ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        values = exif if ifd is None else exif.get_ifd(ifd)
        names = ExifTags.GPSTAGS if ifd == ExifTags.IFD.GPSInfo else ExifTags.TAGS
        for tag, value in values.items():
            name = names.get(tag, str(tag))
            if name in ("MakerNote", "ExifOffset", "GPSInfo", "UserComment") or isinstance(value, bytes):
                continue
            safe = _json_safe(value)
            if safe not in (None, "", []):
                merged[("GPS" if ifd == ExifTags.IFD.GPSInfo and not name.startswith("GPS") else "") + name] = safe
    while len(json.dumps(merged)) > EXIF_LIMIT_BYTES and merged:
        merged.pop(max(merged, key=lambda k: len(json.dumps(merged[k]))))
    return merged


def _capture(exif: Image.Exif) -> tuple[datetime | None, bool]:
    details = exif.get_ifd(ExifTags.IFD.Exif)
    raw = details.get(0x9003) or details.get(0x9004) or exif.get(0x0132)
    offset = details.get(0x9011) or details.get(0x9012) or details.get(0x9010)
    if not isinstance(raw, str):
        return None, False
    try:
        wall = datetime.strptime(raw.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, False
    if isinstance(offset, str) and len(offset) >= 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            sign = 1 if offset[0] == "+" else -1
            return wall.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes))), True
        except ValueError:
            pass
    return wall.replace(tzinfo=UTC), False


def _gps(exif: Image.Exif) -> GeoFacts | None:
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)

    def degrees(value: Any, ref: Any, negative: str) -> float | None:
        try:
            d, m, s = (float(x) for x in value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        result = d + m / 60 + s / 3600
        return -result if str(ref).upper().startswith(negative) else result

    latitude = degrees(gps.get(2), gps.get(1), "S")
    longitude = degrees(gps.get(4), gps.get(3), "W")
    if latitude is None or longitude is None or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    altitude = _number(gps.get(6))
    if altitude is not None and gps.get(5) == 1:
        altitude = -altitude
    return GeoFacts(round(latitude, 7), round(longitude, 7), altitude)


def _camera(exif: Image.Exif) -> CameraFacts | None:
    details = exif.get_ifd(ExifTags.IFD.Exif)
    iso = details.get(0x8827)
    if isinstance(iso, tuple):
        iso = iso[0] if iso else None
    camera = CameraFacts(
        make=str(exif.get(0x010F, "")).strip("\x00 "),
        model=str(exif.get(0x0110, "")).strip("\x00 "),
        lens_model=str(details.get(0xA434, "")).strip("\x00 "),
        focal_length_mm=_number(details.get(0x920A)),
        f_number=_number(details.get(0x829D)),
        exposure_time_s=_number(details.get(0x829A)),
        iso=int(iso) if _number(iso) is not None else None,
    )
    return camera or None


def probe_image(data: BinaryIO, *, max_pixels: int) -> ImageFacts:
    """Identify the image and read its facts without decoding more than needed."""
    image = _open(data, max_pixels)
    full_size = image.size  # before any reduced-scale decode below changes it
    try:
        try:
            exif = image.getexif()
            if image.format == "JPEG":
                # A cheap decode at 1/8 scale: a truncated JPEG fails here, not in a worker later.
                image.draft("RGB", (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
                image.load()
        except (OSError, ValueError, SyntaxError, struct.error) as error:
            raise _refuse("the image data is corrupt or truncated", "CORRUPT_IMAGE") from error
        orientation = exif.get(0x0112, 1) if isinstance(exif.get(0x0112, 1), int) else 1
        data.seek(0)
        try:
            # A structural check of the data without keeping pixels; verify() must come first
            # on a freshly opened image.
            with Image.open(data) as fresh:
                fresh.verify()
        except Exception as error:
            raise _refuse("the image data is corrupt or truncated", "CORRUPT_IMAGE") from error
        width, height = full_size
        if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
            width, height = height, width
        capture, offset_known = _capture(exif)
        return ImageFacts(
            content_type=MIME_BY_FORMAT[image.format],
            width=width,
            height=height,
            orientation=orientation if 1 <= orientation <= 8 else 1,
            capture_time=capture,
            capture_offset_known=offset_known,
            camera=_camera(exif),
            location=_gps(exif),
            exif=_exif_dict(exif),
            is_animated=bool(getattr(image, "is_animated", False)),
        )
    finally:
        data.seek(0)


def _webp(image: Image.Image, longest: int) -> Rendition:
    copy = image.copy()
    copy.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    copy.save(out, "WEBP", quality=82, method=4)
    return Rendition(out.getvalue(), "image/webp", copy.width, copy.height)


def make_renditions(data: BinaryIO, *, thumbnail_px: int, preview_px: int, max_pixels: int) -> Renditions:
    image = _open(data, max_pixels)
    content_type = MIME_BY_FORMAT.get(image.format or "", "")
    try:
        if image.format == "JPEG":
            image.draft("RGB", (preview_px, preview_px))  # decode at a reduced scale
        image = ImageOps.exif_transpose(image)
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        preview = _webp(image, preview_px) if max(image.size) > preview_px else None
        if preview is None and content_type not in ("image/jpeg", "image/png", "image/webp", "image/gif"):
            preview = _webp(image, preview_px)
        thumbnail = _webp(image, thumbnail_px)
        return Renditions(thumbnail=thumbnail, preview=preview, perceptual_hash=str(imagehash.dhash(image)))
    finally:
        data.seek(0)


def clean_filename(filename: str, content_type: str) -> str:
    """The file's base name (no directories, no control characters), at most 255 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name:
        name = "upload." + content_type.rsplit("/", 1)[-1]
    return name[:255]
