"""S3-compatible endpoints (AWS, MinIO, SeaweedFS, RustFS, ...) through the minio SDK.

One `S3Backend` per endpoint configuration holds one minio client and so one urllib3
connection pool, reused by every call. Calls are blocking: the domain runs them in its
executors. SDK errors become the kit's errors with messages that name no host, bucket or
key material; the details go to this service's log only."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from datetime import timedelta
from typing import BinaryIO, NoReturn
from urllib.parse import urlparse

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from imgtag_common.errors import FailedPrecondition, ImgTagError, InvalidArgument, NotFound, Unavailable

log = logging.getLogger(__name__)

_MISSING_OBJECT = ("NoSuchKey", "NoSuchObject", "NoSuchVersion")
_ACCESS_DENIED = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled")
READ_CHUNK = 1024 * 1024
PROBE_PREFIX = ".imgtag/health/"


def parse_endpoint_url(endpoint_url: str) -> tuple[str, bool]:
    """("host:port", secure) of an http(s) URL without path; INVALID_ARGUMENT otherwise."""
    url = urlparse(endpoint_url)
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/") or url.query:
        raise InvalidArgument(
            "s3.endpoint_url must look like http(s)://host[:port] (no path)", reason="INVALID_S3_ENDPOINT_URL"
        )
    return url.netloc, url.scheme == "https"


class S3Backend:
    """One bucket (and key prefix) on one S3 service."""

    def __init__(
        self,
        *,
        label: str,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "",
        prefix: str = "",
        force_path_style: bool = True,
        insecure_skip_tls_verify: bool = False,
        public_url: str = "",
        pool_size: int = 16,
        part_bytes: int = 8 * 1024 * 1024,
        parallel_parts: int = 3,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        self._label = label  # "endpoints/<id>", the only name errors carry
        netloc, secure = parse_endpoint_url(endpoint_url)
        # Few retries and a short connect timeout: a dead endpoint must fail fast so reads
        # fall over to the next replica, and the job queue retries copies with backoff.
        http = urllib3.PoolManager(
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            cert_reqs="CERT_NONE" if insecure_skip_tls_verify else "CERT_REQUIRED",
            ca_certs=None if insecure_skip_tls_verify else certifi.where(),
            retries=urllib3.Retry(total=2, connect=1, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
        )
        region = region or "us-east-1"
        self._client = Minio(
            netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
            cert_check=not insecure_skip_tls_verify,
        )
        # Presigning needs no connection; a separate client so URLs carry the public host.
        public_netloc, public_secure = parse_endpoint_url(public_url) if public_url else (netloc, secure)
        self._presigner = Minio(
            public_netloc, access_key=access_key, secret_key=secret_key, secure=public_secure, region=region
        )
        for client in (self._client, self._presigner):
            if force_path_style:
                client.disable_virtual_style_endpoint()
            else:
                client.enable_virtual_style_endpoint()
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._part_bytes = part_bytes
        self._parallel_parts = parallel_parts

    # ------------------------------------------------------------------ errors

    def _fail(self, error: Exception, doing: str, key: str = "") -> NoReturn:
        """Raise the domain error for an SDK/network failure (details only in our log)."""
        log.warning("s3 %s on %s failed: %r", doing, self._label, error)
        if isinstance(error, ImgTagError):
            raise error
        if isinstance(error, S3Error):
            if error.code in _MISSING_OBJECT:
                raise NotFound(f"object {key!r} is missing from {self._label}", reason="OBJECT_MISSING") from None
            if error.code == "NoSuchBucket":
                raise FailedPrecondition(
                    f"the bucket of {self._label} does not exist", reason="BUCKET_NOT_FOUND"
                ) from None
            if error.code in _ACCESS_DENIED:
                raise FailedPrecondition(
                    f"{self._label} refused the credentials ({error.code})", reason="ACCESS_DENIED"
                ) from None
            raise Unavailable(f"{self._label} failed to {doing} ({error.code})", reason="ENDPOINT_ERROR") from None
        if isinstance(error, (ServerError, InvalidResponseError)):
            raise Unavailable(f"{self._label} answered with an error to {doing}", reason="ENDPOINT_ERROR") from None
        if isinstance(error, (urllib3.exceptions.HTTPError, OSError, MinioException)):
            raise Unavailable(f"{self._label} is unreachable", reason="ENDPOINT_UNREACHABLE") from None
        raise error

    def _object(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    # ------------------------------------------------------------------ objects

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        # Unknown length: minio sends one PUT when the stream fits in a part, else a multipart
        # upload (completed atomically by S3) with at most `parallel_parts` parts in flight, so
        # memory stays a few parts whatever the object's size.
        try:
            self._client.put_object(
                self._bucket,
                self._object(key),
                data,
                length=-1,
                part_size=self._part_bytes,
                num_parallel_uploads=self._parallel_parts,
                content_type=content_type or "application/octet-stream",
            )
        except Exception as error:
            self._fail(error, "store an object", key)

    def open(self, key: str, offset: int = 0, length: int = 0) -> _S3Reader:
        try:
            response = self._client.get_object(self._bucket, self._object(key), offset=offset, length=length)
        except Exception as error:
            self._fail(error, "read an object", key)
        return _S3Reader(response, self, key)

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
        try:
            self._client.stat_object(self._bucket, self._object(key))
            return True
        except S3Error as error:
            if error.code in (*_MISSING_OBJECT, "NoSuchKey"):
                return False
            self._fail(error, "look up an object", key)
        except Exception as error:
            self._fail(error, "look up an object", key)

    def delete(self, key: str) -> None:
        try:
            self._client.remove_object(self._bucket, self._object(key))  # absent is success in S3
        except Exception as error:
            if isinstance(error, S3Error) and error.code in _MISSING_OBJECT:
                return
            self._fail(error, "delete an object", key)

    def move(self, source: str, target: str) -> None:
        try:
            self._client.copy_object(self._bucket, self._object(target), CopySource(self._bucket, self._object(source)))
        except Exception as error:
            self._fail(error, "copy an object", source)
        self.delete(source)

    # ------------------------------------------------------------------ checks

    def check_readable(self) -> None:
        try:
            exists = self._client.bucket_exists(self._bucket)
        except Exception as error:
            self._fail(error, "check the bucket")
        if not exists:
            raise FailedPrecondition(f"the bucket of {self._label} does not exist", reason="BUCKET_NOT_FOUND")

    def ensure_bucket(self) -> None:
        """Create the bucket when missing (the bootstrap endpoint of the local stack)."""
        try:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)
        except Exception as error:
            self._fail(error, "create the bucket")

    def probe(self) -> None:
        self.check_readable()
        key = f"{PROBE_PREFIX}{uuid.uuid4()}"
        body = uuid.uuid4().bytes
        try:
            self._client.put_object(self._bucket, self._object(key), io.BytesIO(body), len(body))
        except S3Error as error:
            if error.code in _ACCESS_DENIED:
                raise FailedPrecondition(
                    f"{self._label} is read-only for these credentials", reason="READ_ONLY"
                ) from None
            self._fail(error, "write a probe")
        except Exception as error:
            self._fail(error, "write a probe")
        try:
            if self.checksum(key) != (len(body), hashlib.sha256(body).hexdigest()):
                raise Unavailable(f"{self._label} returned other bytes than written", reason="PROBE_MISMATCH")
        finally:
            self.delete(key)

    def available_bytes(self) -> int:
        return 0  # S3 has no notion of free space

    def presign(self, key: str, *, method: str, ttl: timedelta, content_type: str) -> str:
        # Signed locally (the region is configured): no request reaches the server.
        try:
            if method == "GET":
                return self._presigner.presigned_get_object(self._bucket, self._object(key), expires=ttl)
            return self._presigner.presigned_put_object(self._bucket, self._object(key), expires=ttl)
        except Exception as error:
            self._fail(error, "presign a URL", key)


class _S3Reader:
    def __init__(self, response: urllib3.BaseHTTPResponse, backend: S3Backend, key: str) -> None:
        self._response = response
        self._backend = backend
        self._key = key

    def read(self, size: int) -> bytes:
        try:
            return self._response.read(size)
        except Exception as error:
            self._backend._fail(error, "read an object", self._key)

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()
