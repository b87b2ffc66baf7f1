"""Secrets at rest (storage endpoint keys, vision-provider API keys): sealed with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived (HKDF-SHA256) from a
service's secrets-key setting or the 0600 key file the local stack makes in its data directory.
Each use derives its own key (`purpose`), so a value sealed for one never opens for another.
Sealed values start with "fernet:"; plain values never leave an adapter."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "fernet:"
MIN_SECRET_CHARS = 32


def load_secrets_key(*, key: str, key_file: str, setting: str) -> str:
    """The configured key, or the content of the key file; ValueError when neither is usable.
    `setting` names the environment variable in the message (e.g. IMGTAG_STORAGE_SECRETS_KEY)."""
    if key:
        value = key
    elif key_file:
        path = Path(key_file)
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{key_file} must be readable by its owner only (chmod 600)")
        value = path.read_text().strip()
    else:
        raise ValueError(f"set {setting} (or {setting}_FILE): secrets are encrypted at rest")
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"{setting} must be at least {MIN_SECRET_CHARS} characters")
    return value


class FernetSecretBox:
    """seal(plain) -> "fernet:..."; open(sealed) -> plain (ValueError for a foreign value)."""

    def __init__(self, secret: str, *, purpose: str, setting: str = "the secrets key") -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._setting = setting

    def seal(self, plain: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise ValueError("not a sealed secret")
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken as error:
            raise ValueError(f"the secret was sealed with another key ({self._setting} changed?)") from error
