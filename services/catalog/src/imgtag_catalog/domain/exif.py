"""What a photo's EXIF says, read defensively: bad or absurd values become "unknown", never an
error (a photo with broken metadata is still a photo), and the full EXIF is kept only as bounded,
JSON-safe text and numbers, never as binary blobs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import ExifTags, Image

# A full camera EXIF without MakerNote and thumbnail is 1-5 KiB as JSON; 64 KiB keeps every real
# field with 10x headroom while bounding what one asset costs in the database and in API replies.
EXIF_MAX_BYTES = 64 * 1024

_INTEROP_TAGS = {1: "InteropIndex", 2: "InteropVersion"}
_MAX_ARRAY_ITEMS = 1024  # longer arrays are file layout or vendor data, never something to show
# Pointers, file layout and binary payloads: meaningless or unbounded outside the file.
_DROPPED_TAGS = frozenset(
    {
        0x8769,  # ExifOffset
        0x8825,  # GPSInfo
        0xA005,  # Interop offset
        0x014A,  # SubIFDs
        0x0111,  # StripOffsets
        0x0117,  # StripByteCounts
        0x0144,  # TileOffsets
        0x0145,  # TileByteCounts
        0x0120,  # FreeOffsets
        0x0121,  # FreeByteCounts
        0x0201,  # JPEGInterchangeFormat (thumbnail)
        0x0202,  # JPEGInterchangeFormatLength
        0x927C,  # MakerNote
        0x02BC,  # XMLPacket (XMP)
        0x8773,  # InterColorProfile
        0x83BB,  # IPTC
        0x8649,  # Photoshop image resources
        0xC4A5,  # PrintImageMatching
    }
)
# UNDEFINED-typed text that starts with an 8-byte character code (EXIF 2.32, 4.6.5).
_USER_COMMENT = 0x9286
_GPS_PREFIXED_TEXT = frozenset({27, 28})  # GPSProcessingMethod, GPSAreaInformation
_XP_TEXT_TAGS = frozenset({0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F})  # Windows XPTitle... (UTF-16LE)

# (time, offset, sub-second) tags, best first; DateTime lives in IFD0, the others in the Exif IFD.
_TIME_TAGS = ((0x9003, 0x9011, 0x9291), (0x9004, 0x9012, 0x9292), (0x0132, 0x9010, 0x9290))
_DATETIME = re.compile(r"\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_OFFSET = re.compile(r"\s*([+-])(\d{2}):?(\d{2})\s*$")


@dataclass(frozen=True)
class CameraFacts:
    """The camera and exposure as far as the EXIF says ("" or None where it does not)."""

    make: str
    model: str
    lens_model: str
    focal_length_mm: float | None
    f_number: float | None
    exposure_time_s: float | None
    iso: int | None


@dataclass(frozen=True)
class GeoFacts:
    """Where the photo was taken: WGS 84 degrees, north and east positive; metres above sea level."""

    latitude: float
    longitude: float
    altitude_m: float | None


@dataclass(frozen=True)
class ExifFacts:
    """Everything the catalog takes from EXIF."""

    orientation: int
    capture_time: datetime | None
    capture_offset_known: bool
    camera: CameraFacts | None
    location: GeoFacts | None
    exif: dict[str, Any]


@dataclass(frozen=True)
class _Ifds:
    main: dict[int, Any]
    exif: dict[int, Any]
    gps: dict[int, Any]
    interop: dict[int, Any]
    big_endian: bool  # the block's byte order, which UCS-2 text without a BOM follows


def read_exif_facts(exif: Image.Exif, *, max_bytes: int = EXIF_MAX_BYTES) -> ExifFacts:
    """Summarise a parsed EXIF block. Never raises: malformed parts read as absent."""
    ifds = _Ifds(
        main=_ifd(exif, None),
        exif=_ifd(exif, ExifTags.IFD.Exif),
        gps=_ifd(exif, ExifTags.IFD.GPSInfo),
        interop=_ifd(exif, ExifTags.IFD.Interop),
        big_endian=exif.endian == ">",
    )
    capture_time, offset_known = _capture_time(ifds)
    return ExifFacts(
        orientation=orientation_of(exif),
        capture_time=capture_time,
        capture_offset_known=offset_known,
        camera=_camera(ifds),
        location=_location(ifds.gps),
        exif=_capped(_named_values(ifds), max_bytes),
    )


def orientation_of(exif: Image.Exif) -> int:
    """EXIF orientation 1-8; 1 when absent or invalid."""
    try:
        value = _number(exif.get(0x0112))
    except Exception:  # Pillow raises many types on hostile EXIF
        return 1
    return int(value) if value is not None and value in range(1, 9) else 1


# ---------------------------------------------------------------- the full EXIF as JSON


def _named_values(ifds: _Ifds) -> dict[str, Any]:
    """IFD0, Exif, GPS and Interop tags flattened by name (first wins), JSON-safe. Tags without a
    standard name (vendor-private) and binary values are left out."""
    out: dict[str, Any] = {}

    def add(name: str | None, value: Any) -> None:
        if name is not None and name not in out and value not in (None, "", []):
            out[name] = value

    for ifd in (ifds.main, ifds.exif):
        for tag, raw in ifd.items():
            if tag in _DROPPED_TAGS:
                continue
            if tag == _USER_COMMENT:
                value = _prefixed_text(raw, ifds.big_endian)
            elif tag in _XP_TEXT_TAGS:
                value = _xp_text(raw)
            else:
                value = _json_value(raw)
            add(ExifTags.TAGS.get(tag), value)
    for tag, raw in ifds.gps.items():
        value = _prefixed_text(raw, ifds.big_endian) if tag in _GPS_PREFIXED_TEXT else _json_value(raw)
        add(ExifTags.GPSTAGS.get(tag), value)
    for tag, raw in ifds.interop.items():
        add(_INTEROP_TAGS.get(tag), _json_value(raw))
    return out


def _capped(fields: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Drop the largest fields until the whole serializes to at most `max_bytes` of UTF-8 JSON."""
    total = _json_size(fields)
    if total <= max_bytes:
        return fields
    sizes = {name: _json_size({name: value}) - 1 for name, value in fields.items()}  # '{'+'}' less a ','
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
        del fields[name]
        total -= sizes[name]
        if total <= max_bytes:
            break
    return fields


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _json_value(raw: Any) -> Any:
    """str, int, finite float, or a list of them; None when nothing JSON-safe remains."""
    if isinstance(raw, str):
        return _clean_text(raw)
    if isinstance(raw, bool | int):
        return int(raw)
    if isinstance(raw, bytes):
        return _short_bytes(raw)
    if isinstance(raw, tuple | list):
        if len(raw) > _MAX_ARRAY_ITEMS:
            return None
        items = [item for item in (_json_value(item) for item in raw) if item is not None]
        return None if not items else items[0] if len(items) == 1 else items
    return _number(raw)


