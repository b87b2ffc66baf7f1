"""Colour tags from the pixels, named in English and Chinese."""

from __future__ import annotations

from PIL import Image

from imgtag_inference.domain.colours import colour_shares, colour_tags


def _solid(rgb: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (40, 30), rgb)


def test_solid_colours_get_their_names() -> None:
    for rgb, en, zh in [
        ((220, 20, 30), "red", "红色"),
        ((30, 60, 210), "blue", "蓝色"),
        ((40, 170, 60), "green", "绿色"),
        ((250, 250, 250), "white", "白色"),
        ((5, 5, 5), "black", "黑色"),
        ((250, 230, 40), "yellow", "黄色"),
    ]:
        (tag,) = colour_tags(_solid(rgb))
        assert (tag.tag.label, tag.tag.names, tag.tag.category) == (en, {"en": en, "zh": zh}, "color")
        assert tag.confidence == 1.0


def test_shares_follow_the_area_and_small_patches_are_not_tags() -> None:
    image = Image.new("RGB", (100, 100), (250, 250, 250))
    image.paste((30, 60, 210), (0, 0, 100, 60))  # 60 % blue
    image.paste((220, 20, 30), (0, 95, 100, 100))  # 5 % red
    shares = {s.name: s.share for s in colour_shares(image)}
    assert abs(shares["blue"] - 0.6) < 0.05 and abs(shares["white"] - 0.35) < 0.05  # edges blur
    assert [t.tag.label for t in colour_tags(image)] == ["blue", "white"]


def test_pixel_noise_is_not_a_confetti_of_colours() -> None:
    import numpy as np

    noise = Image.fromarray(np.random.default_rng(7).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    assert [t.tag.label for t in colour_tags(noise)] == ["gray"]
