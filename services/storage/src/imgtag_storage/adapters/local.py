"""LOCAL endpoints: a directory on a local or mounted disk. Writes are atomic (temporary file in
the same directory, fsync, rename), so a reader never sees half an object."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from imgtag_common.errors import FailedPrecondition, NotFound, Unavailable

READ_CHUNK = 1024 * 1024
PROBE_DIR = ".imgtag/health"


class LocalBackend:
    def __init__(self, *, label: str, root_path: str) -> None:
        self._label = label
        self._root = Path(root_path)

    def _path(self, key: str) -> Path:
        return self._root / key  # keys are validated by the domain: no '..', no leading '/'

    def _check_root(self) -> None:
        if not self._root.is_dir():
            raise Unavailable(f"the directory of {self._label} is not there", reason="ENDPOINT_UNREACHABLE")

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        self._check_root()
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, READ_CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str, offset: int = 0, length: int = 0) -> _LocalReader:
        self._check_root()
        try:
            handle = open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError) as error:
            raise NotFound(f"object {key!r} is missing from {self._label}", reason="OBJECT_MISSING") from error
        handle.seek(offset)
        return _LocalReader(handle, length)

    def checksum(self, key: str) -> tuple[int, str]:
        reader = self.open(key)
        digest, size = hashlib.sha256(), 0
        try:
            while chunk := reader.read(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        finally:
            reader.close()
        return size, digest.hexdigest()

    def exists(self, key: str) -> bool:
        self._check_root()
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._check_root()
        self._path(key).unlink(missing_ok=True)

    def move(self, source: str, target: str) -> None:
        self._check_root()
        self._path(target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(source), self._path(target))

    def check_readable(self) -> None:
        self._check_root()
        if not os.access(self._root, os.R_OK | os.X_OK):
            raise FailedPrecondition(f"the directory of {self._label} cannot be read", reason="ACCESS_DENIED")

    def probe(self) -> None:
        self.check_readable()
        if not os.access(self._root, os.W_OK):
            raise FailedPrecondition(f"the directory of {self._label} is read-only", reason="READ_ONLY")
        key = f"{PROBE_DIR}/{uuid.uuid4()}"
        body = uuid.uuid4().bytes
        try:
            self.put(key, io.BytesIO(body), "application/octet-stream")
            if self.checksum(key) != (len(body), hashlib.sha256(body).hexdigest()):
                raise Unavailable(f"{self._label} returned other bytes than written", reason="PROBE_MISMATCH")
        except OSError as error:
            raise Unavailable(
                f"{self._label} failed a write probe ({error.strerror})", reason="ENDPOINT_ERROR"
            ) from None
        finally:
            self._path(key).unlink(missing_ok=True)

    def available_bytes(self) -> int:
        try:
            return shutil.disk_usage(self._root).free
        except OSError:
            return 0

    def presign(self, key: str, *, method: str, ttl: timedelta, content_type: str) -> str:
        raise FailedPrecondition(
            f"{self._label} is a local directory and cannot presign URLs", reason="NOT_PRESIGNABLE"
        )


class _LocalReader:
    def __init__(self, handle: BinaryIO, length: int) -> None:
        self._handle = handle
        self._remaining = length or None

    def read(self, size: int) -> bytes:
        if self._remaining is None:
            return self._handle.read(size)
        chunk = self._handle.read(min(size, self._remaining))
        self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        self._handle.close()