def _short_bytes(raw: bytes) -> Any:
    """Version strings (b"0232") and 1-4 byte codes are data; anything longer is a blob."""
    if 0 < len(raw) <= 16 and all(32 <= byte < 127 for byte in raw.rstrip(b"\0")) and raw.strip(b"\0"):
        return raw.rstrip(b"\0").decode("ascii")
    if 0 < len(raw) <= 4:
        return raw[0] if len(raw) == 1 else list(raw)
    return None


def _clean_text(text: str) -> str | None:
    """Pillow decodes EXIF ASCII as Latin-1 while phones write UTF-8 there: undo that when it fits."""
    try:
        text = text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return _tidy(text)


def _tidy(text: str) -> str | None:
    """No NULs (PostgreSQL JSONB refuses them) and no padding."""
    return text.replace("\x00", "").strip() or None


def _prefixed_text(raw: Any, big_endian: bool) -> str | None:
    if isinstance(raw, str):
        return _clean_text(raw)
    if not isinstance(raw, bytes) or len(raw) <= 8:
        return None
    code, body = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return _tidy(body.decode("utf-16", "replace"))
        return _tidy(body.decode("utf-16-be" if big_endian else "utf-16-le", "replace"))
    if code.startswith(b"JIS"):
        return _tidy(body.decode("shift_jis", "replace"))
    return _tidy(body.decode("utf-8", "replace"))  # "ASCII" or undefined: UTF-8 in practice


def _xp_text(raw: Any) -> str | None:
    if isinstance(raw, tuple):  # Pillow returns BYTE arrays as bytes or as tuples of ints
        try:
            raw = bytes(raw)
        except (TypeError, ValueError):
            return None
    return _tidy(raw.decode("utf-16-le", "replace")) if isinstance(raw, bytes) else None


def _number(raw: Any) -> float | None:
    """A finite float from an int, float or IFDRational (a zero denominator is unknown)."""
    if isinstance(raw, tuple | list) and len(raw) == 1:
        raw = raw[0]
    if raw is None or isinstance(raw, bool | str | bytes):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------- typed facts


