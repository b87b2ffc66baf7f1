"""make_renditions: WebP thumbnails and previews, upright, in sensible modes, from one decode;
the perceptual hash finds copies. Real files made by Pillow, decoded back with Pillow."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from imgtag_catalog.domain.images import probe_image
from imgtag_catalog.domain.renditions import Rendition, make_renditions
from imgtag_common.errors import InvalidArgument
from imgtag_dev.imagefiles import encode, exif_block, is_red, photo

LIMIT = 300_000_000


def renditions(data: io.BytesIO | bytes, thumbnail_px: int = 320, preview_px: int = 1920):
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return make_renditions(source, thumbnail_px=thumbnail_px, preview_px=preview_px, max_pixels=LIMIT)


def opened(rendition: Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    assert image.format == "WEBP" and rendition.content_type == "image/webp"
    assert image.size == (rendition.width, rendition.height)
    return image


@pytest.mark.parametrize(
    ("pil_format", "small_gets_preview"),
    [
        ("JPEG", False),
        ("PNG", False),
        ("WEBP", False),
        ("GIF", False),
        ("HEIF", True),
        ("TIFF", True),
        ("AVIF", True),
        ("BMP", True),
    ],
)
def test_every_accepted_format_round_trips(pil_format: str, small_gets_preview: bool) -> None:
    data = encode(photo(), pil_format)  # 451x300, red top-left corner
    facts = probe_image(data, max_pixels=LIMIT)
    large = renditions(data, thumbnail_px=64, preview_px=200)
    assert (large.thumbnail.width, large.thumbnail.height) == (64, 43)
    assert large.preview is not None and (large.preview.width, large.preview.height) == (200, 133)
    for rendition in (large.thumbnail, large.preview):
        assert is_red(opened(rendition).convert("RGB").getpixel((2, 2)))
    small = renditions(data, thumbnail_px=320, preview_px=1920)
    assert (small.thumbnail.width, small.thumbnail.height) == (320, 213)
    # Browsers show small JPEG/PNG/WebP/GIF originals themselves; the others need a preview.
    assert (small.preview is not None) == small_gets_preview
    if small.preview is not None:
        assert (small.preview.width, small.preview.height) == (facts.width, facts.height) == (451, 300)
    assert len(large.perceptual_hash) == 16 and int(large.perceptual_hash, 16) >= 0


@pytest.mark.parametrize(("orientation", "red_corner"), [(6, "top-right"), (8, "bottom-left"), (3, "bottom-right")])
def test_renditions_are_upright(orientation: int, red_corner: str) -> None:
    data = encode(photo(), "JPEG", exif=exif_block({0x0112: orientation}))
    facts = probe_image(data, max_pixels=LIMIT)
    result = renditions(data, thumbnail_px=100, preview_px=500)
    assert result.preview is None  # 451 px: the browser shows the original, and honours the orientation
    result = renditions(data, thumbnail_px=100, preview_px=200)
    assert result.preview is not None
    for rendition in (result.thumbnail, result.preview):
        image = opened(rendition).convert("RGB")
        assert (image.width > image.height) == (facts.width > facts.height)
        w, h = image.size
        corners = {
            "top-left": (1, 1),
            "top-right": (w - 2, 1),
            "bottom-left": (1, h - 2),
            "bottom-right": (w - 2, h - 2),
        }
        assert [name for name, xy in corners.items() if is_red(image.getpixel(xy))] == [red_corner]


def test_camera_sized_jpeg_gives_exact_rendition_sizes() -> None:
    result = renditions(encode(photo().resize((4000, 3000)), "JPEG"))  # decoded at 1/2 scale, then 2000 -> 1920
    assert result.preview is not None
    assert (result.preview.width, result.preview.height) == (1920, 1440)
    assert (result.thumbnail.width, result.thumbnail.height) == (320, 240)
    assert len(result.thumbnail.data) < 30_000


def test_renditions_carry_no_exif() -> None:
    gps = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    data = encode(photo(), "JPEG", exif=exif_block({0x010F: "Canon"}, gps=gps))
    result = renditions(data, thumbnail_px=100, preview_px=200)
    for rendition in (result.thumbnail, result.preview):
        assert rendition is not None
        image = opened(rendition)
        assert len(image.getexif()) == 0 and "exif" not in image.info


def test_transparency_is_kept() -> None:
    image = Image.new("RGBA", (300, 200), (0, 0, 255, 0))
    image.paste((255, 0, 0, 255), (0, 0, 150, 200))
    palette = Image.new("P", (300, 200), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.paste(0, (0, 0, 150, 200))
    gif = encode(palette, "GIF", transparency=1)
    for source in (encode(image, "PNG"), encode(image.convert("LA"), "PNG"), gif):
        thumbnail = opened(renditions(source, thumbnail_px=60).thumbnail)
        assert thumbnail.mode == "RGBA"
        assert thumbnail.getpixel((5, 20))[3] > 250 and thumbnail.getpixel((55, 20))[3] < 5


def test_cmyk_jpeg_keeps_its_colours() -> None:
    image = Image.new("RGB", (200, 100), (255, 0, 0)).convert("CMYK")
    thumbnail = opened(renditions(encode(image, "JPEG"), thumbnail_px=50).thumbnail)
    assert thumbnail.mode == "RGB" and is_red(thumbnail.getpixel((25, 12)))


def test_sixteen_bit_images_are_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (64, 1))  # black on the left, white on the right
    grey = encode(Image.fromarray(ramp), "PNG")  # 16-bit greyscale PNG: Pillow's I;16
    thumbnail = np.asarray(opened(renditions(grey, thumbnail_px=128).thumbnail).convert("L"), dtype=float)
    assert thumbnail[:, :8].mean() < 30 and thumbnail[:, -8:].mean() > 220 and 100 < thumbnail.mean() < 160
    rgb = io.BytesIO()
    tifffile.imwrite(rgb, np.stack([ramp, ramp // 2, 65535 - ramp], axis=-1), photometric="rgb")
    thumbnail = np.asarray(opened(renditions(rgb, thumbnail_px=128).thumbnail).convert("RGB"), dtype=float)
    left, right = thumbnail[:, :8].mean(axis=(0, 1)), thumbnail[:, -8:].mean(axis=(0, 1))
    assert left[0] < 30 and left[2] > 220 and right[0] > 220 and 100 < right[1] < 150 and right[2] < 30


def test_animated_gif_renders_its_first_frame() -> None:
    frames = [Image.new("RGB", (64, 48), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert probe_image(data, max_pixels=LIMIT).is_animated
    thumbnail = opened(renditions(data).thumbnail).convert("RGB")
    assert is_red(thumbnail.getpixel((32, 24)))


def test_small_images_are_never_upscaled() -> None:
    result = renditions(encode(Image.new("RGB", (40, 30), "white"), "JPEG"))
    assert (result.thumbnail.width, result.thumbnail.height, result.preview) == (40, 30, None)
    one_pixel = renditions(encode(Image.new("RGB", (1, 1), "white"), "PNG"))
    assert (one_pixel.thumbnail.width, one_pixel.thumbnail.height) == (1, 1)


def test_extreme_panorama_keeps_at_least_one_pixel() -> None:
    result = renditions(encode(Image.new("L", (20_000, 4), 128), "PNG"), thumbnail_px=320, preview_px=1920)
    assert (result.thumbnail.width, result.thumbnail.height) == (320, 1)
    assert result.preview is not None and (result.preview.width, result.preview.height) == (1920, 1)


def test_srgb_profiles_are_not_copied_into_renditions() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    result = renditions(encode(photo(), "JPEG", icc_profile=srgb), thumbnail_px=100, preview_px=200)
    assert "icc_profile" not in opened(result.thumbnail).info  # browsers assume sRGB: 3 KB saved per image


def test_other_rgb_profiles_travel_with_the_renditions() -> None:
    # Stands in for Display P3 (iPhones) or Adobe RGB: an RGB profile that does not call itself sRGB.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    wide = srgb.replace("sRGB".encode("utf-16-be"), "Wide".encode("utf-16-be"))
    result = renditions(encode(photo(), "PNG", icc_profile=wide), thumbnail_px=100, preview_px=200)
    assert result.preview is not None
    assert opened(result.thumbnail).info["icc_profile"] == wide
    assert opened(result.preview).info["icc_profile"] == wide


def test_heic_preview_is_upright_and_full_size() -> None:
    image = photo("coffee.png")  # 600x400
    image.info["exif"] = exif_block({0x0112: 6}).tobytes()
    result = renditions(encode(image, "HEIF", tile_size=256))
    assert result.preview is not None and (result.preview.width, result.preview.height) == (400, 600)
    assert is_red(opened(result.preview).convert("RGB").getpixel((397, 2)))


def test_corrupt_pixels_found_while_rendering_are_corrupt_image() -> None:
    # The probe only checks that a HEIC container is complete; a damaged item inside it fails here.
    data = bytearray(encode(photo(), "HEIF").getvalue())
    mdat = data.index(b"mdat")
    data[mdat + 4 :] = bytes(len(data) - mdat - 4)  # the coded picture zeroed out
    with pytest.raises(InvalidArgument) as caught:
        renditions(bytes(data))
    assert caught.value.reason == "CORRUPT_IMAGE"


def test_renditions_refuse_what_the_probe_refuses() -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_renditions(io.BytesIO(b"not an image"), thumbnail_px=320, preview_px=1920, max_pixels=LIMIT)
    assert caught.value.reason == "NOT_AN_IMAGE"
    big = encode(Image.new("L", (4000, 3000)), "PNG", compress_level=1)
    with pytest.raises(InvalidArgument) as caught:
        make_renditions(big, thumbnail_px=320, preview_px=1920, max_pixels=10_000_000)
    assert caught.value.reason == "TOO_MANY_PIXELS"


# ---------------------------------------------------------------- perceptual hash


def distance(first: str, second: str) -> int:
    return imagehash.hex_to_hash(first) - imagehash.hex_to_hash(second)


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"])
def test_resized_and_recompressed_copy_has_a_close_hash(name: str) -> None:
    original = photo(name)
    copy = original.resize((original.width * 2 // 3, original.height * 2 // 3), Image.Resampling.BILINEAR)
    original_hash = renditions(encode(original, "PNG")).perceptual_hash
    copy_hash = renditions(encode(copy, "JPEG", quality=40)).perceptual_hash
    assert distance(original_hash, copy_hash) <= 10


def test_orientation_does_not_change_the_hash() -> None:
    upright = photo().transpose(Image.Transpose.ROTATE_270)  # what orientation 6 displays
    tagged = encode(photo(), "JPEG", exif=exif_block({0x0112: 6}))
    assert distance(renditions(encode(upright, "JPEG")).perceptual_hash, renditions(tagged).perceptual_hash) <= 4


def test_different_photos_have_distant_hashes() -> None:
    names = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png"]
    hashes = [renditions(encode(photo(name), "PNG")).perceptual_hash for name in names]
    pairs = [(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distance(a, b) for a, b in pairs) > 16
