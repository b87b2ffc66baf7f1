"""Grid thumbnails, screen previews and the perceptual hash, from one decode of the original.

The pixels are decoded once, at the smallest scale the format allows that still covers the
preview (JPEG's DCT scaling via `Image.draft`; HEIF's embedded thumbnail when one is big enough);
everything is resized in the stored orientation and turned upright last, on the small image. The
renditions are WebP without EXIF (no GPS leaves through a thumbnail); a non-sRGB RGB colour
profile (Display P3 from phones, Adobe RGB) travels along so colours stay right."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

import imagehash
from PIL import Image, ImageCms

from imgtag_catalog.domain.exif import orientation_of
from imgtag_catalog.domain.images import DECODE_ERRORS, corrupt, open_image
from imgtag_common.errors import InvalidArgument

WEBP = "image/webp"
# Measured on 1920 px previews of noisy 12 MP photos, one core: libwebp method 0 takes 52 ms for
# 131 KiB, method 2 99 ms for 110 KiB, the default 4 263 ms for 103 KiB. Ingestion speed wins for
# previews; thumbnails are fetched by the page and cost 8 ms at method 4 (4 ms at 2, 4% larger).
PREVIEW_QUALITY, PREVIEW_METHOD = 75, 0
THUMBNAIL_QUALITY, THUMBNAIL_METHOD = 75, 4

_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Rendition:
    """One encoded rendition; width and height as displayed."""

    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Renditions:
    thumbnail: Rendition  # longest side at most thumbnail_px
    preview: Rendition | None  # longest side at most preview_px; None when the original serves
    perceptual_hash: str  # 64-bit dHash, 16 hex digits


def make_renditions(data: BinaryIO, *, thumbnail_px: int, preview_px: int, max_pixels: int) -> Renditions:
    """Thumbnail, preview and dHash of the first frame, upright, never upscaled.

    The preview is None when the original is no larger than `preview_px` and browsers show its
    format (JPEG, PNG, WebP, GIF); HEIC, HEIF, AVIF, TIFF and BMP always get one. Raises
    InvalidArgument as `probe_image` does (CORRUPT_IMAGE when the pixels do not decode)."""
    if not 1 <= thumbnail_px <= preview_px:
        raise ValueError("need 1 <= thumbnail_px <= preview_px")
    with open_image(data, max_pixels=max_pixels) as opened:
        image, image_format = opened.image, opened.format
        original_size = image.size
        target = _fit(original_size, preview_px)
        try:
            image.draft(None, target)  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that covers target
            image.load()
            orientation = orientation_of(image.getexif())
            icc = image.info.get("icc_profile")
            screen, icc = _displayable(image, icc if isinstance(icc, bytes) else None)
        except DECODE_ERRORS as error:
            raise corrupt(image_format) from error
        # Bilinear: after JPEG's DCT scaling little shrinking is left (4000 -> 2000 -> 1920), where it
        # looks like bicubic at two thirds of the cost; large factors are box-reduced first anyway.
        screen = _resized(screen, target, Image.Resampling.BILINEAR)
        if orientation in _UPRIGHT:
            screen = screen.transpose(_UPRIGHT[orientation])
        elif screen is image:
            screen = image.copy()  # closing the original (to free the full-size decode) would close it too
    needs_preview = not image_format.browser_safe or max(original_size) > preview_px
    preview = _webp(screen, PREVIEW_QUALITY, PREVIEW_METHOD, icc) if needs_preview else None
    thumbnail_image = _resized(screen, _fit(screen.size, thumbnail_px), Image.Resampling.LANCZOS)
    return Renditions(
        thumbnail=_webp(thumbnail_image, THUMBNAIL_QUALITY, THUMBNAIL_METHOD, icc),
        preview=preview,
        perceptual_hash=perceptual_hash(thumbnail_image),
    )


def perceptual_hash(image: Image.Image) -> str:
    """dHash (imagehash) of the picture as seen on a white page, as 16 hex digits."""
    if image.mode in ("RGBA", "LA"):
        page = Image.new("RGBA", image.size, "white")
        page.alpha_composite(image.convert("RGBA"))
        image = page
    return str(imagehash.dhash(image, hash_size=8))


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    width, height = size
    if max(width, height) <= longest:
        return width, height
    if width >= height:
        return longest, max(1, round(height * longest / width))
    return max(1, round(width * longest / height)), longest


def _resized(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    if image.size == size:
        return image
    # reducing_gap: a cheap integer box reduction first when shrinking by more than 2x (large non-JPEG originals)
    return image.resize(size, resample, reducing_gap=2.0)


def _displayable(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """The image in L, LA, RGB or RGBA (what WebP takes, alpha kept), and the colour profile to
    embed: only an RGB one that is not sRGB (browsers assume sRGB)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        converted = image
    elif mode == "P" or mode == "PA":
        converted = image.convert("RGBA" if mode == "PA" or image.has_transparency_data else "RGB")
    elif mode == "1":
        converted = image.convert("L")
    elif mode in ("La", "RGBa"):
        converted = image.convert(mode.upper())
    elif mode == "CMYK":
        return _cmyk_to_srgb(image, icc), None
    elif mode.startswith("I") or mode == "F":
        converted = _deep_to_8_bit(image)
    else:  # RGBX, YCbCr, HSV, LAB...
        try:
            converted = image.convert("RGB")
        except ValueError as error:
            raise InvalidArgument(
                f"images in pixel mode {mode} are not supported", reason="UNSUPPORTED_IMAGE_FORMAT"
            ) from error
    if converted.mode not in ("RGB", "RGBA") or icc is None or not _is_wide_rgb_profile(icc):
        icc = None
    return converted, icc


def _cmyk_to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: the plain conversion below is close enough
    return image.convert("RGB")


def _deep_to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale to 8 bits by scaling (Pillow's convert("L") clips at 255)."""
    if image.mode != "F":
        image = image.convert("I")
    _, high = image.getextrema()
    if image.mode == "F" and 0 <= high <= 1:
        scale = 255.0
    else:
        scale = 255.0 / high if high > 255 else 1.0
    return image.point(lambda value: value * scale).convert("L")


def _is_wide_rgb_profile(icc: bytes) -> bool:
    if len(icc) < 20 or icc[16:20] != b"RGB ":
        return False
    try:
        description = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.profile_description or ""
    except (ImageCms.PyCMSError, OSError, ValueError):
        return False
    return "srgb" not in description.lower()


def _webp(image: Image.Image, quality: int, method: int, icc: bytes | None) -> Rendition:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=method, icc_profile=icc or b"")
    return Rendition(data=out.getvalue(), content_type=WEBP, width=image.width, height=image.height)
