"""Images as vision-language providers get them (Pillow, blocking: run in the executor): JPEG,
the longest side at most `max_px` (providers scale larger images down themselves, and pay per
tile or token), orientation as the catalog's preview already applied it."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from imgtag_inference.domain.images import decode


def jpeg_for_vision(data: bytes, max_px: int) -> bytes:
    """The image as an RGB JPEG no larger than max_px on its longest side (INVALID_ARGUMENT
    when it cannot be decoded)."""
    image = decode(data)
    if max(image.size) > max_px:
        image.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def sample_picture() -> bytes:
    """A small picture for TestVisionProvider without an image: a red ball on green grass
    under a blue sky, plain enough for any vision-language model to name."""
    image = Image.new("RGB", (320, 240), (110, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 150, 320, 240), fill=(60, 150, 60))
    draw.ellipse((120, 100, 200, 180), fill=(210, 30, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
