"""Object backends. They are blocking (minio SDK, file I/O) and are only called through the
service's bounded executor."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from minio import Minio
from minio.error import S3Error

from imgtag_common.errors import InvalidArgument, NotFound, Unavailable
from imgtag_storage.domain.models import Endpoint, EndpointKind


class ObjectReader(Protocol):
    def read(self, size: int) -> bytes: ...
    def close(self) -> None: ...


class ObjectBackend(Protocol):
    """What an endpoint must do. Keys are relative ('originals/<uuid>'); no '..' or leading '/'."""

    def put(self, key: str, data: BinaryIO, size: int, content_type: str, sha256: str) -> None: ...
    def open(self, key: str, offset: int = 0, length: int = 0) -> ObjectReader: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def check(self) -> None: ...


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or len(key) > 512:
        raise InvalidArgument(f"invalid object key {key!r}", reason="INVALID_OBJECT_KEY")
    return key


class S3Backend:
    """An S3-compatible bucket (AWS, MinIO, SeaweedFS, ...) through the minio SDK."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
        prefix: str = "",
    ) -> None:
        url = urlparse(endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise InvalidArgument(f"S3 endpoint_url must be http(s)://host[:port], got {endpoint_url!r}")
        self._client = Minio(
            url.netloc, access_key=access_key, secret_key=secret_key, secure=url.scheme == "https", region=region
        )
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def _object(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def ensure_bucket(self, *, timeout_s: float = 30.0) -> None:
        """Create the bucket if missing; retried because a fresh S3 server may not take writes yet."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if not self._client.bucket_exists(self._bucket):
                    self._client.make_bucket(self._bucket)
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    raise Unavailable(f"S3 bucket {self._bucket!r} unavailable: {error}") from error
                time.sleep(0.5)

    def put(self, key: str, data: BinaryIO, size: int, content_type: str, sha256: str) -> None:
        self._client.put_object(
            self._bucket,
            self._object(key),
            data,
            size,
            content_type=content_type or "application/octet-stream",
            metadata={"sha256": sha256},
        )

    def open(self, key: str, offset: int = 0, length: int = 0) -> ObjectReader:
        try:
            response = self._client.get_object(self._bucket, self._object(key), offset=offset, length=length)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFound(f"object {key!r} is missing from the S3 endpoint") from error
            raise

        class _Reader:
            def read(self, size: int) -> bytes:
                return response.read(size)

            def close(self) -> None:
                response.close()
                response.release_conn()

        return _Reader()

    def size(self, key: str) -> int:
        return self._client.stat_object(self._bucket, self._object(key)).size or 0

    def delete(self, key: str) -> None:
        self._client.remove_object(self._bucket, self._object(key))

    def check(self) -> None:
        if not self._client.bucket_exists(self._bucket):
            raise Unavailable(f"bucket {self._bucket!r} does not exist")


class LocalBackend:
    """A directory on a local (or mounted) disk. Writes are atomic: temp file, fsync, rename."""

    def __init__(self, *, root: str) -> None:
        self._root = Path(root)

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    def put(self, key: str, data: BinaryIO, size: int, content_type: str, sha256: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str, offset: int = 0, length: int = 0) -> ObjectReader:
        try:
            handle = open(self._path(key), "rb")
        except FileNotFoundError as error:
            raise NotFound(f"object {key!r} is missing from the local endpoint") from error
        handle.seek(offset)
        if not length:
            return handle

        class _Limited:
            remaining = length

            def read(self, size: int) -> bytes:
                chunk = handle.read(min(size, self.remaining))
                self.remaining -= len(chunk)
                return chunk

            def close(self) -> None:
                handle.close()

        return _Limited()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def check(self) -> None:
        if not self._root.is_dir():
            raise Unavailable(f"directory {self._root} does not exist")


def backend_for(endpoint: Endpoint) -> ObjectBackend:
    c = endpoint.config
    if endpoint.kind is EndpointKind.S3:
        return S3Backend(
            endpoint_url=c["endpoint_url"],
            access_key=c["access_key_id"],
            secret_key=c["secret_access_key"],
            bucket=c["bucket"],
            region=c.get("region") or "us-east-1",
            prefix=c.get("prefix", ""),
        )
    return LocalBackend(root=c["root"])
