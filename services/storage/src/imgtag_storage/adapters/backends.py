"""Backends per endpoint, cached: one S3 client (one connection pool) per endpoint
configuration, replaced when the endpoint is updated."""

from __future__ import annotations

import threading

from imgtag_common.errors import FailedPrecondition
from imgtag_storage.adapters.local import LocalBackend
from imgtag_storage.adapters.s3 import S3Backend
from imgtag_storage.domain.models import Endpoint, S3Config
from imgtag_storage.domain.ports import ObjectBackend, SecretBox


class CachedBackends:
    def __init__(
        self, secrets: SecretBox, *, pool_size: int, part_bytes: int, parallel_parts: int, connect_timeout_s: float
    ) -> None:
        self._secrets = secrets
        self._pool_size = pool_size
        self._part_bytes = part_bytes
        self._parallel_parts = parallel_parts
        self._connect_timeout_s = connect_timeout_s
        self._cache: dict[str, tuple[object, ObjectBackend]] = {}
        self._lock = threading.Lock()

    def backend(self, endpoint: Endpoint) -> ObjectBackend:
        version = (endpoint.update_time, repr(endpoint.config))
        with self._lock:
            cached = self._cache.get(endpoint.id)
            if cached is not None and cached[0] == version:
                return cached[1]
        backend = self.fresh(endpoint)
        with self._lock:
            self._cache[endpoint.id] = (version, backend)
        return backend

    def fresh(self, endpoint: Endpoint) -> ObjectBackend:
        config = endpoint.config
        if isinstance(config, S3Config):
            return S3Backend(
                label=endpoint.name,
                endpoint_url=config.endpoint_url,
                access_key=config.access_key_id,
                secret_key=self._secret_of(endpoint),
                bucket=config.bucket,
                region=config.region,
                prefix=config.prefix,
                force_path_style=config.force_path_style,
                insecure_skip_tls_verify=config.insecure_skip_tls_verify,
                public_url=config.public_url,
                pool_size=self._pool_size,
                part_bytes=self._part_bytes,
                parallel_parts=self._parallel_parts,
                connect_timeout_s=self._connect_timeout_s,
            )
        return LocalBackend(label=endpoint.name, root_path=config.root_path)

    def _secret_of(self, endpoint: Endpoint) -> str:
        sealed = endpoint.config.sealed_secret_access_key if isinstance(endpoint.config, S3Config) else ""
        if not sealed:
            return ""
        try:
            return self._secrets.open(sealed)
        except ValueError:
            raise FailedPrecondition(
                f"the secret of {endpoint.name} was sealed with another storage secrets key: give this service "
                "the key it was stored with (IMGTAG_STORAGE_SECRETS_KEY), or give the endpoint its secret again",
                reason="SECRETS_KEY_MISMATCH",
            ) from None
