"""Service credentials: how one ImgTag service proves to another that a call comes from inside.

Every outbound call carries `x-imgtag-service-token`, a short-lived JWT (HS256) made with the
secret all services share, naming the calling service and the principal it acts for. The
receiving service trusts that principal only because the token verifies: a client cannot mint
one without the secret, and the gateway strips the header from requests anyway. This is a
different header, algorithm and key from users' access tokens (EdDSA, checked by the auth
service), so one can never be passed off as the other."""

from __future__ import annotations

import time

import jwt

from imgtag_common.auth import Principal, service_principal
from imgtag_common.errors import Unauthenticated

SERVICE_TOKEN_HEADER = "x-imgtag-service-token"
_ISSUER = "imgtag-services"
_AUDIENCE = "imgtag-internal"
_ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


class ServiceTokens:
    """Mints and verifies service credentials for one service (`service` is its name)."""

    def __init__(self, service: str, secret: str, *, ttl_s: int = 120, leeway_s: int = 30) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the service secret must be at least {MIN_SECRET_BYTES} bytes long")
        self.service = service
        self._key = secret.encode()
        self._ttl_s = ttl_s
        self._leeway_s = leeway_s

    def mint(self, principal: Principal) -> str:
        now = int(time.time())
        claims = {"iss": _ISSUER, "aud": _AUDIENCE, "sub": self.service, "iat": now, "exp": now + self._ttl_s}
        if principal.is_user:
            claims["obo"] = principal.to_claims()
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal a service credential stands for; UNAUTHENTICATED if it does not verify."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                issuer=_ISSUER,
                leeway=self._leeway_s,
                options={"require": ["exp", "iat", "sub"]},
            )
            service = str(claims["sub"])
            obo = claims.get("obo")
            return Principal.from_claims(obo, service=service) if obo else service_principal(service)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
            raise Unauthenticated("the service credential is not valid", reason="INVALID_SERVICE_CREDENTIAL") from error
