"""Signing keys on disk (one PKCS#8 PEM file per key, mode 0600, in a 0700 directory), or one
fixed key from settings.

A key file is created with O_CREAT|O_EXCL and mode 0600 from the first byte, written and fsynced
under a temporary name, then renamed into place: it is never readable by anyone else, not even
for a moment, and a crash never leaves half a key under a real name."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from imgtag_auth.domain.tokens import SigningKey

log = logging.getLogger(__name__)


def _load_ed25519(pem: bytes, source: str) -> Ed25519PrivateKey:
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{source} is not an Ed25519 private key")
    return key


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only from the first byte."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class KeyDirectory:
    """Keys the auth service makes and rotates itself: `<unix time>_<kid>.pem` files."""

    can_rotate = True

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)

    def load(self) -> list[SigningKey]:
        keys = []
        for path in sorted(self._dir.glob("*.pem")):
            stamp, _, _ = path.stem.partition("_")
            try:
                created = datetime.fromtimestamp(int(stamp), UTC)
                keys.append(SigningKey(_load_ed25519(path.read_bytes(), str(path)), created))
            except ValueError as error:
                log.error("ignoring unreadable signing key file %s: %s", path.name, error)
        return keys

    def add(self, key: SigningKey) -> None:
        pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        write_private_file(self._path(key), pem)
        log.info("new signing key", extra={"kid": key.kid})

    def remove(self, key: SigningKey) -> None:
        self._path(key).unlink(missing_ok=True)
        log.info("retired signing key", extra={"kid": key.kid})

    def _path(self, key: SigningKey) -> Path:
        return self._dir / f"{int(key.create_time.timestamp())}_{key.kid}.pem"


class FixedKey:
    """One key given in settings (e.g. a Kubernetes Secret); rotating it is the operator's job."""

    can_rotate = False

    def __init__(self, pem: str) -> None:
        self._key = SigningKey(
            _load_ed25519(pem.encode(), "the configured signing key"), datetime.fromtimestamp(0, UTC)
        )

    def load(self) -> list[SigningKey]:
        return [self._key]

    def add(self, key: SigningKey) -> None:
        raise RuntimeError("fixed keys cannot be added to")

    def remove(self, key: SigningKey) -> None:
        raise RuntimeError("fixed keys cannot be removed")
