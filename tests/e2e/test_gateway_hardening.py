"""The gateway as an edge: what a client sends cannot steer Envoy or reach the services (x-envoy-*
headers, X-Forwarded-For, arbitrary request ids), Envoy's own errors are JSON without internals,
every answer carries the security headers, CORS is same-origin unless configured, and the access
log keeps no query strings or credentials.

What a service receives is observed on a second real Envoy, rendered from the same template, in
front of a recording stand-in for the auth service; everything else goes through the shared stack."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from imgtag.auth.v1 import auth_pb2, auth_pb2_grpc
from imgtag_dev.stack import Stack, StackSettings
from imgtag_dev.testing import (
    RecordingService,
    StandaloneGateway,
    access_log_entry,
    recording_service,
    standalone_gateway,
)

pytestmark = pytest.mark.e2e

LOGIN = "/v1/auth:login"
LOGIN_BODY = {"login": "someone", "password": "not-checked-by-the-stand-in"}
DEV_ORIGIN = "http://localhost:5173"
FRESH_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# Headers a client could forge to steer Envoy (timeouts, retries, tracing, trust) or to fool the
# services and the access log (original path, internal flag, client address).
FORGED_ENVOY_HEADERS = {
    "x-envoy-original-path": "/forged/path",
    "x-envoy-upstream-rq-timeout-ms": "1",
    "x-envoy-upstream-rq-per-try-timeout-ms": "1",
    "x-envoy-retry-on": "5xx,reset,connect-failure",
    "x-envoy-retry-grpc-on": "unavailable",
    "x-envoy-max-retries": "3",
    "x-envoy-force-trace": "true",
    "x-envoy-internal": "true",
    "x-envoy-external-address": "203.0.113.66",
    "x-envoy-ip-tags": "trusted",
    "x-envoy-decorator-operation": "forged",
    "x-envoy-imgtag-invented": "forged",
}


@dataclass(frozen=True)
class Edges:
    auth: RecordingService  # stands in for the auth service behind both gateways
    default: StandaloneGateway  # rendered with the defaults, like `make run`
    behind_proxy: StandaloneGateway  # one trusted hop, one CORS origin, a 1 s deadline


@pytest.fixture(scope="module")
def edges() -> Iterator[Edges]:
    with (
        recording_service() as auth,
        standalone_gateway({"auth": auth.port}) as default,
        standalone_gateway(
            {"auth": auth.port}, trusted_hops=1, cors_origins=[DEV_ORIGIN], unary_timeout="1s"
        ) as behind_proxy,
    ):
        yield Edges(auth=auth, default=default, behind_proxy=behind_proxy)


def _login(edge: StandaloneGateway, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(edge.url + LOGIN, json=LOGIN_BODY, headers=headers, timeout=30)


def _assert_security_headers(reply: httpx.Response) -> None:
    policies = reply.headers.get_list("content-security-policy")
    assert len(policies) == 1, reply.headers
    directives = {d.split()[0]: d.split()[1:] for d in policies[0].split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "blob:", "data:"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert reply.headers.get_list("x-content-type-options") == ["nosniff"]
    assert reply.headers.get_list("x-frame-options") == ["DENY"]
    assert reply.headers.get_list("referrer-policy") == ["no-referrer"]


# --------------------------------------------------------------------------- what reaches a service


def test_forged_x_envoy_headers_never_reach_a_service(edges: Edges) -> None:
    request_id = f"forged-{uuid.uuid4().hex}"
    assert _login(edges.default, {**FORGED_ENVOY_HEADERS, "x-request-id": request_id}).status_code == 200
    with grpc.insecure_channel(edges.default.url.removeprefix("http://")) as channel:
        grpc_id = f"forged-grpc-{uuid.uuid4().hex}"
        auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(login="someone", password="x"),
            metadata=[*FORGED_ENVOY_HEADERS.items(), ("x-request-id", grpc_id)],
            timeout=10,
        )
    [rest] = edges.auth.calls_with(request_id)
    [direct] = edges.auth.calls_with(grpc_id)
    for call in (rest, direct):
        assert not {name for name, value in FORGED_ENVOY_HEADERS.items() if call.get(name) == value}, call
        # A loopback client is no "internal" caller: Envoy sanitizes it like any other.
        assert "x-envoy-internal" not in call
    # What is left is Envoy's own: the client address, and the REST path the transcoder rewrote.
    assert {k for k in rest if k.startswith("x-envoy-")} <= {
        "x-envoy-external-address",
        "x-envoy-original-path",
        "x-envoy-original-method",
    }
    assert rest["x-envoy-original-path"] == LOGIN
    assert {k for k in direct if k.startswith("x-envoy-")} == {"x-envoy-external-address"}
    assert "x-imgtag-offered-request-id" not in rest  # the edge's scratch header stays at the edge


def test_forged_timeout_and_retry_headers_are_not_honoured(edges: Edges) -> None:
    slow = _login(edges.default, {**FORGED_ENVOY_HEADERS, "x-test-answer-after-s": "0.5"})
    assert slow.status_code == 200, slow.text  # a 1 ms deadline would have been a 504
    request_id = f"retry-{uuid.uuid4().hex}"
    failed = _login(edges.default, {**FORGED_ENVOY_HEADERS, "x-request-id": request_id, "x-test-fail": "1"})
    assert failed.status_code == 503
    assert len(edges.auth.calls_with(request_id)) == 1  # Envoy retried nothing


def test_forwarded_for_from_a_client_is_not_believed(edges: Edges) -> None:
    request_id = f"xff-{uuid.uuid4().hex}"
    _login(edges.default, {"x-forwarded-for": "203.0.113.9", "x-request-id": request_id}).raise_for_status()
    [call] = edges.auth.calls_with(request_id)
    assert "203.0.113.9" not in call.get("x-forwarded-for", "")
    assert call["x-envoy-external-address"] == "127.0.0.1"
    assert access_log_entry(edges.default.access_log, request_id)["client"] == "127.0.0.1"


def test_behind_a_trusted_proxy_the_address_it_forwards_is_the_client(edges: Edges) -> None:
    request_id = f"hop-{uuid.uuid4().hex}"
    # The load balancer (our TCP peer) appended the client it saw; whatever came before is unverified.
    headers = {"x-forwarded-for": "198.51.100.7, 203.0.113.9", "x-request-id": request_id}
    _login(edges.behind_proxy, headers).raise_for_status()
    [call] = edges.auth.calls_with(request_id)
    assert call["x-envoy-external-address"] == "203.0.113.9"
    assert call["x-forwarded-for"].startswith("198.51.100.7, 203.0.113.9")
    assert access_log_entry(edges.behind_proxy.access_log, request_id)["client"] == "203.0.113.9"


def test_trusted_hops_is_a_stack_setting_passed_to_the_gateway(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("IMGTAG_GATEWAY_TRUSTED_HOPS", "2")
    settings = StackSettings(data_dir=tmp_path)
    assert settings.gateway_trusted_hops == 2
    assert "xff_num_trusted_hops: 2\n" in Stack(settings).gateway_config()
    assert (
        "xff_num_trusted_hops: 0\n" in Stack(StackSettings(data_dir=tmp_path, gateway_trusted_hops=0)).gateway_config()
    )


# --------------------------------------------------------------------------- request ids


@pytest.mark.parametrize("prefix", ["client.Trace_01-", "x" * 52], ids=["every-allowed-kind", "64-chars"])
def test_a_well_formed_client_request_id_is_kept_and_logged(stack: Stack, http: httpx.Client, prefix: str) -> None:
    request_id = prefix + uuid.uuid4().hex[:12]
    reply = http.get("/v1/assets", params={"page_size": 1}, headers={"x-request-id": request_id})
    assert reply.status_code == 200
    assert reply.headers["x-request-id"] == request_id
    entry = access_log_entry(stack.logs_dir / "gateway-access.log", request_id)
    assert entry["path"] == "/v1/assets" and entry["status"] == 200


@pytest.mark.parametrize(
    "offered",
    ["x" * 65, "x" * 500, "has space", 'quote"d', "semi;colon", "<script>", "caf\u00e9".encode(), ""],
    ids=["65-chars", "500-chars", "space", "quote", "semicolon", "markup", "non-ascii", "empty"],
)
def test_a_long_or_malformed_client_request_id_is_replaced(
    stack: Stack, http: httpx.Client, offered: str | bytes
) -> None:
    reply = http.get("/v1/assets", params={"page_size": 1}, headers={"x-request-id": offered})
    assert reply.status_code == 200
    fresh = reply.headers["x-request-id"]
    assert fresh != (offered.decode() if isinstance(offered, bytes) else offered)
    assert FRESH_REQUEST_ID.fullmatch(fresh)
    assert access_log_entry(stack.logs_dir / "gateway-access.log", fresh)["path"] == "/v1/assets"


# --------------------------------------------------------------------------- Envoy's own replies


def test_a_missing_service_is_a_json_503_without_internals() -> None:
    with standalone_gateway({}) as edge:  # every cluster points at a closed port
        reply = httpx.post(edge.url + LOGIN, json=LOGIN_BODY, timeout=30)
        with grpc.insecure_channel(edge.url.removeprefix("http://")) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                auth_pb2_grpc.AuthServiceStub(channel).Login(auth_pb2.LoginRequest(), timeout=10)
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"code": 14, "message": "the service is unavailable, try again shortly"}
    _assert_security_headers(reply)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "the service is unavailable" in caught.value.details()
    for text in (reply.text, caught.value.details()):
        assert not re.search(r"upstream|connect|reset|refused|failure|\d+\.\d+\.\d+\.\d+", text), text


def test_a_service_answering_too_late_is_a_json_504(edges: Edges) -> None:
    reply = _login(edges.behind_proxy, {"x-test-answer-after-s": "2.5"})  # its routes wait 1 s
    assert reply.status_code == 504
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"code": 4, "message": "the service took too long to answer"}
    _assert_security_headers(reply)


# --------------------------------------------------------------------------- security headers, CORS


def test_every_kind_of_answer_carries_the_security_headers(http: httpx.Client) -> None:
    index = http.get("/")
    script = next(part.split('"')[0] for part in index.text.split('src="')[1:] if part.startswith("/assets/"))
    answers = {
        "API JSON": http.get("/v1/assets", params={"page_size": 1}),
        "service error": http.get(f"/v1/assets/{uuid.uuid4()}"),
        "no such API path": http.get("/v1/nothing/here"),
        "transcoder refusal": http.get("/v1/assets", params={"pageSise": 3}),
        "token refusal": http.get("/v1/assets", headers={"authorization": "Bearer not-a-token"}),
        "SPA index": index,
        "SPA bundle": http.get(script),
        "SPA client-side route": http.get("/collections/some/route"),
        "CORS preflight": http.options(
            "/v1/assets", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        ),
        # Refused by the connection manager before any HTTP filter runs.
        "oversized headers": http.get("/", headers={"x-padding": "a" * 70_000}),
    }
    assert answers["token refusal"].status_code == 401
    assert answers["oversized headers"].status_code == 431
    assert answers["oversized headers"].headers["content-type"] == "application/json"
    for kind, reply in answers.items():
        try:
            _assert_security_headers(reply)
        except AssertionError as failure:
            raise AssertionError(f"{kind}: {reply.status_code} {reply.headers}") from failure


def test_other_origins_get_no_cors_permission_by_default(stack: Stack, http: httpx.Client) -> None:
    for origin in (f"http://localhost:{stack.settings.gateway_port}", "https://evil.example"):
        preflight = http.options("/v1/assets", headers={"origin": origin, "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers
        # Envoy answers it: a preflight passed on to a gRPC service would come back as application/grpc.
        assert "grpc" not in preflight.headers.get("content-type", "")
        # The browser, not Envoy, withholds such answers; same-origin proxies (npm run dev) still work.
        simple = http.get("/v1/assets", params={"page_size": 1}, headers={"origin": origin})
        assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_cors_preflight_allows_the_configured_origin(edges: Edges) -> None:
    url = edges.behind_proxy.url + "/v1/assets"
    reply = httpx.options(url, headers={"origin": DEV_ORIGIN, "access-control-request-method": "POST"})
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == DEV_ORIGIN
    # The SPA hosted there renews its session with the refresh cookie.
    assert reply.headers["access-control-allow-credentials"] == "true"
    other = httpx.options(url, headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in other.headers


# --------------------------------------------------------------------------- access log


def test_access_log_keeps_no_query_strings_or_credentials(stack: Stack, http: httpx.Client) -> None:
    secret = uuid.uuid4().hex
    api_id, spa_id = f"log-api-{uuid.uuid4().hex}", f"log-spa-{uuid.uuid4().hex}"
    credentials = {"authorization": f"Bearer token-{secret}", "x-api-key": f"key-{secret}"}
    http.get("/v1/assets", params={"page_token": f"sig-{secret}"}, headers={"x-request-id": api_id, **credentials})
    http.get("/index.html", params={"signature": secret}, headers={"x-request-id": spa_id, **credentials})
    log = stack.logs_dir / "gateway-access.log"
    assert access_log_entry(log, api_id)["path"] == "/v1/assets"
    assert access_log_entry(log, spa_id)["path"] == "/index.html"
    assert secret not in log.read_text()


def test_headers_that_cannot_be_grpc_metadata_are_dropped_not_fatal(http: httpx.Client, edges: Edges) -> None:
    """HTTP allows header names such as "a|b" or "x^y%z"; gRPC metadata keys do not, and a service
    refused the whole call with a 500 (found by schemathesis). The edge drops such headers."""
    odd = {"a|b": "1", "kc^d7%5": "2", "x*y": "3", "good-one_2.x": "kept"}
    assert http.get("/v1/users/me", headers=odd).status_code == 200
    assert http.get("/v1/tags", headers=odd).status_code == 200
    request_id = f"odd-{uuid.uuid4().hex}"
    assert _login(edges.default, {**odd, "x-request-id": request_id}).status_code == 200
    [call] = edges.auth.calls_with(request_id)
    assert call.get("good-one_2.x") == "kept"
    assert not {"a|b", "kc^d7%5", "x*y"} & set(call)
