"""pytest fixtures shared by every test tree (loaded from the root conftest.py): one real stack
(PostgreSQL+pgvector, SeaweedFS S3, the four services, Envoy) on free ports per test session,
and real users on it: an admin made at first start, and users who register through the gateway
and are approved by that admin, exactly as people are."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from imgtag_common.service_tokens import SERVICE_TOKEN_HEADER, ServiceTokens
from imgtag_dev import gateway
from imgtag_dev.components import EnvoyGateway, S3Credentials, SeaweedPorts, SeaweedS3, grpc_serving
from imgtag_dev.processes import free_port, spawn, tail, wait_until
from imgtag_dev.stack import Stack, StackSettings, running
from imgtag_dev.vision_providers import VisionProviderStandIn

SKIMAGE_PHOTOS = Path(__import__("skimage").__file__).parent / "data"
ADMIN_PASSWORD = "admin-" + secrets.token_urlsafe(12)
USER_PASSWORD = "correct horse battery staple"

# The shared test stack: cheap password hashing (tests log in hundreds of times), a JWKS refresh
# of seconds (so key rotation is observable) and a short window for counting failed attempts (a
# test that trips a rate limit waits it out rather than locking every later test out); all else
# as users run it.
FAILURE_WINDOW_S = 4
TEST_SERVICE_SETTINGS = {
    "auth": {
        "argon2_time_cost": "1",
        "argon2_memory_kib": "8192",
        "argon2_parallelism": "1",
        "jwks_refresh_s": "2",
        "failure_window_s": str(FAILURE_WINDOW_S),
    },
    # The janitor and the sweeper run every second, and settle uploads interrupted 2 s ago;
    # a job whose worker was killed is picked again after 4 s without heartbeats; a caption whose
    # provider stayed unreachable is tried once more after 1 s; URL imports may fetch from this
    # machine's loopback, where the tests serve their images (all else private stays refused).
    "catalog": {
        "import_url_allowed_networks": '["127.0.0.0/8"]',
        "maintenance_interval_s": "1",
        "stale_upload_s": "2",
        "job_heartbeat_timeout_s": "4",
        "describe_max_attempts": "2",
        "describe_retry_initial_s": "1",
    },
}


def expect_error(reply: httpx.Response, status: int, code: int, reason: str | None = None) -> dict:
    """A JSON google.rpc.Status error with this HTTP status, gRPC code and ErrorInfo reason."""
    assert reply.status_code == status, f"{reply.status_code} {reply.text}"
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert body["code"] == code and body["message"], body
    if reason is not None:
        reasons = [d.get("reason") for d in body.get("details", []) if d["@type"].endswith("ErrorInfo")]
        assert reasons == [reason], body
    return body


def wait_until_processed(client: httpx.Client, name: str, headers: dict[str, str], timeout_s: float = 60) -> dict:
    """The asset once its processing finished (COMPLETED or FAILED)."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = client.get(f"/v1/{name}", headers=headers)
        assert reply.status_code in (200, 503), reply.text  # 503: a restarting service
        asset = reply.json()
        if asset.get("processingState") in ("PROCESSING_COMPLETED", "PROCESSING_FAILED"):
            return asset
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {asset.get('processingState')} after {timeout_s}s: {reply.text}")
        time.sleep(0.2)


def upload(
    client: httpx.Client, account: Account, data: bytes, filename: str = "photo.png", **params
) -> httpx.Response:
    """POST the bytes as `account` (REST, raw body); returns the reply (not raised)."""
    return client.post(
        "/v1/assets:upload",
        params={"filename": filename, **params},
        content=data,
        headers={"content-type": "application/octet-stream", **account.headers},
    )


def unique_png(width: int = 16, height: int = 12) -> bytes:
    """A small PNG whose bytes no other test produces (uploads of equal bytes are duplicates)."""
    pixels = os.urandom(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "PNG")
    return out.getvalue()


