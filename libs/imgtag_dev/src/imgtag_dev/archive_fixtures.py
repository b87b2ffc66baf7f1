"""ZIP archives for tests, honest and hostile: built with zipfile, then (for the hostile ones)
their central directory edited the way an attacker would."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable

_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


def build_zip(
    entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]], *, compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """An archive of (name or ZipInfo, bytes) entries in this order; a name ending in "/" is a
    directory."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data, compress_type=compression)
    return out.getvalue()


def _central_records(data: bytes) -> Iterable[tuple[int, str]]:
    """(offset, name) of every central directory record."""
    offset = data.find(_CENTRAL)
    while offset != -1:
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        yield offset, data[offset + 46 : offset + 46 + name_length].decode("utf-8", "replace")
        offset = data.find(_CENTRAL, offset + 46 + name_length)


def declare_size(data: bytes, name: str, file_size: int) -> bytes:
    """The archive with `name`'s uncompressed size in the central directory replaced (a lie)."""
    patched = bytearray(data)
    for offset, entry in _central_records(data):
        if entry == name:
            struct.pack_into("<I", patched, offset + 24, file_size)
            return bytes(patched)
    raise KeyError(name)


def mark_encrypted(data: bytes, name: str) -> bytes:
    """The archive with `name` flagged as encrypted (central directory and local header)."""
    patched = bytearray(data)
    for offset, entry in _central_records(data):
        if entry == name:
            flags_at = offset + 8
            patched[flags_at] |= 0x1
            local = struct.unpack_from("<I", data, offset + 42)[0]
            assert data[local : local + 4] == _LOCAL
            patched[local + 6] |= 0x1
            return bytes(patched)
    raise KeyError(name)


def many_entries(count: int) -> bytes:
    """An archive of `count` empty files (stored, so it stays small)."""
    return build_zip(((f"e{i}.txt", b"") for i in range(count)), compression=zipfile.ZIP_STORED)


def symlink(name: str) -> zipfile.ZipInfo:
    """An entry header saying "symbolic link" (its bytes are the link's target)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = 0o120777 << 16
    return info
