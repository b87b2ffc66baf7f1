from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from imgtag_auth.domain.models import RegistrationMode
from imgtag_common.settings import DatabaseSettings


class AuthSettings(DatabaseSettings):
    """IMGTAG_AUTH_* settings."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_AUTH_", extra="ignore")

    port: int = 50051
    database_url: str = "postgresql+asyncpg://imgtag@127.0.0.1:55432/imgtag_auth"
    # Access tokens: who issues them and for whom (the gateway's jwt_authn checks both).
    issuer: str = "imgtag"
    audience: str = "imgtag"
    # Short, because an access token stands alone at the gateway until it expires.
    access_token_ttl_s: int = Field(default=600, ge=30, le=3600)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    # Signing keys: a directory of Ed25519 keys the service creates and rotates itself
    # (files mode 0600), or a fixed PEM given here (then rotation is the operator's job).
    keys_dir: Path | None = None
    signing_key_pem: SecretStr = SecretStr("")
    key_rotation_days: float = Field(default=30, gt=0)
    # How often the gateway refetches the JWKS. A new key is published this long before it
    # signs, so the gateway knows it before the first token signed with it arrives.
    jwks_refresh_s: float = Field(default=300, gt=0)
    # Registration mode until an admin changes it at runtime.
    registration_mode: RegistrationMode = RegistrationMode.APPROVAL_REQUIRED
    # The first admin, created when no admin exists. Without a password one is generated and
    # printed once (never stored in clear text).
    initial_admin_username: str = "admin"
    initial_admin_password: SecretStr = SecretStr("")
    initial_admin_email: str = ""
    password_min_length: int = Field(default=10, ge=8)
    password_max_length: int = Field(default=256, le=4096)
    # Failed logins and API key attempts allowed per client address (and per login name)
    # within the window before RESOURCE_EXHAUSTED.
    max_failed_logins_per_address: int = 30
    max_failed_logins_per_login: int = 10
    max_failed_api_keys_per_address: int = 30
    failure_window_s: float = 900
    # argon2id parameters (argon2-cffi's RFC 9106 "low memory" profile by default).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    def insecure_defaults(self) -> list[str]:
        left = super().insecure_defaults()
        if self.keys_dir is None and not self.signing_key_pem.get_secret_value():
            left.append("keys_dir or signing_key_pem")
        return left
