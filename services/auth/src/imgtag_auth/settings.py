from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from imgtag_common.settings import DatabaseSettings


class AuthSettings(DatabaseSettings):
    """IMGTAG_AUTH_* settings."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_AUTH_", extra="ignore")

    port: int = 50051
    database_url: str = "postgresql+asyncpg://imgtag@127.0.0.1:55432/imgtag_auth"
