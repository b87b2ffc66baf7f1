"""Colour tags from the pixels: the share of the image each named colour covers, for the few
colours that cover a good part of it, in English and Chinese.

Pixels of a small, slightly blurred copy of the image (colours as seen from a distance: pixel
noise is no colour, so random noise reads as gray rather than as a confetti of hues) are
assigned to the nearest of a set of reference colours in CIELAB (where distance follows what
people see), several references per name (light and dark blue are both "blue")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from imgtag_inference.domain.vocabulary import ScoredTag, TagName

# name -> (Chinese, reference sRGB colours)
PALETTE: dict[str, tuple[str, list[tuple[int, int, int]]]] = {
    "red": ("红色", [(200, 30, 30), (140, 20, 25), (235, 60, 50)]),
    "orange": ("橙色", [(240, 140, 30), (255, 165, 80)]),
    "yellow": ("黄色", [(240, 220, 40), (250, 240, 140), (200, 180, 40)]),
    "green": ("绿色", [(40, 160, 60), (20, 90, 40), (140, 200, 90), (90, 120, 50)]),
    "cyan": ("青色", [(40, 190, 200), (0, 128, 128)]),
    "blue": ("蓝色", [(40, 80, 200), (20, 40, 110), (120, 170, 230), (70, 130, 180)]),
    "purple": ("紫色", [(130, 50, 170), (80, 30, 100), (180, 140, 220)]),
    "pink": ("粉色", [(240, 130, 180), (250, 190, 210), (210, 70, 130)]),
    "brown": ("棕色", [(120, 75, 40), (80, 50, 30), (170, 120, 80), (200, 160, 120)]),
    "black": ("黑色", [(10, 10, 10), (35, 35, 40)]),
    "gray": ("灰色", [(128, 128, 128), (80, 80, 85), (180, 180, 180)]),
    "white": ("白色", [(250, 250, 250), (225, 225, 220)]),
}
MIN_SHARE = 0.15  # a colour must cover this much of the image to become a tag
MAX_COLOURS = 3
SAMPLE_PX = 64
BLUR_PX = 1.5


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in 0..255 -> CIELAB (D65)."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


_NAMES = [name for name, (_, refs) in PALETTE.items() for _ in refs]
_REFS = srgb_to_lab(np.array([ref for _, refs in PALETTE.values() for ref in refs]))


@dataclass(frozen=True)
class ColourShare:
    name: str
    share: float


def colour_shares(image: Image.Image) -> list[ColourShare]:
    """Every named colour's share of the image, largest first."""
    small = image.convert("RGB")
    small.thumbnail((SAMPLE_PX, SAMPLE_PX), Image.Resampling.BOX)
    small = small.filter(ImageFilter.GaussianBlur(BLUR_PX))
    lab = srgb_to_lab(np.asarray(small).reshape(-1, 3))
    nearest = np.argmin(((lab[:, None, :] - _REFS[None, :, :]) ** 2).sum(-1), axis=1)
    counts: dict[str, int] = {}
    for index in nearest:
        counts[_NAMES[index]] = counts.get(_NAMES[index], 0) + 1
    total = len(nearest)
    return sorted((ColourShare(n, c / total) for n, c in counts.items()), key=lambda s: -s.share)


def colour_tags(image: Image.Image, *, min_share: float = MIN_SHARE, max_colours: int = MAX_COLOURS) -> list[ScoredTag]:
    """The dominant colours as tags (category "color"); confidence is the share covered."""
    return [
        ScoredTag(TagName(label=s.name, names={"en": s.name, "zh": PALETTE[s.name][0]}, category="color"), s.share)
        for s in colour_shares(image)[:max_colours]
        if s.share >= min_share
    ]
