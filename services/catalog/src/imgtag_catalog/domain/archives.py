"""What may come out of an uploaded ZIP archive, decided from its central directory before any
entry is decompressed, and how an entry's bytes are read without trusting its headers.

The whole archive is refused (INVALID_ARGUMENT, before anything is stored) when it is not a ZIP,
has more than `max_entries` entries (counted by walking the central directory's records, so a
hostile directory never becomes millions of objects in memory) or declares more than
`max_total_bytes` uncompressed.

An entry is refused on its own, with the reason, when it is encrypted, a symbolic link, a nested
archive (by name, and by its first bytes before anything more is read), compressed with anything
but stored/deflate (the only methods whose decompression zipfile bounds per call), larger than
the per-file limit, or expanding more than `max_ratio` times. Entries are read by index through
zipfile and never extracted to disk, so their names cannot point anywhere; and never past their
declared size: one that decompresses to more than it declares is stopped one byte past it."""

from __future__ import annotations

import copy
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from imgtag_common.errors import ImgTagError, InvalidArgument, ResourceExhausted

# Every ZIP begins with a local file header (or, when empty, the end record).
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NESTED_ARCHIVE_SUFFIXES = (
    ".zip", ".zipx", ".jar", ".tar", ".tgz", ".tbz2", ".txz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".cab",
)  # fmt: skip
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",  # zip
    b"PK\x05\x06",  # empty zip
    b"PK\x07\x08",  # spanned zip
    b"Rar!\x1a\x07",  # rar
    b"7z\xbc\xaf\x27\x1c",  # 7-zip
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstandard
    b"MSCF",  # cabinet
)
_SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Below this size a compression ratio says nothing (headers dominate) and cannot amplify much.
RATIO_FLOOR_BYTES = 1024
_CENTRAL_RECORD = struct.Struct("<4s24xHHH12x")  # signature, then name/extra/comment lengths
_CENTRAL_SIGNATURE = b"PK\x01\x02"


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_total_bytes: int
    max_entry_bytes: int
    max_ratio: float


def _not_a_zip(why: str) -> InvalidArgument:
    return InvalidArgument(f"the upload is not a ZIP archive ImgTag can read: {why}", reason="NOT_A_ZIP")


def starts_like_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def _central_directory(file: BinaryIO) -> tuple[int, int, int]:
    """(offset, size, declared entry count) of the central directory, from the end record."""
    # zipfile's own end-record reader (zip64 aware); private, but stable across Python 3 releases.
    end = zipfile._EndRecData(file)  # type: ignore[attr-defined]
    if end is None:
        raise _not_a_zip("no end of central directory record")
    size, offset = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET]  # type: ignore[attr-defined]
    location = end[zipfile._ECD_LOCATION]  # type: ignore[attr-defined]
    extra = 0
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        extra = zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
    if location - size - offset - extra != 0:
        raise _not_a_zip("there is data before the archive")
    return offset, size, end[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]


def _count_records(file: BinaryIO, offset: int, size: int, stop_after: int) -> int:
    """How many records the central directory holds, walking their fixed-size headers (stops
    counting past `stop_after`)."""
    file.seek(offset)
    count = consumed = 0
    while consumed < size and count <= stop_after:
        header = file.read(_CENTRAL_RECORD.size)
        if len(header) != _CENTRAL_RECORD.size:
            raise _not_a_zip("its central directory is cut short")
        signature, name, extra, comment = _CENTRAL_RECORD.unpack(header)
        if signature != _CENTRAL_SIGNATURE:
            raise _not_a_zip("its central directory is damaged")
        file.seek(name + extra + comment, io.SEEK_CUR)
        consumed += _CENTRAL_RECORD.size + name + extra + comment
        count += 1
    return count


def open_archive(file: BinaryIO, limits: ArchiveLimits) -> zipfile.ZipFile:
    """The archive, once it passed the whole-archive checks (see the module docstring)."""
    file.seek(0)
    if not starts_like_zip(file.read(4)):
        raise _not_a_zip("it does not start with a ZIP header")
    try:
        offset, size, declared = _central_directory(file)
    except (OSError, ValueError, struct.error, zipfile.BadZipFile) as error:
        raise _not_a_zip(str(error)) from error
    too_many = InvalidArgument(
        f"the archive has more than {limits.max_entries} entries; split it into smaller archives",
        reason="ARCHIVE_TOO_MANY_ENTRIES",
        metadata={"max_entries": str(limits.max_entries)},
    )
    if declared > limits.max_entries or _count_records(file, offset, size, limits.max_entries) > limits.max_entries:
        raise too_many
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, struct.error, EOFError) as error:
        raise _not_a_zip(str(error)) from error
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        archive.close()
        raise too_many
    declared_total = sum(i.file_size for i in infos)
    if declared_total > limits.max_total_bytes:
        archive.close()
        raise InvalidArgument(
            f"the archive would expand to {declared_total} bytes, more than the {limits.max_total_bytes}-byte limit",
            reason="ARCHIVE_TOO_LARGE_UNCOMPRESSED",
            metadata={"max_total_bytes": str(limits.max_total_bytes)},
        )
    return archive


