"""Endpoint secrets at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`)
under a key derived (HKDF-SHA256) from IMGTAG_STORAGE_SECRETS_KEY or the 0600 key file the
local stack makes in its data directory. Sealed values start with "fernet:"."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PREFIX = "fernet:"
_MIN_SECRET_CHARS = 32


def load_secrets_key(*, key: str, key_file: str) -> str:
    """The configured key, or the content of the key file; ValueError when neither is usable."""
    if key:
        value = key
    elif key_file:
        path = Path(key_file)
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{key_file} must be readable by its owner only (chmod 600)")
        value = path.read_text().strip()
    else:
        raise ValueError(
            "set IMGTAG_STORAGE_SECRETS_KEY (or IMGTAG_STORAGE_SECRETS_KEY_FILE): endpoint secrets are encrypted"
        )
    if len(value) < _MIN_SECRET_CHARS:
        raise ValueError(f"the storage secrets key must be at least {_MIN_SECRET_CHARS} characters")
    return value


class FernetSecretBox:
    def __init__(self, secret: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"imgtag-storage-endpoint-secrets").derive(
            secret.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, plain: str) -> str:
        return _PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed secret")
        try:
            return self._fernet.decrypt(sealed.removeprefix(_PREFIX).encode()).decode()
        except InvalidToken as error:
            raise ValueError("the secret was sealed with another key (IMGTAG_STORAGE_SECRETS_KEY changed?)") from error
