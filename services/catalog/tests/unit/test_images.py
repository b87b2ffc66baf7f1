"""probe_image: format sniffed from the bytes, dimensions as displayed, EXIF facts, and every
kind of bad input refused with its reason, on real files made by Pillow."""

from __future__ import annotations

import io
import json
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

from imgtag_catalog.domain.exif import EXIF_MAX_BYTES
from imgtag_catalog.domain.images import clean_filename, probe_image
from imgtag_common.errors import InvalidArgument
from imgtag_dev.imagefiles import SKIMAGE_PHOTOS, encode, exif_block, jpeg_declaring, photo, png_declaring

MP = 1_000_000
LIMIT = 300 * MP


def probe(data: io.BytesIO | bytes, max_pixels: int = LIMIT):
    return probe_image(io.BytesIO(data) if isinstance(data, bytes) else data, max_pixels=max_pixels)


def refused(data: io.BytesIO | bytes, max_pixels: int = LIMIT) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        probe(data, max_pixels)
    return caught.value


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("pil_format", "content_type"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("HEIF", "image/heic"),
        ("TIFF", "image/tiff"),
        ("AVIF", "image/avif"),
        ("BMP", "image/bmp"),
    ],
)
def test_every_accepted_format_is_identified_from_its_bytes(pil_format: str, content_type: str) -> None:
    data = encode(photo(), pil_format)
    data.seek(123)  # the probe reads from the start whatever the position, and rewinds after
    facts = probe(data)
    assert (facts.content_type, facts.width, facts.height, facts.orientation) == (content_type, 451, 300, 1)
    assert not facts.is_animated
    assert data.tell() == 0


@pytest.mark.parametrize("memory_bytes", [10_000_000, 1_000])  # held in memory; spilled to disk
@pytest.mark.parametrize("pil_format", ["JPEG", "PNG", "HEIF"])
def test_uploads_spooled_as_the_catalog_spools_them(pil_format: str, memory_bytes: int) -> None:
    with tempfile.SpooledTemporaryFile(max_size=memory_bytes) as spool:
        spool.write(encode(photo(), pil_format).getvalue())
        facts = probe_image(spool, max_pixels=LIMIT)
        assert (facts.width, facts.height, spool.tell()) == (451, 300, 0)


def test_real_photo_is_identified() -> None:
    with open(SKIMAGE_PHOTOS / "chelsea.png", "rb") as f:
        facts = probe_image(f, max_pixels=LIMIT)
    assert (facts.content_type, facts.width, facts.height) == ("image/png", 451, 300)
    assert facts.exif == {} and facts.camera is None and facts.capture_time is None


