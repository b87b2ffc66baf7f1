"""Auth domain records <-> protobuf messages. Password hashes and secret hashes never leave."""

from __future__ import annotations

from datetime import UTC, datetime

from imgtag.api.v1 import access_pb2
from imgtag.auth.v1 import auth_pb2
from imgtag_auth.domain.models import ApiKeyRecord, RegistrationMode, UserRecord, UserState
from imgtag_auth.domain.sessions import IssuedTokens
from imgtag_common.auth import Role
from imgtag_common.errors import InvalidArgument
from imgtag_common.resources import to_timestamp

_STATE = {
    UserState.PENDING: auth_pb2.User.PENDING,
    UserState.ACTIVE: auth_pb2.User.ACTIVE,
    UserState.REJECTED: auth_pb2.User.REJECTED,
    UserState.DISABLED: auth_pb2.User.DISABLED,
}
_ROLE = {Role.USER: auth_pb2.User.USER, Role.ADMIN: auth_pb2.User.ADMIN}
_MODE = {
    RegistrationMode.APPROVAL_REQUIRED: auth_pb2.RegistrationSettings.APPROVAL_REQUIRED,
    RegistrationMode.AUTO_APPROVE: auth_pb2.RegistrationSettings.AUTO_APPROVE,
    RegistrationMode.CLOSED: auth_pb2.RegistrationSettings.CLOSED,
}


def role_from_proto(role: int) -> Role:
    if role == auth_pb2.User.ROLE_UNSPECIFIED:
        return Role.USER
    for domain, value in _ROLE.items():
        if value == role:
            return domain
    raise InvalidArgument(f"unknown role {role}", reason="INVALID_ROLE")


def mode_from_proto(mode: int) -> RegistrationMode:
    for domain, value in _MODE.items():
        if value == mode:
            return domain
    raise InvalidArgument("mode is one of APPROVAL_REQUIRED, AUTO_APPROVE, CLOSED", reason="INVALID_MODE")


def mode_to_proto(mode: RegistrationMode, *, min_password: int, max_password: int) -> auth_pb2.RegistrationSettings:
    return auth_pb2.RegistrationSettings(
        name="registrationSettings",
        mode=_MODE[mode],
        min_password_length=min_password,
        max_password_length=max_password,
    )


def user_to_proto(user: UserRecord) -> auth_pb2.User:
    return auth_pb2.User(
        name=user.name,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        role=_ROLE[user.role],
        state=_STATE[user.state],
        create_time=to_timestamp(user.create_time),
        update_time=to_timestamp(user.update_time),
        approve_time=to_timestamp(user.approve_time),
        last_login_time=to_timestamp(user.last_login_time),
        etag=f'W/"{int(user.update_time.timestamp() * 1_000_000)}"',
    )


def api_key_to_proto(key: ApiKeyRecord, *, now: datetime | None = None) -> auth_pb2.ApiKey:
    now = now or datetime.now(UTC)
    if key.revoke_time is not None:
        state = auth_pb2.ApiKey.REVOKED
    elif key.expire_time is not None and key.expire_time <= now:
        state = auth_pb2.ApiKey.EXPIRED
    else:
        state = auth_pb2.ApiKey.ACTIVE
    message = auth_pb2.ApiKey(
        name=key.name,
        display_name=key.display_name,
        scopes=[access_pb2.Scope.Value(s) for s in sorted(key.scopes)],
        expire_time=to_timestamp(key.expire_time),
        state=state,
        secret_prefix=key.secret_prefix,
        create_time=to_timestamp(key.create_time),
        last_use_time=to_timestamp(key.last_use_time),
        revoke_time=to_timestamp(key.revoke_time),
    )
    if key.restriction_filter or key.restriction_collection:
        message.restriction.filter = key.restriction_filter
        message.restriction.collection = key.restriction_collection
    return message


def scopes_from_proto(scopes) -> frozenset[str]:
    names = set()
    for scope in scopes:
        if scope == access_pb2.SCOPE_UNSPECIFIED or scope not in access_pb2.Scope.values():
            raise InvalidArgument(f"unknown API key scope {scope}", reason="INVALID_SCOPES")
        names.add(access_pb2.Scope.Name(scope))
    return frozenset(names)


def tokens_to_proto(tokens: IssuedTokens) -> auth_pb2.AuthTokens:
    return auth_pb2.AuthTokens(
        access_token=tokens.access_token,
        token_type="Bearer",
        access_token_expire_time=to_timestamp(tokens.access_expire_time),
        refresh_token=tokens.refresh_token,
        refresh_token_expire_time=to_timestamp(tokens.refresh_expire_time),
    )
