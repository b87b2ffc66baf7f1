"""Secrets sealed at rest: a round trip, a key per purpose, values sealed by earlier versions of
storage still open, and key files readable by others refused."""

from __future__ import annotations

import base64
import secrets

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from imgtag_common.sealing import FernetSecretBox, load_secrets_key

KEY = secrets.token_urlsafe(32)


def test_a_sealed_value_opens_with_its_key_and_purpose_only() -> None:
    box = FernetSecretBox(KEY, purpose="imgtag-inference-vision-provider-keys")
    sealed = box.seal("sk-live-1234")
    assert sealed.startswith("fernet:") and "sk-live-1234" not in sealed
    assert box.open(sealed) == "sk-live-1234"
    with pytest.raises(ValueError, match="another key"):
        FernetSecretBox(KEY, purpose="imgtag-storage-endpoint-secrets").open(sealed)
    with pytest.raises(ValueError, match="another key"):
        FernetSecretBox(secrets.token_urlsafe(32), purpose="imgtag-inference-vision-provider-keys").open(sealed)
    with pytest.raises(ValueError, match="not a sealed secret"):
        box.open("sk-live-1234")


def test_storage_secrets_sealed_before_the_kit_existed_still_open() -> None:
    # what imgtag_storage.adapters.secrets did: HKDF-SHA256 with this info, then Fernet
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"imgtag-storage-endpoint-secrets").derive(
        KEY.encode()
    )
    old = "fernet:" + Fernet(base64.urlsafe_b64encode(derived)).encrypt(b"minio-secret").decode()
    assert FernetSecretBox(KEY, purpose="imgtag-storage-endpoint-secrets").open(old) == "minio-secret"


def test_the_key_comes_from_the_setting_or_a_private_file(tmp_path) -> None:
    assert load_secrets_key(key=KEY, key_file="", setting="IMGTAG_X_SECRETS_KEY") == KEY
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_secrets_key(key="", key_file=str(path), setting="IMGTAG_X_SECRETS_KEY")
    path.chmod(0o600)
    assert load_secrets_key(key="", key_file=str(path), setting="IMGTAG_X_SECRETS_KEY") == KEY
    with pytest.raises(ValueError, match="set IMGTAG_X_SECRETS_KEY"):
        load_secrets_key(key="", key_file="", setting="IMGTAG_X_SECRETS_KEY")
    with pytest.raises(ValueError, match="at least 32"):
        load_secrets_key(key="short", key_file="", setting="IMGTAG_X_SECRETS_KEY")