def file_entries(archive: zipfile.ZipFile) -> list[tuple[int, zipfile.ZipInfo]]:
    """The entries to import, by index in the central directory (directories left out)."""
    return [(index, info) for index, info in enumerate(archive.infolist()) if not info.is_dir()]


def display_name(info: zipfile.ZipInfo) -> str:
    """The entry's path as the report shows it (control characters replaced)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in info.filename)[:1000]


def entry_refusal(info: zipfile.ZipInfo, limits: ArchiveLimits) -> ImgTagError | None:
    """Why an entry is refused from its header alone, before a byte of it is read; or None."""
    name = info.filename.lower()
    if info.flag_bits & 0x1:
        return InvalidArgument("the entry is encrypted", reason="ENCRYPTED_ENTRY")
    if stat.S_ISLNK(info.external_attr >> 16):
        return InvalidArgument("the entry is a symbolic link, not a file", reason="SYMLINK_ENTRY")
    if name.endswith(NESTED_ARCHIVE_SUFFIXES):
        return InvalidArgument("archives inside the archive are not imported", reason="NESTED_ARCHIVE")
    if info.compress_type not in _SUPPORTED_METHODS:
        return InvalidArgument(
            f"the entry uses compression method {info.compress_type}; only stored and deflate are supported",
            reason="UNSUPPORTED_COMPRESSION",
        )
    if info.file_size > limits.max_entry_bytes:
        return ResourceExhausted(
            f"the entry is {info.file_size} bytes; a file may be at most {limits.max_entry_bytes} bytes",
            reason="UPLOAD_TOO_LARGE",
        )
    if info.file_size > RATIO_FLOOR_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            return InvalidArgument(
                f"the entry expands {ratio:.0f} times (at most {limits.max_ratio:.0f} allowed): a zip bomb?",
                reason="COMPRESSION_RATIO_TOO_HIGH",
            )
    return None


def is_archive(head: bytes) -> bool:
    """Whether these first bytes are those of an archive (tar: "ustar" at offset 257)."""
    return head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar"


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, chunk_bytes: int) -> Iterator[bytes]:
    """An entry's bytes in chunks, checked against its header as they come: refused as soon as
    it is an archive or runs past its declared size, and at the end when it is shorter or its
    CRC differs. Blocking: run each step in the executor."""
    # Read it as if it declared one byte more and had no CRC, so zipfile neither stops at the
    # declared size silently nor fails without saying why; both are checked here instead.
    probe = copy.copy(info)
    probe.file_size = info.file_size + 1
    del probe.CRC
    size, crc, first = 0, 0, True
    try:
        with archive.open(probe) as stream:
            while chunk := stream.read(max(chunk_bytes, 512) if first else chunk_bytes):
                if first and is_archive(chunk):
                    raise InvalidArgument("archives inside the archive are not imported", reason="NESTED_ARCHIVE")
                first = False
                size += len(chunk)
                if size > info.file_size:
                    raise InvalidArgument(
                        f"the entry decompresses to more than the {info.file_size} bytes its header declares",
                        reason="ENTRY_SIZE_MISMATCH",
                    )
                crc = zlib.crc32(chunk, crc)
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise InvalidArgument(f"the entry's data is damaged: {error}", reason="CORRUPT_ENTRY") from error
    except NotImplementedError as error:
        raise InvalidArgument(f"the entry cannot be read: {error}", reason="UNSUPPORTED_COMPRESSION") from error
    if size != info.file_size:
        raise InvalidArgument(
            f"the entry holds {size} bytes but its header declares {info.file_size}", reason="ENTRY_SIZE_MISMATCH"
        )
    if crc != info.CRC:
        raise InvalidArgument("the entry's data does not match its checksum (CRC-32)", reason="CORRUPT_ENTRY")