@pytest.mark.parametrize("pil_format", ["GIF", "WEBP", "PNG"])
def test_animations_are_flagged(pil_format: str) -> None:
    frames = [Image.new("RGB", (32, 24), color) for color in ("red", "green", "blue")]
    data = encode(frames[0], pil_format, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert probe(data).is_animated


def test_multi_picture_jpeg_is_a_jpeg_and_not_an_animation() -> None:
    # Cameras and phones write MPO (a JPEG followed by more JPEGs) for 3D, depth or previews.
    data = encode(photo(), "MPO", save_all=True, append_images=[photo("coffee.png").resize((451, 300))])
    facts = probe(data)
    assert (facts.content_type, facts.width, facts.is_animated) == ("image/jpeg", 451, False)


def test_iphone_like_heic_reports_upright_dimensions_and_its_metadata() -> None:
    # Like a phone's: 512 px grid tiles, an embedded thumbnail, EXIF with orientation, time and GPS.
    image = photo("coffee.png")  # 600x400
    image.info["thumbnails"] = [160]
    image.info["exif"] = exif_block(
        {0x010F: "Apple", 0x0110: "iPhone 15 Pro", 0x0112: 6},
        {0x9003: "2024:05:01 18:30:05", 0x9011: "+08:00", 0xA434: "iPhone 15 Pro back camera 6.765mm f/1.78"},
        {1: "N", 2: (22.0, 16.0, 30.0), 3: "E", 4: (114.0, 10.0, 12.0)},
    ).tobytes()
    facts = probe(encode(image, "HEIF", tile_size=512))
    # HEIF stores its rotation in the container and libheif applies it while decoding, so the EXIF
    # orientation reads 1 and the dimensions are already the displayed ones.
    assert (facts.content_type, facts.width, facts.height, facts.orientation) == ("image/heic", 400, 600, 1)
    assert facts.capture_time == datetime(2024, 5, 1, 18, 30, 5, tzinfo=timezone(timedelta(hours=8)))
    assert facts.camera is not None and (facts.camera.make, facts.camera.model) == ("Apple", "iPhone 15 Pro")
    assert facts.location is not None
    assert (round(facts.location.latitude, 4), round(facts.location.longitude, 4)) == (22.275, 114.17)


# ---------------------------------------------------------------- EXIF


def jpeg_with(main=None, exif=None, gps=None, image: Image.Image | None = None) -> io.BytesIO:
    return encode(image or photo(), "JPEG", exif=exif_block(main, exif, gps))


@pytest.mark.parametrize(
    ("orientation", "displayed"), [(1, (451, 300)), (3, (451, 300)), (6, (300, 451)), (8, (300, 451))]
)
def test_exif_orientation_gives_the_displayed_dimensions(orientation: int, displayed: tuple[int, int]) -> None:
    facts = probe(jpeg_with({0x0112: orientation}))
    assert (facts.orientation, (facts.width, facts.height)) == (orientation, displayed)
    assert facts.exif["Orientation"] == orientation


def test_invalid_orientation_reads_as_upright() -> None:
    facts = probe(jpeg_with({0x0112: 42}))
    assert (facts.orientation, facts.width) == (1, 451)


def test_capture_time_with_its_recorded_offset() -> None:
    facts = probe(jpeg_with(exif={0x9003: "2023:06:01 14:03:22", 0x9011: "-05:00", 0x9291: "25"}))
    assert facts.capture_time == datetime(2023, 6, 1, 14, 3, 22, 250000, tzinfo=timezone(timedelta(hours=-5)))
    assert facts.capture_offset_known
    assert facts.capture_time.astimezone(UTC).hour == 19


def test_capture_time_without_offset_is_the_wall_time_as_utc() -> None:
    facts = probe(jpeg_with(exif={0x9003: "2023:06:01 14:03:22"}))
    assert facts.capture_time == datetime(2023, 6, 1, 14, 3, 22, tzinfo=UTC)
    assert not facts.capture_offset_known


def test_capture_time_falls_back_to_digitized_then_to_file_time() -> None:
    digitized = probe(jpeg_with({0x0132: "2020:01:01 00:00:00"}, {0x9004: "2021:02:03 04:05:06", 0x9012: "+01:00"}))
    assert digitized.capture_time == datetime(2021, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    assert probe(jpeg_with({0x0132: "2020:01:01 00:00:00"})).capture_time == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2023:13:45 99:00:00", "yesterday"])
def test_unset_or_nonsense_capture_times_are_unknown(bad: str) -> None:
    facts = probe(jpeg_with(exif={0x9003: bad, 0x9011: "+02:00"}))
    assert facts.capture_time is None and not facts.capture_offset_known


def test_an_impossible_offset_is_treated_as_unknown() -> None:
    facts = probe(jpeg_with(exif={0x9003: "2023:06:01 14:03:22", 0x9011: "+25:00"}))
    assert (facts.capture_time, facts.capture_offset_known) == (datetime(2023, 6, 1, 14, 3, 22, tzinfo=UTC), False)


def test_camera_and_exposure_facts() -> None:
    facts = probe(
        jpeg_with(
            {0x010F: "Canon", 0x0110: "Canon EOS R5"},
            {
                0xA434: "RF24-70mm F2.8 L IS USM",
                0x829A: IFDRational(1, 250),
                0x829D: IFDRational(28, 10),
                0x920A: IFDRational(50, 1),
                0x8827: 400,
            },
        )
    )
    camera = facts.camera
    assert camera is not None
    assert (camera.make, camera.model, camera.lens_model) == ("Canon", "Canon EOS R5", "RF24-70mm F2.8 L IS USM")
    assert (camera.exposure_time_s, camera.f_number, camera.focal_length_mm, camera.iso) == (0.004, 2.8, 50.0, 400)
    assert facts.exif["ExposureTime"] == 0.004 and facts.exif["LensModel"] == "RF24-70mm F2.8 L IS USM"


def test_gps_south_and_west_are_negative() -> None:
    facts = probe(
        jpeg_with(
            gps={
                1: "S",
                2: (IFDRational(33, 1), IFDRational(51, 1), IFDRational(3135, 100)),
                3: "W",
                4: (IFDRational(70, 1), IFDRational(30, 1), IFDRational(0, 1)),
                5: b"\x00",
                6: IFDRational(520, 1),
            }
        )
    )
    assert facts.location is not None
    assert facts.location.latitude == pytest.approx(-(33 + 51 / 60 + 31.35 / 3600))
    assert facts.location.longitude == pytest.approx(-70.5)
    assert facts.location.altitude_m == 520


def test_gps_below_sea_level() -> None:
    gps = {1: "N", 2: (31.0, 30.0, 0.0), 3: "E", 4: (35.0, 30.0, 0.0), 5: b"\x01", 6: IFDRational(430, 1)}
    location = probe(jpeg_with(gps=gps)).location
    assert location is not None and location.altitude_m == -430


@pytest.mark.parametrize(
    "gps",
    [
        {1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},  # latitude beyond the pole
        {1: "N", 2: (10.0, 0.0, 0.0), 3: "E", 4: (190.0, 0.0, 0.0)},
        {1: "Q", 2: (10.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},  # unknown hemisphere
        {1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)},  # no fix: "null island"
        {1: "N", 2: (IFDRational(1, 0), 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},  # zero denominator
        {1: "N", 2: (10.0, 0.0, 0.0)},  # no longitude
    ],
)
def test_absurd_gps_is_no_location(gps: dict) -> None:
    facts = probe(jpeg_with(gps=gps))
    assert facts.location is None
    json.dumps(facts.exif)


def assert_json_safe(value: object) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_json_safe(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_safe(item)
    else:
        assert value is None or isinstance(value, str | int | float), repr(value)
        assert not isinstance(value, str) or "\x00" not in value


def test_exif_is_named_json_without_binary_blobs() -> None:
    facts = probe(
        jpeg_with(
            {0x010F: "Canon\x00\x00", 0x0110: "EOS R5", 0x010E: "猫 on the sofa".encode()},
            {
                0x927C: b"\x01\x02" * 5000,  # MakerNote
                0x9000: b"0232",  # ExifVersion: text kept
                0x9101: b"\x01\x02\x03\x00",  # ComponentsConfiguration: small codes kept
                0x9286: b"ASCII\x00\x00\x00" + "héllo".encode(),  # UserComment: phones put UTF-8 here
                0xA420: b"\x00" * 40,  # an opaque blob under a known name
                0xEEEE: "vendor private",  # no standard name
            },
        )
    )
    exif = facts.exif
    assert_json_safe(exif)
    assert exif["Make"] == "Canon" and facts.camera is not None and facts.camera.make == "Canon"
    assert exif["ImageDescription"] == "猫 on the sofa"
    assert exif["ExifVersion"] == "0232" and exif["ComponentsConfiguration"] == [1, 2, 3, 0]
    assert exif["UserComment"] == "héllo"
    assert "MakerNote" not in exif and "ImageUniqueID" not in exif and "ExifOffset" not in exif
    assert all(not name.startswith(("0x", "Tag")) for name in exif)


@pytest.mark.parametrize(("endian", "codec"), [("<", "utf-16-le"), (">", "utf-16-be")])
def test_unicode_user_comment_follows_the_blocks_byte_order(endian: str, codec: str) -> None:
    block = exif_block(exif={0x9286: b"UNICODE\x00" + "猫と犬 héllo".encode(codec)})
    block.endian = endian
    facts = probe(encode(photo(), "JPEG", exif=block.tobytes()))
    assert facts.exif["UserComment"] == "猫と犬 héllo"


@pytest.mark.parametrize("pil_format", ["PNG", "WEBP", "TIFF"])
def test_huge_exif_is_capped_by_dropping_the_largest_fields(pil_format: str) -> None:
    megabyte_of_text = "x" * 1_000_000
    block = exif_block(
        {0x010F: "Nikon", 0x0110: "Z 8", 0x010E: megabyte_of_text},
        {0x9286: b"ASCII\x00\x00\x00" + b"y" * 1_000_000, 0x9003: "2024:01:02 03:04:05", 0x8827: 100},
    )
    params = {"compression": "raw"} if pil_format == "TIFF" else {}  # libtiff refuses such EXIF on writing
    started = time.perf_counter()
    facts = probe(encode(photo(), pil_format, exif=block.tobytes(), **params))
    assert time.perf_counter() - started < 2
    serialized = json.dumps(facts.exif, ensure_ascii=False).encode()
    assert len(serialized) <= EXIF_MAX_BYTES
    assert_json_safe(facts.exif)
    assert "ImageDescription" not in facts.exif and "UserComment" not in facts.exif
    assert facts.exif["Model"] == "Z 8" and facts.exif["ISOSpeedRatings"] == 100
    assert facts.capture_time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_long_arrays_are_left_out_and_short_ones_kept() -> None:
    facts = probe(jpeg_with({0x0140: tuple(range(3000)), 0x0213: 1, 0x0214: (0.0, 255.0, 128.0, 255.0, 128.0, 255.0)}))
    assert "ColorMap" not in facts.exif
    assert facts.exif["ReferenceBlackWhite"] == [0.0, 255.0, 128.0, 255.0, 128.0, 255.0]


def test_an_absurd_exif_block_is_not_parsed() -> None:
    # 16 MB of LONGs would become millions of Python ints; the photo is kept, its EXIF is not.
    block = exif_block({0x010F: "Sony"}, {0x9286: b"ASCII\x00\x00\x00" + b"w" * 16_000_000})
    started = time.perf_counter()
    facts = probe(encode(photo(), "WEBP", exif=block.tobytes()))
    assert time.perf_counter() - started < 2
    assert (facts.exif, facts.width) == ({}, 451)


def test_largest_jpeg_exif_segment_is_kept_within_the_cap() -> None:
    comment = "z" * 60_000  # an APP1 segment holds at most 64 KiB
    facts = probe(jpeg_with(exif={0x9286: b"ASCII\x00\x00\x00" + comment.encode()}))
    assert facts.exif["UserComment"] == comment
    assert len(json.dumps(facts.exif).encode()) <= EXIF_MAX_BYTES


def test_png_exif_after_the_image_data_is_read_without_decoding() -> None:
    # Pillow writes eXIf before IDAT; move it after, where the PNG spec also allows it.
    data = encode(photo(), "PNG", exif=exif_block({0x0112: 6, 0x010F: "Pentax"}).tobytes()).getvalue()
    start = data.index(b"eXIf") - 4
    length = int.from_bytes(data[start : start + 4], "big")
    chunk, rest = data[start : start + 12 + length], data[:start] + data[start + 12 + length :]
    moved = rest[:-12] + chunk + rest[-12:]
    facts = probe(moved)
    assert (facts.orientation, facts.width, facts.exif["Make"]) == (6, 300, "Pentax")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "payload",
    [b"", b"hello, not an image", b"<html><body>hi</body></html>", b"\x00" * 1000, bytes(range(256)) * 4],
)
def test_non_images_are_not_an_image(payload: bytes) -> None:
    assert refused(payload).reason == "NOT_AN_IMAGE"


def test_a_video_is_not_an_image() -> None:
    mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 100
    assert refused(mp4).reason == "NOT_AN_IMAGE"


def truncated(pil_format: str, keep: float = 0.6) -> bytes:
    data = encode(photo(), pil_format).getvalue()
    return data[: int(len(data) * keep)]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's remark on the cut TIFF
@pytest.mark.parametrize("pil_format", ["JPEG", "PNG", "GIF", "WEBP", "HEIF", "AVIF", "TIFF", "BMP"])
def test_truncated_files_are_corrupt(pil_format: str) -> None:
    assert refused(truncated(pil_format)).reason == "CORRUPT_IMAGE"


def test_png_with_a_damaged_chunk_is_corrupt() -> None:
    data = bytearray(encode(photo(), "PNG").getvalue())
    data[data.index(b"IDAT") + 200] ^= 0xFF  # one flipped byte: the chunk's CRC no longer matches
    assert refused(bytes(data)).reason == "CORRUPT_IMAGE"


def test_png_signature_with_garbage_is_corrupt() -> None:
    assert refused(b"\x89PNG\r\n\x1a\n broken").reason == "CORRUPT_IMAGE"


@pytest.mark.parametrize("make_bomb", [png_declaring, jpeg_declaring])
def test_decompression_bomb_is_refused_from_its_header_quickly(make_bomb) -> None:
    bomb = make_bomb(50_000, 50_000)  # 2.5 gigapixels: 10 GB once decoded
    assert len(bomb) < 10_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    error = refused(bomb)
    elapsed = time.perf_counter() - started
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert error.reason == "TOO_MANY_PIXELS"
    assert elapsed < 0.2, f"refusing took {elapsed:.3f} s"
    assert peak_growth_mib < 50


def test_pixel_limit_is_ours_not_pillows() -> None:
    # Between Pillow's limit and twice it: Pillow alone only warns, so these used to get through.
    assert refused(png_declaring(20_000, 20_000), max_pixels=300 * MP).reason == "TOO_MANY_PIXELS"  # 400 MP
    assert refused(png_declaring(4_000, 3_000), max_pixels=10 * MP).reason == "TOO_MANY_PIXELS"
    assert refused(png_declaring(4_000, 3_000), max_pixels=12 * MP - 1).reason == "TOO_MANY_PIXELS"


def test_a_limit_above_pillows_own_is_honoured() -> None:
    # 200 MP is more than twice Pillow's default limit (89 MP), where Pillow alone would refuse.
    facts = probe(png_declaring(16_000, 12_500), max_pixels=LIMIT)
    assert (facts.width, facts.height) == (16_000, 12_500)


@pytest.mark.parametrize(
    "data",
    [png_declaring(70_000, 10), png_declaring(10, 70_000), png_declaring(0, 10), jpeg_declaring(0, 48)],
)
def test_absurd_dimensions_are_refused(data: bytes) -> None:
    assert refused(data).reason == "ABSURD_DIMENSIONS"


def svg() -> bytes:
    return b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


def pdf() -> bytes:
    out = io.BytesIO()
    photo().save(out, "PDF")
    return out.getvalue()


def jpeg2000() -> bytes:
    return encode(photo(), "JPEG2000").getvalue()


def icon() -> bytes:
    return encode(photo(), "ICO").getvalue()


def dng() -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(
        out, np.zeros((60, 80, 3), np.uint8), photometric="rgb", extratags=[(50706, "B", 4, b"\x01\x04\x00\x00")]
    )
    return out.getvalue()


@pytest.mark.parametrize("make", [svg, pdf, jpeg2000, icon, dng])
def test_images_and_documents_we_do_not_take_are_unsupported(make) -> None:
    error = refused(make())
    assert error.reason == "UNSUPPORTED_IMAGE_FORMAT"
    assert "JPEG, PNG" in error.message


def test_sixteen_bit_tiff_is_accepted() -> None:
    ramp = np.linspace(0, 65535, 64 * 48, dtype=np.uint16).reshape(48, 64)
    out = io.BytesIO()
    tifffile.imwrite(out, np.stack([ramp, ramp, ramp], axis=-1), photometric="rgb")
    facts = probe(out.getvalue())
    assert (facts.content_type, facts.width, facts.height) == ("image/tiff", 64, 48)


def test_rational_values_become_plain_numbers() -> None:
    facts = probe(jpeg_with(exif={0x9204: IFDRational(-1, 3), 0x9202: IFDRational(0, 0)}))
    assert facts.exif["ExposureBiasValue"] == pytest.approx(float(Fraction(-1, 3)))
    assert "ApertureValue" not in facts.exif  # 0/0: unknown, not NaN (which JSON cannot carry)


def test_drawing_with_no_metadata_has_no_facts() -> None:
    image = Image.new("RGB", (200, 100), "white")
    ImageDraw.Draw(image).ellipse((10, 10, 90, 90), fill="blue")
    facts = probe(encode(image, "PNG"))
    assert (facts.capture_time, facts.camera, facts.location, facts.exif) == (None, None, None, {})


# ---------------------------------------------------------------- filenames


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
