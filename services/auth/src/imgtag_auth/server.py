"""Wires the auth service: database, signing keys, password hashing, the domain, the servicer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from datetime import timedelta
from pathlib import Path

from imgtag.auth.v1 import auth_pb2_grpc
from imgtag_auth.adapters.keyfiles import FixedKey, KeyDirectory
from imgtag_auth.api.servicer import AuthServicer
from imgtag_auth.db.repository import AuthRepository
from imgtag_auth.domain.accounts import Accounts
from imgtag_auth.domain.api_keys import ApiKeys
from imgtag_auth.domain.identity import PasswordPolicy
from imgtag_auth.domain.passwords import Passwords
from imgtag_auth.domain.ratelimit import FailureLimiter
from imgtag_auth.domain.resolver import LocalResolver
from imgtag_auth.domain.sessions import Sessions
from imgtag_auth.domain.tokens import AccessTokens, KeyRing, KeyStore
from imgtag_auth.settings import AuthSettings
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.db import open_database, session_factory
from imgtag_common.server import GrpcApp, start_app

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = "imgtag.auth.v1.AuthService"
log = logging.getLogger(__name__)


def key_store(settings: AuthSettings) -> KeyStore:
    if settings.signing_key_pem.get_secret_value():
        return FixedKey(settings.signing_key_pem.get_secret_value())
    if settings.keys_dir is None:
        raise ValueError(
            "set IMGTAG_AUTH_KEYS_DIR (a private directory for signing keys) or IMGTAG_AUTH_SIGNING_KEY_PEM"
        )
    return KeyDirectory(settings.keys_dir)


def announce_generated_admin(username: str, password: str) -> None:
    """Shown once, on the console only: the password is stored nowhere but as a hash."""
    print(
        f"\n  ImgTag created the first administrator.\n  username: {username}\n  password: {password}\n"
        "  Sign in and change it (this password is not shown again).\n",
        file=sys.stderr,
        flush=True,
    )


class AuthDomain:
    """The auth service's parts, built once from settings (the server and the bootstrap CLI)."""

    def __init__(self, settings: AuthSettings, store: AuthRepository, executor: BlockingExecutor) -> None:
        self.keys = KeyRing(
            key_store(settings),
            rotation=timedelta(days=settings.key_rotation_days),
            prepublish=timedelta(seconds=settings.jwks_refresh_s),
            token_ttl=timedelta(seconds=settings.access_token_ttl_s),
        )
        self.tokens = AccessTokens(
            self.keys,
            issuer=settings.issuer,
            audience=settings.audience,
            ttl=timedelta(seconds=settings.access_token_ttl_s),
        )
        passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        policy = PasswordPolicy(settings.password_min_length, settings.password_max_length)
        window = settings.failure_window_s
        self.sessions = Sessions(
            store,
            passwords,
            self.tokens,
            executor,
            policy=policy,
            refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
            failures_per_address=FailureLimiter(limit=settings.max_failed_logins_per_address, window_s=window),
            failures_per_login=FailureLimiter(limit=settings.max_failed_logins_per_login, window_s=window),
        )
        self.accounts = Accounts(
            store,
            passwords,
            executor,
            policy=policy,
            default_registration_mode=settings.registration_mode,
            end_sessions=self.sessions.end_all,
        )
        self.api_keys = ApiKeys(
            store,
            failures_per_address=FailureLimiter(limit=settings.max_failed_api_keys_per_address, window_s=window),
        )
        self._settings = settings

    async def ensure_admin(self) -> str | None:
        s = self._settings
        return await self.accounts.ensure_admin(
            username=s.initial_admin_username,
            password=s.initial_admin_password.get_secret_value(),
            email=s.initial_admin_email,
        )


async def build_server(settings: AuthSettings) -> GrpcApp:
    engine = await open_database(settings, MIGRATIONS)
    executor = BlockingExecutor(settings.blocking_workers)
    domain = AuthDomain(settings, AuthRepository(session_factory(engine)), executor)
    await executor.run(domain.keys.refresh)
    generated = await domain.ensure_admin()
    if generated:
        announce_generated_admin(settings.initial_admin_username, generated)

    async def rotate_keys_when_due() -> None:
        # Reload and rotate often enough that a due key appears within one JWKS refresh.
        interval = max(1.0, min(60.0, settings.jwks_refresh_s / 2))
        while True:
            await asyncio.sleep(interval)
            try:
                await executor.run(domain.keys.refresh)
            except Exception:
                log.exception("signing key refresh failed; keeping the current keys")

    rotation = asyncio.create_task(rotate_keys_when_due())
    resolver = LocalResolver(domain.sessions, domain.api_keys)
    servicer = AuthServicer(domain.accounts, domain.sessions, domain.api_keys, domain.tokens, domain.keys, resolver)

    async def close() -> None:
        rotation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rotation
        await engine.dispose()
        executor.shutdown()

    return await start_app(
        settings,
        services=[(SERVICE_NAME, lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server))],
        tokens=settings.service_tokens("auth"),
        resolver=resolver,
        cleanups=[close],
    )
