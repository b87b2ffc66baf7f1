"""Who is calling: the `Principal` every RPC runs as, set by the server interceptor.

A principal is resolved from a credential (an access token or an API key, checked by the auth
service) or carried over from another ImgTag service inside a signed service credential
(`imgtag_common.service_tokens`). Domain code reads `current_principal` and never looks at
request headers itself."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from imgtag.api.v1 import access_pb2

# API key scopes by their contract names ("ASSETS_READ", ...).
SCOPES = frozenset(name for name in access_pb2.Scope.keys() if name != "SCOPE_UNSPECIFIED")


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class CredentialKind(StrEnum):
    NONE = "none"
    ACCESS_TOKEN = "access_token"
    API_KEY = "api_key"
    SERVICE = "service"  # an ImgTag service acting on its own (background work)


@dataclass(frozen=True)
class Principal:
    """A user (through an access token or one of their API keys), a service, or nobody."""

    user: str = ""  # "users/{uuid}"; empty for anonymous and service callers
    username: str = ""
    role: Role = Role.USER
    credential: CredentialKind = CredentialKind.NONE
    scopes: frozenset[str] = field(default_factory=frozenset)
    api_key: str = ""
    restriction_filter: str = ""
    restriction_collection: str = ""
    session: str = ""
    # The ImgTag service that made this call (on the user's behalf, or on its own).
    service: str = ""

    @property
    def is_user(self) -> bool:
        return bool(self.user)

    @property
    def is_admin(self) -> bool:
        """Admin rights come only with an access token: an admin's API key acts as a plain user."""
        return self.role is Role.ADMIN and self.credential is CredentialKind.ACCESS_TOKEN

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(self.user.removeprefix("users/"))

    def via(self, service: str) -> Principal:
        return replace(self, service=service)

    def to_claims(self) -> dict[str, Any]:
        """The principal as JSON claims, for a service credential."""
        return {
            "user": self.user,
            "username": self.username,
            "role": self.role.value,
            "cred": self.credential.value,
            "scopes": sorted(self.scopes),
            "key": self.api_key,
            "rf": self.restriction_filter,
            "rc": self.restriction_collection,
            "sid": self.session,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any], *, service: str) -> Principal:
        return cls(
            user=claims["user"],
            username=claims.get("username", ""),
            role=Role(claims["role"]),
            credential=CredentialKind(claims["cred"]),
            scopes=frozenset(claims.get("scopes", ())) & SCOPES,
            api_key=claims.get("key", ""),
            restriction_filter=claims.get("rf", ""),
            restriction_collection=claims.get("rc", ""),
            session=claims.get("sid", ""),
            service=service,
        )


ANONYMOUS = Principal()


def service_principal(service: str) -> Principal:
    """A service acting on its own behalf (e.g. a background worker), not for any user."""
    return Principal(credential=CredentialKind.SERVICE, service=service)


current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal", default=ANONYMOUS)
