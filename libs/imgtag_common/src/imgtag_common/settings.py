"""Settings base classes: one pattern for every service (pydantic-settings, one env prefix each)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    """Where the process runs; `production` refuses the development defaults."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# Values that are fine on a laptop and dangerous anywhere else.
DEV_DATABASE_URL = "postgresql+asyncpg://imgtag@127.0.0.1:55432/imgtag"


class ServiceSettings(BaseSettings):
    """What every gRPC service needs. Subclasses set `model_config` with their own env prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 binds a free port (tests).")
    log_level: str = "INFO"
    log_json: bool = True
    # Seconds in-flight RPCs get to finish after SIGTERM before they are cancelled.
    shutdown_grace_s: float = 10.0
    # Upper bound for one gRPC message; uploads stream in chunks well below it.
    max_message_bytes: int = 16 * 1024 * 1024
    # Threads for blocking libraries (Pillow, S3 SDK, onnxruntime): bounded, off the event loop.
    blocking_workers: int = 8
    enable_reflection: bool = True

    @property
    def bind_address(self) -> str:
        return f"{self.host}:{self.port}"

    def insecure_defaults(self) -> list[str]:
        """Names of settings still at a development default; subclasses extend the list."""
        return []

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> ServiceSettings:
        if self.environment is Environment.PRODUCTION:
            left = self.insecure_defaults()
            if left:
                raise ValueError("production refuses development defaults for: " + ", ".join(sorted(left)))
        return self


class DatabaseSettings(ServiceSettings):
    """A service that owns a PostgreSQL database."""

    database_url: str = DEV_DATABASE_URL
    database_pool_size: int = 5
    # Apply alembic migrations at start-up (the local stack); Kubernetes runs them in a Job instead.
    migrate_on_start: bool = True

    def insecure_defaults(self) -> list[str]:
        left = super().insecure_defaults()
        if self.database_url == DEV_DATABASE_URL:
            left.append("database_url")
        return left
