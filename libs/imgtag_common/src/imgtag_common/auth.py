"""The authentication slot of the server interceptor.

A service passes an `Authenticator`; the interceptor calls it once per RPC and stores the
resulting `Principal` in a context variable for the servicer. Verifying JWTs and API keys is the
auth service's job; until a service is given a real authenticator it runs with
`AnonymousAuthenticator`, which makes every caller the anonymous principal (never an admin)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Protocol

from grpc.aio import Metadata


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (`users/{id}`), an API key, or nobody."""

    subject: str
    role: str = "ANONYMOUS"
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_anonymous(self) -> bool:
        return self.subject == ANONYMOUS.subject


ANONYMOUS = Principal(subject="anonymous")

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal", default=ANONYMOUS)


class Authenticator(Protocol):
    """Resolves the caller of `method` from its metadata; raises `Unauthenticated` to refuse."""

    async def authenticate(self, method: str, metadata: Metadata | None) -> Principal: ...


class AnonymousAuthenticator:
    """Accepts every call as anonymous."""

    async def authenticate(self, method: str, metadata: Metadata | None) -> Principal:
        return ANONYMOUS
