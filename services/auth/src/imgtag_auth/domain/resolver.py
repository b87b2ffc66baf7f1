"""The auth service resolving credentials itself: for its own interceptor, and behind the
Authenticate RPC that every other service calls."""

from __future__ import annotations

from imgtag_auth.domain.api_keys import ApiKeys
from imgtag_auth.domain.sessions import Sessions
from imgtag_common.access import Credential
from imgtag_common.auth import CredentialKind, Principal


class LocalResolver:
    def __init__(self, sessions: Sessions, api_keys: ApiKeys) -> None:
        self._sessions = sessions
        self._api_keys = api_keys

    async def resolve(self, credential: Credential, *, client_address: str) -> Principal:
        if credential.kind is CredentialKind.API_KEY:
            return await self._api_keys.authenticate(credential.secret, client_address=client_address)
        return await self._sessions.authenticate(credential.secret)
