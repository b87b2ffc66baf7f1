import io
from pathlib import Path

import pytest
from PIL import Image
from pillow_heif import from_pillow

from imgtag_catalog.domain.images import clean_filename, probe_image
from imgtag_common.errors import InvalidArgument
from imgtag_dev.testing import SKIMAGE_PHOTOS

LIMIT = 300_000_000


def test_real_photo_is_identified() -> None:
    with open(SKIMAGE_PHOTOS / "chelsea.png", "rb") as f:
        facts = probe_image(f, max_pixels=LIMIT)
    assert (facts.content_type, facts.width, facts.height) == ("image/png", 451, 300)


def _jpeg_with_orientation(orientation: int) -> io.BytesIO:
    image = Image.open(SKIMAGE_PHOTOS / "chelsea.png").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out


def test_exif_rotation_swaps_display_dimensions() -> None:
    assert (
        probe_image(_jpeg_with_orientation(1), max_pixels=LIMIT).width,
        probe_image(_jpeg_with_orientation(1), max_pixels=LIMIT).height,
    ) == (451, 300)
    rotated = probe_image(_jpeg_with_orientation(6), max_pixels=LIMIT)
    assert (rotated.content_type, rotated.width, rotated.height) == ("image/jpeg", 300, 451)


def test_heic_from_phones_is_accepted() -> None:
    out = io.BytesIO()
    from_pillow(Image.open(SKIMAGE_PHOTOS / "coffee.png").convert("RGB")).save(out, quality=50)
    facts = probe_image(out, max_pixels=LIMIT)
    assert (facts.content_type, facts.width, facts.height) == ("image/heic", 600, 400)


@pytest.mark.parametrize("payload", [b"hello, not an image", b"\x89PNG\r\n\x1a\n broken", b"%PDF-1.7"])
def test_non_images_are_invalid_argument(payload: bytes) -> None:
    with pytest.raises(InvalidArgument) as caught:
        probe_image(io.BytesIO(payload), max_pixels=LIMIT)
    assert caught.value.reason == "NOT_AN_IMAGE"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("IMG_0001.JPG", "IMG_0001.JPG"),
        ("C:\\Users\\me\\猫.png", "猫.png"),
        ("../../etc/passwd", "passwd"),
        ("", "upload.png"),
        ("a\x00b\nc.png", "abc.png"),
    ],
)
def test_filenames_are_cleaned(raw: str, expected: str) -> None:
    assert clean_filename(raw, "image/png") == expected


def test_long_filenames_are_cut() -> None:
    assert len(clean_filename("x" * 1000 + ".jpg", "image/jpeg")) == 255


def test_photo_fixture_dir_exists() -> None:
    assert Path(SKIMAGE_PHOTOS, "coffee.png").exists()
