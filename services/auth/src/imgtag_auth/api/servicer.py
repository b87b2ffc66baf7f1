"""AuthService: protobuf in, protobuf out; the rules live in domain/. Who may call each method
is declared in the contract and enforced by the kit's interceptor before a method runs."""

from __future__ import annotations

from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie

from google.protobuf import empty_pb2
from grpc.aio import ServicerContext

from imgtag.auth.v1 import auth_pb2, auth_pb2_grpc
from imgtag_auth.api.mappers import (
    api_key_to_proto,
    mode_from_proto,
    mode_to_proto,
    role_from_proto,
    scopes_from_proto,
    tokens_to_proto,
    user_to_proto,
)
from imgtag_auth.domain.accounts import Accounts, NewAccount
from imgtag_auth.domain.api_keys import ApiKeys, NewApiKey, parse_api_key_name
from imgtag_auth.domain.models import RegistrationMode
from imgtag_auth.domain.sessions import Sessions
from imgtag_auth.domain.tokens import AccessTokens, KeyRing
from imgtag_common.access import Credential, CredentialResolver, client_address
from imgtag_common.auth import CredentialKind, current_principal
from imgtag_common.credentials import principal_to_proto
from imgtag_common.errors import InvalidArgument, Unauthenticated
from imgtag_common.resources import to_timestamp

# Browsers get the refresh token as a cookie only the refresh and logout routes ever see, which scripts on
# the page cannot read (HttpOnly) and other sites cannot send (SameSite=Strict).
REFRESH_COOKIE = "imgtag_refresh"
# Cookie paths match by whole segments: "/v1/auth/" covers "/v1/auth/session:refresh".
_COOKIE_PATH = "/v1/auth/"


