"""The auth service as every other service's `CredentialResolver`, and the one mapping between
the contract's `imgtag.auth.v1.Principal` and the kit's `Principal`."""

from __future__ import annotations

import grpc

from imgtag.api.v1 import access_pb2
from imgtag.auth.v1 import auth_pb2, auth_pb2_grpc
from imgtag_common.access import Credential
from imgtag_common.auth import CredentialKind, Principal, Role
from imgtag_common.errors import from_rpc_error

_ROLE_TO_PROTO = {Role.USER: auth_pb2.User.USER, Role.ADMIN: auth_pb2.User.ADMIN}
_ROLE_FROM_PROTO = {v: k for k, v in _ROLE_TO_PROTO.items()}
_KIND_TO_PROTO = {
    CredentialKind.ACCESS_TOKEN: auth_pb2.Principal.ACCESS_TOKEN,
    CredentialKind.API_KEY: auth_pb2.Principal.API_KEY,
}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}


def principal_to_proto(principal: Principal) -> auth_pb2.Principal:
    message = auth_pb2.Principal(
        user=principal.user,
        username=principal.username,
        role=_ROLE_TO_PROTO[principal.role],
        credential_type=_KIND_TO_PROTO.get(principal.credential, auth_pb2.Principal.CREDENTIAL_TYPE_UNSPECIFIED),
        api_key=principal.api_key,
        scopes=[access_pb2.Scope.Value(s) for s in sorted(principal.scopes)],
        session=principal.session,
    )
    if principal.restriction_filter or principal.restriction_collection:
        message.restriction.filter = principal.restriction_filter
        message.restriction.collection = principal.restriction_collection
    return message


def principal_from_proto(message: auth_pb2.Principal) -> Principal:
    return Principal(
        user=message.user,
        username=message.username,
        role=_ROLE_FROM_PROTO.get(message.role, Role.USER),
        credential=_KIND_FROM_PROTO[message.credential_type],
        scopes=frozenset(access_pb2.Scope.Name(s) for s in message.scopes),
        api_key=message.api_key,
        restriction_filter=message.restriction.filter,
        restriction_collection=message.restriction.collection,
        session=message.session,
    )


class AuthServiceResolver:
    """Asks the auth service who a credential belongs to, on every request, so that disabling a
    user, ending a session or revoking a key takes effect at once everywhere."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = 5.0) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._timeout_s = timeout_s

    async def resolve(self, credential: Credential, *, client_address: str) -> Principal:
        request = auth_pb2.AuthenticateRequest(client_address=client_address)
        if credential.kind is CredentialKind.API_KEY:
            request.api_key_secret = credential.secret
        else:
            request.access_token = credential.secret
        try:
            reply = await self._stub.Authenticate(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        return principal_from_proto(reply.principal)
