"""Who may call an RPC, read from the contract (`imgtag.api.v1.access` on every method), and the
authenticator every service's interceptor uses to enforce it.

One rule per method, one place that enforces it: a call is refused unless its credential
resolves to a principal the method's rule admits. Methods without a rule are refused (fail
closed), so a new RPC cannot be reachable by accident."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import descriptor_pool

from imgtag.api.v1 import access_pb2
from imgtag_common.auth import ANONYMOUS, CredentialKind, Principal
from imgtag_common.errors import PermissionDenied, Unauthenticated
from imgtag_common.service_tokens import SERVICE_TOKEN_HEADER, ServiceTokens

Audience = access_pb2.AccessRule.Audience
API_KEY_PREFIX = "itk_"
# The gateway sets this from the connection (it overwrites any copy a client sends).
CLIENT_ADDRESS_HEADER = "x-imgtag-client-address"


@dataclass(frozen=True)
class AccessRule:
    audience: int  # access_pb2.AccessRule.Audience
    api_key_scopes: frozenset[str] = frozenset()


REFUSED = AccessRule(Audience.AUDIENCE_UNSPECIFIED)


@functools.cache
def contract_rule(method: str) -> AccessRule:
    """The rule declared in the contract for "/pkg.Service/Method" (REFUSED when none)."""
    full_name = method.lstrip("/").replace("/", ".")
    try:
        options = descriptor_pool.Default().FindMethodByName(full_name).GetOptions()
    except KeyError:
        return REFUSED
    if not options.HasExtension(access_pb2.access):
        return REFUSED
    rule = options.Extensions[access_pb2.access]
    return AccessRule(rule.audience, frozenset(access_pb2.Scope.Name(s) for s in rule.api_key_scopes))


def check_access(rule: AccessRule, principal: Principal, method: str) -> None:
    """Raise UNAUTHENTICATED (no usable credential) or PERMISSION_DENIED (not allowed)."""
    audience = rule.audience
    if audience == Audience.PUBLIC:
        return
    if audience == Audience.INTERNAL:
        if not principal.service:
            raise PermissionDenied(f"{method} is internal to ImgTag", reason="INTERNAL_METHOD")
        return
    if audience not in (Audience.USER, Audience.ADMIN):
        raise PermissionDenied(f"{method} is not available", reason="METHOD_NOT_ALLOWED")
    if not principal.is_user:
        raise Unauthenticated("sign in or send an API key to call this method", reason="CREDENTIAL_REQUIRED")
    if principal.credential is CredentialKind.API_KEY:
        if audience == Audience.ADMIN or not rule.api_key_scopes:
            raise PermissionDenied(f"API keys cannot call {method}", reason="API_KEY_NOT_ALLOWED")
        if not rule.api_key_scopes & principal.scopes:
            needed = " or ".join(sorted(s.lower().replace("_", ".") for s in rule.api_key_scopes))
            raise PermissionDenied(f"this API key lacks the {needed} scope", reason="API_KEY_SCOPE_MISSING")
        return
    if audience == Audience.ADMIN and not principal.is_admin:
        raise PermissionDenied(f"{method} is for administrators", reason="ADMIN_REQUIRED")


@dataclass(frozen=True)
class Credential:
    """What a caller presented: an access token or an API key secret."""

    kind: CredentialKind
    secret: str


class CredentialResolver(Protocol):
    """Turns a credential into the principal it stands for (the auth service's job)."""

    async def resolve(self, credential: Credential, *, client_address: str) -> Principal: ...


def _header(metadata: Sequence[tuple[str, str | bytes]] | None, key: str) -> str:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode(errors="replace")
    return ""


def presented_credential(metadata: Sequence[tuple[str, str | bytes]] | None) -> Credential | None:
    """The credential in `authorization: Bearer ...` or `x-api-key` (API keys start with itk_)."""
    api_key = _header(metadata, "x-api-key").strip()
    if api_key:
        return Credential(CredentialKind.API_KEY, api_key)
    scheme, _, token = _header(metadata, "authorization").strip().partition(" ")
    if not token:
        return None
    if scheme.lower() != "bearer":
        raise Unauthenticated("use 'Authorization: Bearer <token>'", reason="UNSUPPORTED_AUTH_SCHEME")
    token = token.strip()
    kind = CredentialKind.API_KEY if token.startswith(API_KEY_PREFIX) else CredentialKind.ACCESS_TOKEN
    return Credential(kind, token)


def client_address(metadata: Sequence[tuple[str, str | bytes]] | None, peer: str) -> str:
    """The end client's address: what the gateway saw, else the direct peer ("ipv4:1.2.3.4:567")."""
    forwarded = _header(metadata, CLIENT_ADDRESS_HEADER).strip()
    if forwarded:
        return forwarded[:64]
    kind, _, rest = peer.partition(":")
    return rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else peer[:64]


class ContractAuthenticator:
    """Resolves the caller of each RPC and enforces the method's access rule.

    A service credential (another ImgTag service) carries its principal; otherwise the
    Authorization / X-API-Key credential is resolved by `resolver`. Credentials are only
    resolved for methods that need one."""

    def __init__(
        self,
        *,
        service_tokens: ServiceTokens,
        resolver: CredentialResolver,
        rules: Callable[[str], AccessRule] = contract_rule,
    ) -> None:
        self._service_tokens = service_tokens
        self._resolver = resolver
        self._rules = rules

    async def authenticate(
        self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None, peer: str
    ) -> Principal:
        rule = self._rules(method)
        if rule.audience == Audience.AUDIENCE_UNSPECIFIED:
            raise PermissionDenied(f"{method} has no access rule and is refused", reason="METHOD_NOT_ALLOWED")
        service_token = _header(metadata, SERVICE_TOKEN_HEADER)
        if service_token:
            principal = self._service_tokens.verify(service_token)
        elif rule.audience == Audience.PUBLIC:
            principal = ANONYMOUS
        else:
            credential = presented_credential(metadata)
            if credential is None:
                principal = ANONYMOUS
            else:
                principal = await self._resolver.resolve(credential, client_address=client_address(metadata, peer))
        check_access(rule, principal, method)
        return principal