def _metadata(context: ServicerContext, key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode(errors="replace")
    return ""


def _cookie_token(context: ServicerContext) -> str:
    try:
        morsel = SimpleCookie(_metadata(context, "cookie")).get(REFRESH_COOKIE)
    except CookieError:
        return ""
    return morsel.value if morsel else ""


async def _set_refresh_cookie(context: ServicerContext, token: str, expires: datetime | None) -> None:
    max_age = max(0, int((expires - datetime.now(UTC)).total_seconds())) if expires else 0
    secure = "; Secure" if _metadata(context, "x-forwarded-proto") == "https" else ""
    cookie = f"{REFRESH_COOKIE}={token}; Path={_COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    await context.send_initial_metadata((("set-cookie", cookie), ("cache-control", "no-store")))


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        accounts: Accounts,
        sessions: Sessions,
        api_keys: ApiKeys,
        tokens: AccessTokens,
        keys: KeyRing,
        resolver: CredentialResolver,
    ) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._api_keys = api_keys
        self._tokens = tokens
        self._keys = keys
        self._resolver = resolver

    # ------------------------------------------------------------------ public

    async def Register(self, request: auth_pb2.RegisterRequest, context: ServicerContext) -> auth_pb2.User:
        account = NewAccount(request.username, request.email, request.password, request.display_name)
        return user_to_proto(await self._accounts.register(account))

    async def Login(self, request: auth_pb2.LoginRequest, context: ServicerContext) -> auth_pb2.LoginResponse:
        address = client_address(context.invocation_metadata(), context.peer())
        tokens, user = await self._sessions.login(request.login, request.password, client_address=address)
        await _set_refresh_cookie(context, tokens.refresh_token, tokens.refresh_expire_time)
        return auth_pb2.LoginResponse(tokens=tokens_to_proto(tokens), user=user_to_proto(user))

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: ServicerContext
    ) -> auth_pb2.RefreshTokenResponse:
        presented = request.refresh_token or _cookie_token(context)
        if not presented:
            raise Unauthenticated("no refresh token was sent; sign in", reason="REFRESH_TOKEN_REQUIRED")
        tokens = await self._sessions.refresh(presented)
        await _set_refresh_cookie(context, tokens.refresh_token, tokens.refresh_expire_time)
        return auth_pb2.RefreshTokenResponse(tokens=tokens_to_proto(tokens))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: ServicerContext) -> auth_pb2.LogoutResponse:
        await self._sessions.logout(request.refresh_token or _cookie_token(context))
        await _set_refresh_cookie(context, "", None)
        return auth_pb2.LogoutResponse()

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: ServicerContext) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.JsonWebKey(**jwk) for jwk in self._tokens.jwks()])

    async def GetRegistrationSettings(
        self, request: auth_pb2.GetRegistrationSettingsRequest, context: ServicerContext
    ) -> auth_pb2.RegistrationSettings:
        return self._settings(await self._accounts.registration_mode())

    def _settings(self, mode: RegistrationMode) -> auth_pb2.RegistrationSettings:
        policy = self._accounts.policy
        return mode_to_proto(mode, min_password=policy.min_length, max_password=policy.max_length)

    # ------------------------------------------------------------------ the caller

    async def GetCurrentUser(self, request: auth_pb2.GetCurrentUserRequest, context: ServicerContext) -> auth_pb2.User:
        return user_to_proto(await self._accounts.get(current_principal.get(), "users/me"))

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: ServicerContext
    ) -> auth_pb2.ChangePasswordResponse:
        await self._sessions.change_password(current_principal.get(), request.current_password, request.new_password)
        return auth_pb2.ChangePasswordResponse()

    async def GetUser(self, request: auth_pb2.GetUserRequest, context: ServicerContext) -> auth_pb2.User:
        return user_to_proto(await self._accounts.get(current_principal.get(), request.name))

    async def UpdateUser(self, request: auth_pb2.UpdateUserRequest, context: ServicerContext) -> auth_pb2.User:
        paths = set(request.update_mask.paths)
        unknown = paths - {"display_name", "email"}
        if unknown:
            raise InvalidArgument(f"cannot update {', '.join(sorted(unknown))}", reason="INVALID_UPDATE_MASK")
        user = await self._accounts.update_profile(
            current_principal.get(),
            request.user.name,
            display_name=request.user.display_name if "display_name" in paths else None,
            email=request.user.email if "email" in paths else None,
        )
        return user_to_proto(user)

    # ------------------------------------------------------------------ admin

    async def UpdateRegistrationSettings(
        self, request: auth_pb2.UpdateRegistrationSettingsRequest, context: ServicerContext
    ) -> auth_pb2.RegistrationSettings:
        if set(request.update_mask.paths) != {"mode"}:
            raise InvalidArgument("update_mask must be exactly 'mode'", reason="INVALID_UPDATE_MASK")
        mode = mode_from_proto(request.registration_settings.mode)
        return self._settings(await self._accounts.set_registration_mode(mode))

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        page = await self._accounts.list(
            filter_text=request.filter, page_size=request.page_size, page_token=request.page_token
        )
        return auth_pb2.ListUsersResponse(
            users=[user_to_proto(u) for u in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def CreateUser(self, request: auth_pb2.CreateUserRequest, context: ServicerContext) -> auth_pb2.User:
        account = NewAccount(
            request.username, request.email, request.password, request.display_name, role_from_proto(request.role)
        )
        return user_to_proto(await self._accounts.create_user(account))

    async def ApproveUser(self, request: auth_pb2.ApproveUserRequest, context: ServicerContext) -> auth_pb2.User:
        role = role_from_proto(request.role)
        return user_to_proto(await self._accounts.approve(current_principal.get(), request.name, role))

    async def RejectUser(self, request: auth_pb2.RejectUserRequest, context: ServicerContext) -> auth_pb2.User:
        return user_to_proto(await self._accounts.reject(current_principal.get(), request.name))

    async def DisableUser(self, request: auth_pb2.DisableUserRequest, context: ServicerContext) -> auth_pb2.User:
        return user_to_proto(await self._accounts.disable(current_principal.get(), request.name))

    async def EnableUser(self, request: auth_pb2.EnableUserRequest, context: ServicerContext) -> auth_pb2.User:
        return user_to_proto(await self._accounts.enable(current_principal.get(), request.name))

    async def SetUserRole(self, request: auth_pb2.SetUserRoleRequest, context: ServicerContext) -> auth_pb2.User:
        if request.role == auth_pb2.User.ROLE_UNSPECIFIED:
            raise InvalidArgument("role is required (USER or ADMIN)", reason="INVALID_ROLE")
        role = role_from_proto(request.role)
        return user_to_proto(await self._accounts.set_role(current_principal.get(), request.name, role))

    async def SetUserPassword(
        self, request: auth_pb2.SetUserPasswordRequest, context: ServicerContext
    ) -> auth_pb2.User:
        user = await self._accounts.set_password(current_principal.get(), request.name, request.new_password)
        return user_to_proto(user)

    async def DeleteUser(self, request: auth_pb2.DeleteUserRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self._accounts.delete(current_principal.get(), request.name)
        return empty_pb2.Empty()

    async def RotateSigningKey(
        self, request: auth_pb2.RotateSigningKeyRequest, context: ServicerContext
    ) -> auth_pb2.RotateSigningKeyResponse:
        key = self._keys.rotate_now()
        return auth_pb2.RotateSigningKeyResponse(kid=key.kid, sign_start_time=to_timestamp(self._keys.sign_start(key)))

    # ------------------------------------------------------------------ API keys

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: ServicerContext
    ) -> auth_pb2.CreateApiKeyResponse:
        principal = current_principal.get()
        owner = self._accounts.user_id(principal, request.parent)
        await self._accounts.get(principal, request.parent)  # the owner must exist
        spec = request.api_key
        key, secret = await self._api_keys.create(
            owner,
            NewApiKey(
                display_name=spec.display_name,
                scopes=scopes_from_proto(spec.scopes),
                expire_time=spec.expire_time.ToDatetime(UTC) if spec.HasField("expire_time") else None,
                restriction_filter=spec.restriction.filter,
                restriction_collection=spec.restriction.collection,
            ),
        )
        return auth_pb2.CreateApiKeyResponse(api_key=api_key_to_proto(key), secret=secret)

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: ServicerContext
    ) -> auth_pb2.ListApiKeysResponse:
        principal = current_principal.get()
        if request.parent == "users/-":
            if not principal.is_admin:
                raise InvalidArgument("only admins can list every user's keys (users/-)", reason="ADMIN_REQUIRED")
            owner = None
        else:
            owner = self._accounts.user_id(principal, request.parent)
        page = await self._api_keys.list(
            owner, page_size=request.page_size, page_token=request.page_token, show_inactive=request.show_inactive
        )
        return auth_pb2.ListApiKeysResponse(
            api_keys=[api_key_to_proto(k) for k in page.items], next_page_token=page.next_page_token
        )

    async def RevokeApiKey(self, request: auth_pb2.RevokeApiKeyRequest, context: ServicerContext) -> auth_pb2.ApiKey:
        principal = current_principal.get()
        parent, key_id = parse_api_key_name(request.name)
        owner = self._accounts.user_id(principal, parent)
        return api_key_to_proto(await self._api_keys.revoke(owner, key_id))

    # ------------------------------------------------------------------ internal

    async def Authenticate(
        self, request: auth_pb2.AuthenticateRequest, context: ServicerContext
    ) -> auth_pb2.AuthenticateResponse:
        which = request.WhichOneof("credential")
        if which is None:
            raise InvalidArgument(
                "a credential (access_token or api_key_secret) is required", reason="CREDENTIAL_REQUIRED"
            )
        kind = CredentialKind.API_KEY if which == "api_key_secret" else CredentialKind.ACCESS_TOKEN
        credential = Credential(kind, getattr(request, which))
        principal = await self._resolver.resolve(credential, client_address=request.client_address)
        return auth_pb2.AuthenticateResponse(principal=principal_to_proto(principal))
