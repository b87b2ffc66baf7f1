"""The whole product on one machine: embedded (or external) PostgreSQL and S3, the four services
and the Envoy gateway, started in dependency order and stopped in reverse."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgtag_auth.settings import AuthSettings
from imgtag_dev import gateway
from imgtag_dev.components import (
    EnvoyGateway,
    PostgresServer,
    S3Credentials,
    SeaweedPorts,
    SeaweedS3,
    ServiceProcess,
    bootstrap_admin,
    private_secret,
)
from imgtag_dev.paths import default_data_dir
from imgtag_dev.processes import ManagedProcess, free_port, require_free_ports

log = logging.getLogger("imgtag.stack")

SERVICES = ("auth", "storage", "inference", "catalog")  # start order: catalog needs storage


class StackSettings(BaseSettings):
    """Settings of `imgtag run` (env prefix IMGTAG_). Leave the external_* ones empty to embed."""

    model_config = SettingsConfigDict(env_prefix="IMGTAG_", extra="ignore")

    # The photo library and everything else the stack keeps (README, "Where data lives").
    data_dir: Path = Field(default_factory=default_data_dir)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    gateway_admin_port: int = 9901
    postgres_port: int = 55432
    s3_port: int = 8333
    auth_port: int = 50051
    catalog_port: int = 50052
    storage_port: int = 50053
    inference_port: int = 50054
    # External parts: when set, nothing is embedded for that part.
    external_database_url: str = ""  # postgresql+asyncpg://user:pass@host:5432 (no database name)
    external_s3_endpoint: str = ""
    external_s3_access_key: str = ""
    external_s3_secret_key: str = ""
    s3_bucket: str = "imgtag"
    triton_url: str = ""  # host:8001 of a Triton server for the inference service
    cors_origins: list[str] = []
    # The first admin's password; empty: generated at first start and shown once.
    admin_password: SecretStr = SecretStr("")
    # Extra settings per service, by field name, e.g. IMGTAG_SERVICE_SETTINGS='{"auth":
    # {"access_token_ttl_s": "300"}}'; each service validates its own.
    service_settings: dict[str, dict[str, str]] = {}
    # Proxies (load balancers) in front of the gateway whose X-Forwarded-For entries are believed.
    gateway_trusted_hops: int = Field(default=0, ge=0)
    # SeaweedFS's internal ports, as JSON: IMGTAG_SEAWEED_PORTS='{"master": 9333, ...}'
    # (its S3 port is s3_port).
    seaweed_ports: SeaweedPorts = SeaweedPorts()

    @classmethod
    def on_free_ports(cls, data_dir: Path) -> StackSettings:
        """Every port picked free (tests, parallel stacks)."""
        names = ["gateway_port", "gateway_admin_port", "postgres_port", "s3_port", *(f"{s}_port" for s in SERVICES)]
        return cls(data_dir=data_dir, seaweed_ports=SeaweedPorts.free(), **{n: free_port() for n in names})


@dataclass
class Stack:
    settings: StackSettings
    postgres: PostgresServer | None = None
    s3: SeaweedS3 | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    envoy: EnvoyGateway | None = None
    # (username, password) when this start created the first admin with a generated password.
    initial_admin: tuple[str, str] | None = None

    @property
    def auth_settings(self) -> AuthSettings:
        """The auth service's settings as the stack runs it (the gateway must agree with them)."""
        return AuthSettings(**self.settings.service_settings.get("auth", {}))

    @property
    def seaweed_ports(self) -> SeaweedPorts:
        return self.settings.seaweed_ports.model_copy(update={"s3": self.settings.s3_port})

    @property
    def logs_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    @property
    def models_dir(self) -> Path:
        return self.settings.data_dir / "models"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.settings.gateway_host}:{self.settings.gateway_port}"

    def service_port(self, name: str) -> int:
        return getattr(self.settings, f"{name}_port")

    def service_target(self, name: str) -> str:
        return f"127.0.0.1:{self.service_port(name)}"

    def database_url(self, database: str) -> str:
        if self.settings.external_database_url:
            return f"{self.settings.external_database_url.rstrip('/')}/{database}"
        assert self.postgres is not None
        return self.postgres.url(database)

    def required_ports(self) -> dict[str, int]:
        s = self.settings
        ports = {
            "gateway (IMGTAG_GATEWAY_PORT)": s.gateway_port,
            "gateway admin (IMGTAG_GATEWAY_ADMIN_PORT)": s.gateway_admin_port,
        }
        ports |= {f"{n} service (IMGTAG_{n.upper()}_PORT)": self.service_port(n) for n in SERVICES}
        if not s.external_database_url:
            ports["postgres (IMGTAG_POSTGRES_PORT)"] = s.postgres_port
        if not s.external_s3_endpoint:
            ports |= self.seaweed_ports.named()
        return ports

    def _s3_settings(self) -> tuple[str, str, str]:
        s = self.settings
        if s.external_s3_endpoint:
            return s.external_s3_endpoint, s.external_s3_access_key, s.external_s3_secret_key
        assert self.s3 is not None
        return self.s3.endpoint_url, self.s3.credentials.access_key, self.s3.credentials.secret_key

    @property
    def service_secret(self) -> str:
        return private_secret(self.settings.data_dir / "service-secret")

    def _service_env(self, name: str) -> dict[str, str]:
        prefix = f"IMGTAG_{name.upper()}_"
        env = {prefix + key.upper(): value for key, value in self.settings.service_settings.get(name, {}).items()}
        env |= {
            prefix + "PORT": str(self.service_port(name)),
            prefix + "LOG_JSON": "true",
            prefix + "SERVICE_SECRET": self.service_secret,
            prefix + "AUTH_TARGET": self.service_target("auth"),
        }
        if name in ("auth", "catalog", "storage", "inference"):
            env[prefix + "DATABASE_URL"] = self.database_url(f"imgtag_{name}")
        if name == "storage":
            endpoint, access, secret = self._s3_settings()
            # Seals endpoint secrets at rest; made once per data directory, owner-only.
            key_file = self.settings.data_dir / "storage-secrets-key"
            private_secret(key_file)
            env |= {
                prefix + "SECRETS_KEY_FILE": str(key_file),
                prefix + "BOOTSTRAP_S3_ENDPOINT": endpoint,
                prefix + "BOOTSTRAP_S3_ACCESS_KEY": access,
                prefix + "BOOTSTRAP_S3_SECRET_KEY": secret,
                prefix + "BOOTSTRAP_S3_BUCKET": self.settings.s3_bucket,
            }
        if name == "catalog":
            env[prefix + "STORAGE_TARGET"] = self.service_target("storage")
            env[prefix + "INFERENCE_TARGET"] = self.service_target("inference")
        if name == "inference":
            # converted models (cached) and `imgtag models pull` downloads live beside the library
            env[prefix + "MODELS_DIR"] = str(self.models_dir)
            env[prefix + "STORAGE_TARGET"] = self.service_target("storage")
            # Seals vision-language providers' API keys at rest; made once per data directory.
            key_file = self.settings.data_dir / "inference-secrets-key"
            private_secret(key_file)
            env[prefix + "SECRETS_KEY_FILE"] = str(key_file)
            if self.settings.triton_url:
                env[prefix + "TRITON_URL"] = self.settings.triton_url
        if name == "auth":
            env[prefix + "KEYS_DIR"] = str(self.settings.data_dir / "auth-keys")
            if self.settings.admin_password.get_secret_value():
                env[prefix + "INITIAL_ADMIN_PASSWORD"] = self.settings.admin_password.get_secret_value()
        return env

    def gateway_config(self) -> str:
        """The Envoy config for this stack's ports."""
        s = self.settings
        auth = self.auth_settings
        return gateway.render(
            listen_host=s.gateway_host,
            listen_port=s.gateway_port,
            admin_port=s.gateway_admin_port,
            access_log=str(self.logs_dir / "gateway-access.log"),
            upstreams=[gateway.Upstream(n, "127.0.0.1", self.service_port(n)) for n in SERVICES],
            cors_origins=s.cors_origins,
            jwt_issuer=auth.issuer,
            jwt_audience=auth.audience,
            jwks_refresh_s=auth.jwks_refresh_s,
            trusted_hops=s.gateway_trusted_hops,
        )

    def start(self) -> None:
        s = self.settings
        require_free_ports(self.required_ports())
        s.data_dir.mkdir(parents=True, exist_ok=True)
        # Private to whoever runs the stack; as root, PostgreSQL's unprivileged user must traverse it.
        s.data_dir.chmod(0o711 if os.geteuid() == 0 else 0o700)
        self.logs_dir.mkdir(exist_ok=True, mode=0o700)
        if not s.external_database_url:
            self.postgres = PostgresServer(s.data_dir, s.postgres_port)
            self.postgres.start(self.logs_dir / "postgres.log")
        if not s.external_s3_endpoint:
            self.s3 = SeaweedS3(
                s.data_dir / "s3", self.seaweed_ports, S3Credentials.load_or_create(s.data_dir / "s3-credentials.json")
            )
            self.s3.start(self.logs_dir / "seaweedfs.log")
        self.initial_admin = bootstrap_admin(self._service_env("auth"), self.logs_dir / "auth.log")
        for name in SERVICES:
            service = ServiceProcess(name, self.service_port(name), self._service_env(name))
            self.services[name] = service
            service.start(self.logs_dir / f"{name}.log")
        config = s.data_dir / "envoy.yaml"
        config.write_text(self.gateway_config())
        self.envoy = EnvoyGateway(config, s.gateway_port, s.gateway_admin_port)
        self.envoy.start(self.logs_dir / "envoy.log")

    def processes(self) -> list[ManagedProcess]:
        parts = [self.envoy, *reversed(list(self.services.values())), self.s3, self.postgres]
        return [p.process for p in parts if p is not None and p.process is not None]

    def stop(self) -> None:
        """Gateway first (no new traffic), then services, then storage and database."""
        for process in self.processes():
            process.stop()


@contextlib.contextmanager
def running(settings: StackSettings) -> Iterator[Stack]:
    """Start the stack, yield it, always stop it."""
    stack = Stack(settings)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
