"""Settings base classes: one pattern for every service (pydantic-settings, one env prefix each)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgtag_common.service_tokens import ServiceTokens


class Environment(StrEnum):
    """Where the process runs; `production` refuses the development defaults."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


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
    # Clients are asked to reconnect after this long (0: never), so that they resolve the name
    # again and spread over replicas added since (Kubernetes scaling); calls in flight finish.
    max_connection_age_s: float = Field(default=0, ge=0)
    # Upper bound for one gRPC message; uploads stream in chunks well below it.
    max_message_bytes: int = 16 * 1024 * 1024
    # Threads for blocking libraries (Pillow, S3 SDK, onnxruntime): bounded, off the event loop.
    blocking_workers: int = 8
    enable_reflection: bool = True
    # Shared by every ImgTag service to sign service credentials (at least 32 bytes); the local
    # stack generates one per data directory. No default exists on purpose.
    service_secret: SecretStr = SecretStr("")
    # Where the auth service listens; every service asks it who a credential belongs to.
    auth_target: str = "127.0.0.1:50051"

    @property
    def bind_address(self) -> str:
        return f"{self.host}:{self.port}"

    # Settings whose development default must be replaced in production.
    production_required: ClassVar[tuple[str, ...]] = ("service_secret",)

    def insecure_defaults(self) -> list[str]:
        """Names of settings still at their development default (checked in production)."""
        fields = type(self).model_fields
        return [name for name in self.production_required if getattr(self, name) == fields[name].default]

    def service_tokens(self, service: str) -> ServiceTokens:
        """This service's credential maker and checker (refuses to run without the secret)."""
        prefix = self.model_config.get("env_prefix", "IMGTAG_<SERVICE>_")
        if not self.service_secret.get_secret_value():
            raise ValueError(f"{prefix}SERVICE_SECRET is not set: every ImgTag service needs the shared secret")
        return ServiceTokens(service, self.service_secret.get_secret_value())

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> ServiceSettings:
        if self.environment is Environment.PRODUCTION:
            left = self.insecure_defaults()
            if left:
                raise ValueError("production refuses development defaults for: " + ", ".join(sorted(left)))
        return self


class DatabaseSettings(ServiceSettings):
    """A service that owns a PostgreSQL database. Subclasses set their own development
    `database_url` default, which production refuses."""

    production_required: ClassVar[tuple[str, ...]] = (*ServiceSettings.production_required, "database_url")

    database_url: str = "postgresql+asyncpg://imgtag@127.0.0.1:55432/imgtag"
    database_pool_size: int = 5
    # Apply alembic migrations at start-up (the local stack); Kubernetes runs them in a Job instead.
    migrate_on_start: bool = True
