"""The ZIP rules of domain/archives.py on hostile archives: whole-archive refusals, per-entry
refusals from headers alone, and entries whose bytes lie about their headers."""

from __future__ import annotations

import io
import zipfile

import pytest

from imgtag_catalog.domain.archives import ArchiveLimits, entry_refusal, file_entries, open_archive, read_entry
from imgtag_common.errors import ImgTagError, InvalidArgument
from imgtag_dev.archive_fixtures import build_zip, declare_size, many_entries, mark_encrypted, symlink
from imgtag_dev.testing import SKIMAGE_PHOTOS, unique_png

LIMITS = ArchiveLimits(max_entries=50, max_total_bytes=50_000_000, max_entry_bytes=10_000_000, max_ratio=100)


def _open(data: bytes, limits: ArchiveLimits = LIMITS) -> zipfile.ZipFile:
    return open_archive(io.BytesIO(data), limits)


def _read(data: bytes, name: str) -> bytes:
    archive = _open(data)
    info = archive.getinfo(name)
    assert entry_refusal(info, LIMITS) is None
    return b"".join(read_entry(archive, info, chunk_bytes=4096))


def _refused(call, reason: str) -> ImgTagError:
    with pytest.raises(ImgTagError) as caught:
        call()
    assert caught.value.reason == reason, caught.value.message
    return caught.value


def test_an_honest_archive_reads_back_byte_identical_and_skips_directories() -> None:
    photo = (SKIMAGE_PHOTOS / "chelsea.png").read_bytes()
    png = unique_png()
    data = build_zip([("dir/", b""), ("dir/cat.png", photo), ("x.png", png)])
    archive = _open(data)
    assert [info.filename for _, info in file_entries(archive)] == ["dir/cat.png", "x.png"]
    assert [index for index, _ in file_entries(archive)] == [1, 2]
    assert _read(data, "dir/cat.png") == photo
    stored = build_zip([("x.png", png)], compression=zipfile.ZIP_STORED)
    assert _read(stored, "x.png") == png


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is text", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, b"PK\x03\x04" + b"\x00" * 100],
    ids=["empty", "text", "png", "zip-magic-then-garbage"],
)
def test_what_is_not_a_zip_is_refused_as_a_whole(data: bytes) -> None:
    _refused(lambda: _open(data), "NOT_A_ZIP")


def test_data_before_the_archive_is_refused() -> None:
    _refused(lambda: _open(b"PK\x03\x04junk" + build_zip([("a.png", unique_png())])), "NOT_A_ZIP")


def test_too_many_entries_are_refused_as_a_whole_even_when_the_end_record_lies() -> None:
    error = _refused(lambda: _open(many_entries(51)), "ARCHIVE_TOO_MANY_ENTRIES")
    assert "50" in error.message
    _open(many_entries(50)).close()
    # The end record claims 1 entry; the central directory walk counts them anyway.
    data = bytearray(many_entries(60))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2
    _refused(lambda: _open(bytes(data)), "ARCHIVE_TOO_MANY_ENTRIES")


def test_a_declared_total_over_the_limit_is_refused_as_a_whole() -> None:
    data = build_zip([("a.png", unique_png()), ("b.png", unique_png())])
    data = declare_size(declare_size(data, "a.png", 30_000_000), "b.png", 30_000_000)
    _refused(lambda: _open(data), "ARCHIVE_TOO_LARGE_UNCOMPRESSED")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (("inner.zip", build_zip([("a.png", b"x")])), "NESTED_ARCHIVE"),
        (("backup.tar.gz", b"\x1f\x8b\x08\x00"), "NESTED_ARCHIVE"),
        (("photos.7z", b"7z\xbc\xaf\x27\x1c"), "NESTED_ARCHIVE"),
        (("big.bmp", b"\x00" * 10_000_001), "UPLOAD_TOO_LARGE"),
        (("bomb.jpg", b"\x00" * 3_000_000), "COMPRESSION_RATIO_TOO_HIGH"),
        ((symlink("link.jpg"), b"/etc/passwd"), "SYMLINK_ENTRY"),
    ],
    ids=["zip", "tar.gz", "7z", "too-large", "ratio", "symlink"],
)
def test_entries_are_refused_from_their_headers_before_any_byte_is_read(entry, reason: str) -> None:
    archive = _open(build_zip([entry]))
    (_, info), *_ = file_entries(archive)
    refusal = entry_refusal(info, LIMITS)
    assert refusal is not None and refusal.reason == reason, refusal


def test_small_entries_are_not_judged_by_their_ratio() -> None:
    archive = _open(build_zip([("tiny.txt", b"a" * 1000)]))
    assert entry_refusal(archive.infolist()[0], LIMITS) is None


def test_encrypted_entries_are_refused() -> None:
    archive = _open(mark_encrypted(build_zip([("secret.png", unique_png())]), "secret.png"))
    refusal = entry_refusal(archive.infolist()[0], LIMITS)
    assert refusal is not None and refusal.reason == "ENCRYPTED_ENTRY"


def test_other_compression_methods_are_refused() -> None:
    archive = _open(build_zip([("a.png", unique_png())], compression=zipfile.ZIP_BZIP2))
    refusal = entry_refusal(archive.infolist()[0], LIMITS)
    assert refusal is not None and refusal.reason == "UNSUPPORTED_COMPRESSION"


def test_a_nested_archive_with_an_image_name_is_caught_by_its_first_bytes() -> None:
    data = build_zip([("holiday.jpg", build_zip([("a.png", unique_png())]))])
    archive = _open(data)
    info = archive.infolist()[0]
    assert entry_refusal(info, LIMITS) is None
    chunks = read_entry(archive, info, chunk_bytes=4096)
    _refused(lambda: next(chunks), "NESTED_ARCHIVE")


def test_an_entry_larger_than_it_declares_is_stopped_one_byte_past_its_declared_size() -> None:
    photo = (SKIMAGE_PHOTOS / "chelsea.png").read_bytes()
    data = declare_size(build_zip([("liar.png", photo)]), "liar.png", 1000)
    archive = _open(data)
    info = archive.infolist()[0]
    assert entry_refusal(info, LIMITS) is None  # ratio < 1: the header looks harmless
    received = []
    with pytest.raises(InvalidArgument) as caught:
        for chunk in read_entry(archive, info, chunk_bytes=256):
            received.append(chunk)
    assert caught.value.reason == "ENTRY_SIZE_MISMATCH"
    assert sum(map(len, received)) <= 1000  # nothing past the declared size got out


def test_an_entry_shorter_than_it_declares_or_with_a_wrong_crc_is_refused() -> None:
    png = unique_png()
    shorter = declare_size(build_zip([("short.png", png)]), "short.png", len(png) + 10)
    _refused(lambda: _read(shorter, "short.png"), "ENTRY_SIZE_MISMATCH")
    data = bytearray(build_zip([("flipped.png", png)], compression=zipfile.ZIP_STORED))
    at = bytes(data).find(png)
    data[at + 20] ^= 0xFF  # one byte changed in the stored data
    _refused(lambda: _read(bytes(data), "flipped.png"), "CORRUPT_ENTRY")