def _capture_time(ifds: _Ifds) -> tuple[datetime | None, bool]:
    """DateTimeOriginal, else DateTimeDigitized, else DateTime; with its offset when one is
    recorded, else the wall time as UTC and `False`."""
    for time_tag, offset_tag, subsec_tag in _TIME_TAGS:
        text = _text((ifds.main if time_tag == 0x0132 else ifds.exif).get(time_tag))
        wall = _parse_wall_time(text, _text(ifds.exif.get(subsec_tag)))
        if wall is None:
            continue
        offset = _parse_offset(_text(ifds.exif.get(offset_tag)))
        return wall.replace(tzinfo=offset or UTC), offset is not None
    return None, False


def _parse_wall_time(text: str, subsec: str) -> datetime | None:
    match = _DATETIME.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) if part else 0 for part in match.groups())
    if year < 1800:  # "0000:00:00 00:00:00": a camera whose clock was never set
        return None
    digits = re.match(r"\d{1,6}", subsec)
    microsecond = int(digits.group().ljust(6, "0")) if digits else 0
    try:
        return datetime(year, month, day, hour, minute, second, microsecond)
    except ValueError:
        return None


def _parse_offset(text: str) -> timezone | None:
    match = _OFFSET.match(text)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14) or int(minutes) >= 60:
        return None
    return timezone(-delta if sign == "-" else delta)


def _camera(ifds: _Ifds) -> CameraFacts | None:
    iso = _positive_int(ifds.exif.get(0x8827))  # ISOSpeedRatings (PhotographicSensitivity)
    if iso is None or iso == 65535:  # a saturated SHORT: the real value is in ISOSpeed or REI
        iso = _positive_int(ifds.exif.get(0x8833)) or _positive_int(ifds.exif.get(0x8832)) or iso
    camera = CameraFacts(
        make=_text(ifds.main.get(0x010F)),
        model=_text(ifds.main.get(0x0110)),
        lens_model=_text(ifds.exif.get(0xA434)),
        focal_length_mm=_in_range(ifds.exif.get(0x920A), 0.1, 10_000),
        f_number=_in_range(ifds.exif.get(0x829D), 0.1, 1_000),
        exposure_time_s=_in_range(ifds.exif.get(0x829A), 1e-7, 100_000),
        iso=iso,
    )
    return None if camera == CameraFacts("", "", "", None, None, None, None) else camera


def _location(gps: Mapping[int, Any]) -> GeoFacts | None:
    latitude = _degrees(gps.get(2), _text(gps.get(1)).upper(), positive="N", negative="S")
    longitude = _degrees(gps.get(4), _text(gps.get(3)).upper(), positive="E", negative="W")
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    if latitude == 0 and longitude == 0:  # "null island": a receiver without a fix
        return None
    altitude = _in_range(gps.get(6), 0, 100_000)
    below_sea_level = gps.get(5) in (1, b"\x01", (1,))
    if altitude is not None and below_sea_level:
        altitude = -altitude if altitude <= 12_000 else None
    return GeoFacts(latitude=round(latitude, 7), longitude=round(longitude, 7), altitude_m=altitude)


def _degrees(raw: Any, ref: str, *, positive: str, negative: str) -> float | None:
    """Degrees, minutes, seconds (or fewer parts) with the hemisphere reference applied; a missing
    reference reads as positive, an unknown one as no location."""
    if ref not in ("", positive, negative):
        return None
    parts = [_number(part) for part in (raw if isinstance(raw, tuple | list) else (raw,))]
    if not 1 <= len(parts) <= 3 or any(part is None or part < 0 for part in parts):
        return None
    value = sum(part / 60**index for index, part in enumerate(parts) if part is not None)
    return -value if ref == negative else value


def _in_range(raw: Any, low: float, high: float) -> float | None:
    value = _number(raw)
    return value if value is not None and low <= value <= high else None


def _positive_int(raw: Any) -> int | None:
    value = _number(raw)
    return int(value) if value is not None and value >= 1 and value == int(value) else None


def _text(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    return (_clean_text(raw) or "") if isinstance(raw, str) else ""


def _ifd(exif: Image.Exif, ifd: int | None) -> dict[int, Any]:
    """One IFD as a plain dict; a malformed one reads as empty."""
    try:
        return dict(exif.items() if ifd is None else exif.get_ifd(ifd).items())
    except Exception:  # Pillow raises many types on hostile EXIF; metadata is optional
        return {}