def new_data_dir() -> Path:
    """A temporary data dir the unprivileged PostgreSQL user can traverse (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="imgtag-test-"))
    path.chmod(0o755)
    return path


def stack_settings_for_tests(data_dir: Path) -> StackSettings:
    settings = StackSettings.on_free_ports(data_dir)
    settings.admin_password = SecretStr(ADMIN_PASSWORD)
    settings.service_settings = {**TEST_SERVICE_SETTINGS, **settings.service_settings}
    return settings


def print_log_tails(data_dir: Path, lines: int) -> None:
    """The last lines of every log of the stack in `data_dir`: what a failed run leaves to read."""
    for log in sorted((data_dir / "logs").glob("*.log")):
        print(f"==== {log.name}\n{tail(log, lines)}")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    data_dir = new_data_dir()
    try:
        with running(stack_settings_for_tests(data_dir)) as started:
            yield started
    except Exception:
        print_log_tails(data_dir, 40)
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def bench_stack(*, keep: bool, catalog_settings: dict[str, str] | None = None) -> Iterator[Stack]:
    """The stack as users run it, for a benchmark: free ports, a fresh data directory, the known
    admin password, and `catalog_settings` if given. When the run fails the logs' tails are
    printed; the directory is removed afterwards unless `keep`."""
    data_dir = new_data_dir()
    settings = StackSettings.on_free_ports(data_dir)
    settings.admin_password = SecretStr(ADMIN_PASSWORD)
    if catalog_settings:
        settings.service_settings = {**settings.service_settings, "catalog": catalog_settings}
    try:
        with running(settings) as started:
            yield started
    except Exception:
        print_log_tails(data_dir, 20)
        raise
    finally:
        if keep:
            print(f"stack data and logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def extra_s3() -> Iterator[Callable[[str], SeaweedS3]]:
    """Starts more SeaweedFS S3 servers (replication tests), each with its own directory, free
    ports and random credentials, stopped at the end of the session. A test may stop one
    (`.process.stop()`) and start it again on the same data (`.start(log)`)."""
    root = new_data_dir()
    started: list[SeaweedS3] = []

    def start(name: str) -> SeaweedS3:
        home = root / name
        server = SeaweedS3(home / "s3", SeaweedPorts.free(), S3Credentials.load_or_create(home / "credentials.json"))
        server.start(home / "seaweedfs.log")
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            if server.process is not None:
                server.process.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.gateway_url


# ---------------------------------------------------------------------------- people


@dataclass(frozen=True)
class Account:
    """A user of the test stack with a fresh sign-in."""

    name: str  # "users/{id}"
    username: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"}

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.access_token}"),)


def login(gateway_url: str, username: str, password: str) -> Account:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        reply = client.post("/v1/auth:login", json={"login": username, "password": password})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return Account(
        name=body["user"]["name"],
        username=username,
        password=password,
        access_token=body["tokens"]["accessToken"],
        refresh_token=body["tokens"]["refreshToken"],
    )


def register_and_approve(gateway_url: str, admin: Account, username: str, password: str = USER_PASSWORD) -> Account:
    """A new user, registered through the gateway and approved by the admin, signed in."""
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        registered = client.post(
            "/v1/users:register",
            json={"username": username, "email": f"{username}@example.com", "password": password},
        )
        assert registered.status_code == 200, registered.text
        name = registered.json()["name"]
        approved = client.post(f"/v1/{name}:approve", json={}, headers=admin.headers)
        assert approved.status_code == 200, approved.text
    return login(gateway_url, username, password)


@pytest.fixture
def admin(gateway_url: str) -> Account:
    """The first admin, made at stack start, freshly signed in."""
    return login(gateway_url, "admin", ADMIN_PASSWORD)


@pytest.fixture
def new_user(gateway_url: str, admin: Account) -> Callable[[], Account]:
    """Makes fresh, approved, signed-in users (each test that needs isolation gets its own)."""

    def make() -> Account:
        return register_and_approve(gateway_url, admin, "u" + secrets.token_hex(6))

    return make


@pytest.fixture(scope="session")
def _session_user_name(gateway_url: str, stack: Stack) -> str:
    admin = login(gateway_url, "admin", ADMIN_PASSWORD)
    return register_and_approve(gateway_url, admin, "tester").username


@pytest.fixture
def user(gateway_url: str, _session_user_name: str) -> Account:
    """One ordinary user shared by the session, freshly signed in for each test."""
    return login(gateway_url, _session_user_name, USER_PASSWORD)


@pytest.fixture
def http(gateway_url: str, user: Account) -> Iterator[httpx.Client]:
    """A REST client signed in as `user`."""
    with httpx.Client(base_url=gateway_url, timeout=30, headers=user.headers) as client:
        yield client


@pytest.fixture
def anonymous(gateway_url: str) -> Iterator[httpx.Client]:
    """A REST client without credentials."""
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


# ---------------------------------------------------------------------------- services directly


@pytest.fixture(scope="session")
def service_tokens(stack: Stack) -> ServiceTokens:
    """Credentials of a (test) ImgTag service, for calling internal RPCs directly."""
    return ServiceTokens("tests", stack.service_secret)


class _AddMetadata:
    # grpc.aio files each interceptor under one call type only, so there is one class per type.
    def __init__(self, metadata: Callable[[], tuple[tuple[str, str], ...]]) -> None:
        self._metadata = metadata

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), *self._metadata()))


class _UnaryUnary(_AddMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[override]
        return await continuation(self._details(details), request)


class _UnaryStream(_AddMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[override]
        return await continuation(self._details(details), request)


class _StreamUnary(_AddMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[override]
        return await continuation(self._details(details), request_iterator)


class _StreamStream(_AddMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[override]
        return await continuation(self._details(details), request_iterator)


def channel_as(target: str, metadata: Callable[[], tuple[tuple[str, str], ...]] | None = None) -> grpc.aio.Channel:
    """A channel whose every call presents `metadata()` (a user's token, a service credential),
    or nothing at all."""
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    interceptors = [kind(metadata) for kind in kinds] if metadata else []
    return grpc.aio.insecure_channel(target, interceptors=interceptors)


def as_user(account: Account) -> Callable[[], tuple[tuple[str, str], ...]]:
    return account.grpc_metadata


def as_service(tokens: ServiceTokens) -> Callable[[], tuple[tuple[str, str], ...]]:
    from imgtag_common.auth import service_principal

    return lambda: ((SERVICE_TOKEN_HEADER, tokens.mint(service_principal(tokens.service))),)


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photograph (scikit-image's cat, 451x300 PNG)."""
    return SKIMAGE_PHOTOS / "chelsea.png"


def access_log_entry(log: Path, request_id: str, timeout_s: float = 10) -> dict:
    """The gateway's access log line for one request (Envoy writes the file about once a second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        for entry in map(json.loads, lines):
            if entry.get("request_id") == request_id:
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no access log line for request id {request_id!r} in {log}")
        time.sleep(0.2)


@dataclass(frozen=True)
class StandaloneGateway:
    url: str
    access_log: Path


@contextlib.contextmanager
def standalone_gateway(upstreams: dict[str, int], **render_options) -> Iterator[StandaloneGateway]:
    """A second Envoy rendered from the same template, for tests that must not disturb the shared
    stack: each cluster named in `upstreams` goes to that local port, every other to a closed one."""
    closed_port = free_port()  # bound by nothing: connecting there is refused
    clusters = sorted(set(gateway.PUBLIC_SERVICES.values()))
    work = Path(tempfile.mkdtemp(prefix="imgtag-gateway-"))
    port, admin_port = free_port(), free_port()
    config = work / "envoy.yaml"
    config.write_text(
        gateway.render(
            listen_port=port,
            admin_port=admin_port,
            upstreams=[gateway.Upstream(c, "127.0.0.1", upstreams.get(c, closed_port)) for c in clusters],
            access_log=str(work / "access.log"),
            **render_options,
        )
    )
    envoy = EnvoyGateway(config, port, admin_port)
    try:
        envoy.start(work / "envoy.log")
        yield StandaloneGateway(url=f"http://127.0.0.1:{port}", access_log=work / "access.log")
    finally:
        if envoy.process is not None:
            envoy.process.stop()
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class RecordingService:
    """A running imgtag_dev.recording_service: what each call carried once Envoy passed it on."""

    port: int
    record: Path

    def calls_with(self, request_id: str) -> list[dict[str, str]]:
        """The metadata of every call that carried this x-request-id."""
        lines = self.record.read_text().splitlines() if self.record.exists() else []
        calls = [json.loads(line)["metadata"] for line in lines]
        return [metadata for metadata in calls if metadata.get("x-request-id") == request_id]


@contextlib.contextmanager
def recording_service() -> Iterator[RecordingService]:
    """A stand-in gRPC service in its own process that records every call (see its module)."""
    work = Path(tempfile.mkdtemp(prefix="imgtag-recording-"))
    port = free_port()
    record = work / "calls.jsonl"
    process = spawn(
        "recording-service",
        [sys.executable, "-m", "imgtag_dev.recording_service", str(port), str(record)],
        log_path=work / "service.log",
    )
    try:
        wait_until(lambda: grpc_serving(port), timeout_s=30, what="recording service", process=process)
        yield RecordingService(port=port, record=record)
    finally:
        process.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def vision_stand_in() -> Iterator[VisionProviderStandIn]:
    """Stand-in vision-language providers (OpenAI-compatible and Ollama wire formats, with their
    error shapes) on a free port of this machine, for the whole session. Tests that use it
    should assert `problems` empty: a malformed request is recorded there."""
    server = VisionProviderStandIn().start()
    try:
        yield server
    finally:
        server.stop()
