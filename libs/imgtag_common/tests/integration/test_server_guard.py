"""The guard interceptor on a real grpc.aio server: domain errors become statuses with ErrorInfo,
bugs become a bare INTERNAL, well-formed request ids are kept (others replaced), health goes
NOT_SERVING on shutdown, and every call is held to its method's access rule (users, admins, API key
scopes, service credentials)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from imgtag_common.access import AccessRule, Audience, Credential
from imgtag_common.auth import CredentialKind, Principal, Role, current_principal
from imgtag_common.channels import open_channel
from imgtag_common.errors import NotFound, Unauthenticated
from imgtag_common.logging import request_id_var
from imgtag_common.server import start_app
from imgtag_common.service_tokens import SERVICE_TOKEN_HEADER, ServiceTokens
from imgtag_common.settings import ServiceSettings

SERVICE = "imgtag.test.v1.ProbeService"
SECRET = "probe-secret-" + "x" * 32
TOKENS = ServiceTokens("probe", SECRET)
ALICE = Principal(
    user="users/00000000-0000-0000-0000-00000000a11c", role=Role.USER, credential=CredentialKind.ACCESS_TOKEN
)
ADMIN = Principal(
    user="users/00000000-0000-0000-0000-0000000000ad", role=Role.ADMIN, credential=CredentialKind.ACCESS_TOKEN
)
RULES = {
    "Whoami": AccessRule(Audience.USER, frozenset({"ASSETS_READ"})),
    "AdminOnly": AccessRule(Audience.ADMIN),
    "Internal": AccessRule(Audience.INTERNAL),
    "NoRule": AccessRule(Audience.AUDIENCE_UNSPECIFIED),
}


def rules(method: str) -> AccessRule:
    return RULES.get(method.rsplit("/", 1)[1], AccessRule(Audience.PUBLIC))


class Resolver:
    """Stands in for the auth service: two access tokens and two API keys."""

    async def resolve(self, credential: Credential, *, client_address: str) -> Principal:
        known = {
            "alice-token": ALICE,
            "admin-token": ADMIN,
            "itk_read": Principal(
                user=ALICE.user, credential=CredentialKind.API_KEY, scopes=frozenset({"ASSETS_READ"})
            ),
            "itk_admins_key": Principal(
                user=ADMIN.user, role=Role.ADMIN, credential=CredentialKind.API_KEY, scopes=frozenset({"ASSETS_READ"})
            ),
            "itk_random": Principal(user=ALICE.user, credential=CredentialKind.API_KEY, scopes=frozenset({"RANDOM"})),
        }
        if credential.secret not in known:
            raise Unauthenticated("unknown credential", reason="INVALID_ACCESS_TOKEN")
        return known[credential.secret]


async def _start():
    return await start_app(
        ServiceSettings(port=0, service_secret=SECRET),
        services=[(SERVICE, _register)],
        tokens=TOKENS,
        resolver=Resolver(),
        rules=rules,
    )


def _register(server: grpc.aio.Server) -> None:
    async def fail_domain(request: bytes, context) -> bytes:
        raise NotFound("thing/1 does not exist", reason="THING_NOT_FOUND")

    async def crash(request: bytes, context) -> bytes:
        raise ValueError("secret internals")

    async def echo_request_id(request: bytes, context) -> bytes:
        return request_id_var.get().encode()

    async def unimplemented(request: bytes, context) -> bytes:
        raise NotImplementedError

    async def stream_then_fail(request: bytes, context):
        yield b"first"
        raise NotFound("stream source vanished")

    async def whoami(request: bytes, context) -> bytes:
        principal = current_principal.get()
        return f"{principal.user}|{principal.service}".encode()

    handlers = {
        "FailDomain": grpc.unary_unary_rpc_method_handler(fail_domain),
        "Crash": grpc.unary_unary_rpc_method_handler(crash),
        "Echo": grpc.unary_unary_rpc_method_handler(echo_request_id),
        "Unimplemented": grpc.unary_unary_rpc_method_handler(unimplemented),
        "Stream": grpc.unary_stream_rpc_method_handler(stream_then_fail),
        **{name: grpc.unary_unary_rpc_method_handler(whoami) for name in ("Whoami", "AdminOnly", "Internal", "NoRule")},
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def app():
    started = await _start()
    yield started
    await started.stop(0)


async def test_domain_error_maps_to_code_and_error_info(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/FailDomain")(b"")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "THING_NOT_FOUND"


async def test_unexpected_exception_is_internal_without_leaking(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/Crash")(b"")
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")


async def test_not_implemented_is_unimplemented(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/Unimplemented")(b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_request_id_from_caller_is_used_and_propagated(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        echo = channel.unary_unary(f"/{SERVICE}/Echo")
        assert await echo(b"", metadata=(("x-request-id", "req-42"),)) == b"req-42"
        token = request_id_var.set("outer-7")  # an outbound call made while serving "outer-7"
        try:
            assert await echo(b"") == b"outer-7"
        finally:
            request_id_var.reset(token)
        assert len(await echo(b"")) == 32  # none given: the server makes one


async def test_request_id_from_caller_is_kept_only_if_short_and_well_formed(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        echo = channel.unary_unary(f"/{SERVICE}/Echo")
        for kept in ("a" * 64, "Trace.01_b-c"):
            assert await echo(b"", metadata=(("x-request-id", kept),)) == kept.encode()
        for refused in ("a" * 65, "a" * 500, "has space", 'quote"d', "semi;colon", "<script>", ""):
            fresh = await echo(b"", metadata=(("x-request-id", refused),))
            assert fresh != refused.encode() and len(fresh) == 32, refused


async def test_error_after_stream_started_still_reaches_the_client(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        call = channel.unary_stream(f"/{SERVICE}/Stream")(b"")
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for item in call:
                received.append(item)
    assert received == [b"first"]
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_health_serves_then_goes_not_serving_on_shutdown() -> None:
    app = await _start()
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await app.health.enter_graceful_shutdown()
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await app.stop(0)


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _code(call, **kwargs) -> grpc.StatusCode:
    try:
        await call(b"", **kwargs)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_users_need_a_credential_the_resolver_accepts(app) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        whoami = channel.unary_unary(f"/{SERVICE}/Whoami")
        assert await _code(whoami) is grpc.StatusCode.UNAUTHENTICATED
        assert await _code(whoami, metadata=_bearer("forged")) is grpc.StatusCode.UNAUTHENTICATED
        assert await _code(whoami, metadata=(("authorization", "Basic YTpi"),)) is grpc.StatusCode.UNAUTHENTICATED
        assert await whoami(b"", metadata=_bearer("alice-token")) == f"{ALICE.user}|".encode()
        # An API key with one of the method's scopes, in either header.
        assert await whoami(b"", metadata=(("x-api-key", "itk_read"),)) == f"{ALICE.user}|".encode()
        assert await _code(whoami, metadata=_bearer("itk_read")) is grpc.StatusCode.OK
        assert await _code(whoami, metadata=_bearer("itk_random")) is grpc.StatusCode.PERMISSION_DENIED
        # A public method needs nothing and ignores what it gets.
        assert await channel.unary_unary(f"/{SERVICE}/Echo")(b"", metadata=_bearer("forged"))


async def test_admin_methods_need_an_admin_access_token(app) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        admin_only = channel.unary_unary(f"/{SERVICE}/AdminOnly")
        assert await _code(admin_only, metadata=_bearer("alice-token")) is grpc.StatusCode.PERMISSION_DENIED
        assert await _code(admin_only, metadata=_bearer("itk_admins_key")) is grpc.StatusCode.PERMISSION_DENIED
        assert await _code(admin_only, metadata=_bearer("admin-token")) is grpc.StatusCode.OK


async def test_internal_methods_need_a_valid_service_credential(app) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        internal = channel.unary_unary(f"/{SERVICE}/Internal")
        assert await _code(internal, metadata=_bearer("admin-token")) is grpc.StatusCode.PERMISSION_DENIED
        forged = ServiceTokens("probe", "another-secret-" + "y" * 32).mint(ADMIN)
        assert await _code(internal, metadata=((SERVICE_TOKEN_HEADER, forged),)) is grpc.StatusCode.UNAUTHENTICATED
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        # The principal of the calling request travels inside the service credential.
        token = current_principal.set(ALICE)
        try:
            assert await channel.unary_unary(f"/{SERVICE}/Internal")(b"") == f"{ALICE.user}|probe".encode()
        finally:
            current_principal.reset(token)
        assert await channel.unary_unary(f"/{SERVICE}/Internal")(b"") == b"|probe"


async def test_methods_without_a_rule_are_refused(app) -> None:
    async with open_channel(f"127.0.0.1:{app.port}", tokens=TOKENS) as channel:
        assert await _code(channel.unary_unary(f"/{SERVICE}/NoRule")) is grpc.StatusCode.PERMISSION_DENIED


async def test_a_refused_credential_is_unauthenticated_for_streams_too(app) -> None:
    rules_before = dict(RULES)
    RULES["Stream"] = AccessRule(Audience.USER)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as streamed:
                async for _ in channel.unary_stream(f"/{SERVICE}/Stream")(b"", metadata=_bearer("nope")):
                    pass
            assert streamed.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        RULES.clear()
        RULES.update(rules_before)
