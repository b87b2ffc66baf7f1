"""Render the Envoy gateway config from gateway/envoy.yaml.j2.

Routes are derived from the descriptor set, so they always match the contracts: every method with
a `google.api.http` rule on a public service gets a route to its cluster (streaming methods with no
deadline); internal methods (no http rule) get none and are refused at the edge.

Access tokens are checked at the edge from the same contract: each method's
`(imgtag.api.v1.access)` rule becomes jwt_authn rules for its REST path and its gRPC path. PUBLIC
methods need nothing; methods that accept API keys let requests carrying one through to the
service (which checks the key with the auth service); everything else needs a valid access token.
The services check every call again, so the edge is a first line, not the only one."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from imgtag.api.v1 import access_pb2
from imgtag_common.logging import REQUEST_ID_CHARS, REQUEST_ID_MAX_CHARS
from imgtag_dev.paths import DESCRIPTOR_SET, GATEWAY_TEMPLATE, WEB_DIST

# Public services and the cluster (service process) that serves each.
PUBLIC_SERVICES = {
    "imgtag.auth.v1.AuthService": "auth",
    "imgtag.catalog.v1.CatalogService": "catalog",
    "imgtag.storage.v1.StorageService": "storage",
    "imgtag.inference.v1.InferenceService": "inference",
}


@dataclass(frozen=True)
class LocalReply:
    """How Envoy's own error replies with this status (op EQ) or from it up (op GE) look: the
    gRPC code matching the HTTP status, and a fixed message, or None to keep Envoy's text."""

    status: int
    grpc_code: int
    message: str | None = None
    op: str = "EQ"


UNAVAILABLE_MESSAGE = "the service is unavailable, try again shortly"

# Envoy's own errors, first match wins. Its 5xx texts name hosts, sockets and errno values, so
# they are replaced; its 4xx texts tell the client what was wrong with the request.
LOCAL_REPLIES = [
    LocalReply(400, 3),  # INVALID_ARGUMENT
    LocalReply(401, 16),  # UNAUTHENTICATED
    LocalReply(403, 7),  # PERMISSION_DENIED
    LocalReply(404, 5),  # NOT_FOUND
    LocalReply(405, 12),  # UNIMPLEMENTED
    LocalReply(408, 4),  # DEADLINE_EXCEEDED
    LocalReply(413, 8),  # RESOURCE_EXHAUSTED
    LocalReply(429, 8),  # RESOURCE_EXHAUSTED
    LocalReply(500, 13, "the gateway failed to handle the request"),  # INTERNAL
    LocalReply(502, 14, UNAVAILABLE_MESSAGE),  # UNAVAILABLE
    LocalReply(503, 14, UNAVAILABLE_MESSAGE),  # UNAVAILABLE (no upstream, overflow)
    LocalReply(504, 4, "the service took too long to answer"),  # DEADLINE_EXCEEDED
    LocalReply(500, 13, "the gateway failed to handle the request", op="GE"),  # any other 5xx
    LocalReply(400, 2, op="GE"),  # UNKNOWN: any other 4xx
]

# On every response. The SPA (Vite build, same origin) loads only its own scripts and styles,
# shows uploads through blob: URLs and its icon as a data: URL; Vue may set style attributes.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' blob: data:",
        "style-src 'self' 'unsafe-inline'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
]

UNARY_TIMEOUT = "60s"

# Where the edge keeps the client's x-request-id while Envoy makes a fresh one (never forwarded).
OFFERED_REQUEST_ID_HEADER = "x-imgtag-offered-request-id"


@dataclass(frozen=True)
class JwtRule:
    """A jwt_authn rule: requests matching it need an access token unless `required` is False."""

    path: str = ""  # exact path
    path_regex: str = ""
    method: str = ""  # HTTP method to match, for REST paths
    present_header: str = ""  # only requests carrying this header
    header_prefix: tuple[str, str] = ("", "")  # (header, value prefix)
    required: bool = True


@dataclass(frozen=True)
class ApiRoute:
    path: str
    cluster: str
    timeout: str
    audience: int = access_pb2.AccessRule.USER
    scopes: tuple[int, ...] = ()  # API key scopes that grant access
    rest: tuple[tuple[str, str], ...] = ()  # (HTTP method, path template) bindings

    @property
    def api_keys(self) -> bool:
        return bool(self.scopes)


@dataclass(frozen=True)
class StaticFile:
    path: str
    file: str
    content_type: str
    cache_control: str


@dataclass(frozen=True)
class Upstream:
    name: str
    host: str
    port: int


def public_routes(descriptor_set: Path = DESCRIPTOR_SET, unary_timeout: str = UNARY_TIMEOUT) -> list[ApiRoute]:
    """One exact-path route per public method of each public service."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    routes = []
    for file in fds.file:
        for service in file.service:
            full_name = f"{file.package}.{service.name}"
            cluster = PUBLIC_SERVICES.get(full_name)
            if cluster is None:
                continue
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                streaming = method.client_streaming or method.server_streaming
                access = method.options.Extensions[access_pb2.access]
                routes.append(
                    ApiRoute(
                        path=f"/{full_name}/{method.name}",
                        cluster=cluster,
                        timeout="0s" if streaming else unary_timeout,
                        audience=access.audience,
                        scopes=tuple(access.api_key_scopes),
                        rest=tuple(_bindings(method.options.Extensions[annotations_pb2.http])),
                    )
                )
    return routes


def _bindings(rule: http_pb2.HttpRule) -> list[tuple[str, str]]:
    found = []
    for each in (rule, *rule.additional_bindings):
        verb = each.WhichOneof("pattern")
        if verb and verb != "custom":
            found.append((verb.upper(), getattr(each, verb)))
    return found


def template_regex(template: str) -> str:
    """A google.api.http path template as an RE2 regex: {name=assets/*} -> assets/[^/]+."""

    def variable(match: re.Match[str]) -> str:
        _, _, pattern = match.group(1).partition("=")
        segments = (pattern or "*").split("/")
        return "/".join("[^/]+" if seg == "*" else ".+" if seg == "**" else re.escape(seg) for seg in segments)

    out, pos = [], 0
    for match in re.finditer(r"\{([^}]*)\}", template):
        out.append(re.escape(template[pos : match.start()]))
        out.append(variable(match))
        pos = match.end()
    out.append(re.escape(template[pos:]))
    return "^" + "".join(out) + "$"


def jwt_rules(routes: list[ApiRoute]) -> list[JwtRule]:
    """jwt_authn rules, most specific first (Envoy uses the first rule that matches)."""
    rules: list[JwtRule] = []
    for route in routes:
        required = route.audience in (access_pb2.AccessRule.USER, access_pb2.AccessRule.ADMIN)
        matchers = [JwtRule(path=route.path)] + [JwtRule(path_regex=template_regex(t), method=m) for m, t in route.rest]
        for match in matchers:
            if required and route.api_keys:
                rules.append(_with(match, present_header="x-api-key", required=False))
                rules.append(_with(match, header_prefix=("authorization", "Bearer itk_"), required=False))
            rules.append(_with(match, required=required))
    return rules


def _with(rule: JwtRule, **changes: object) -> JwtRule:
    return JwtRule(**{**rule.__dict__, **changes})


def static_files(dist: Path) -> list[StaticFile]:
    """The built SPA: hashed assets are immutable, everything else must be revalidated."""
    files = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        rel = "/" + path.relative_to(dist).as_posix()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript",):
            content_type += "; charset=utf-8"
        immutable = rel.startswith("/assets/")
        cache_control = "public, max-age=31536000, immutable" if immutable else "no-cache"
        # A page in a folder (the API reference, /api/index.html) is served at /api/ too.
        paths = [rel, rel.removesuffix("index.html")] if rel.endswith("/index.html") and rel != "/index.html" else [rel]
        for each in paths:
            files.append(
                StaticFile(path=each, file=str(path.resolve()), content_type=content_type, cache_control=cache_control)
            )
    return files


def render(
    *,
    listen_port: int,
    admin_port: int,
    upstreams: list[Upstream],
    access_log: str = "/dev/stdout",
    listen_host: str = "127.0.0.1",
    cors_origins: list[str] | None = None,
    jwt_issuer: str = "imgtag",
    jwt_audience: str = "imgtag",
    jwks_refresh_s: float = 300,
    descriptor: Path = DESCRIPTOR_SET,
    web_dist: Path = WEB_DIST,
    max_json_body_bytes: int = 16 * 1024 * 1024,
    trusted_hops: int = 0,
    unary_timeout: str = UNARY_TIMEOUT,
    descriptor_in_config: str = "",
    web_upstream: Upstream | None = None,
) -> str:
    """The complete Envoy config as YAML text. `trusted_hops` is the number of proxies (load
    balancers) in front of the gateway whose X-Forwarded-For entries are believed.

    Deployments (imgtag_dev.deploy) read the descriptor from where the image keeps it
    (`descriptor_in_config`) and pass every path that is not the API to the web bundle's server
    (`web_upstream`) instead of serving the SPA from files on the gateway."""
    statics = static_files(web_dist) if web_upstream is None and (web_dist / "index.html").exists() else []
    index = next((s.file for s in statics if s.path == "/index.html"), None)
    largest = max((Path(s.file).stat().st_size for s in statics), default=0)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    template = env.from_string(GATEWAY_TEMPLATE.read_text())
    routes = public_routes(descriptor, unary_timeout)
    return template.render(
        listen_host=listen_host,
        listen_port=listen_port,
        admin_port=admin_port,
        access_log=access_log,
        descriptor=descriptor_in_config or str(descriptor.resolve()),
        public_services=list(PUBLIC_SERVICES),
        api_routes=routes,
        jwt_rules=jwt_rules(routes),
        jwt_issuer=jwt_issuer,
        jwt_audience=jwt_audience,
        jwks_refresh_ms=int(jwks_refresh_s * 1000),
        # The gateway fetches the JWKS from itself (the auth service speaks only gRPC).
        jwks_host="127.0.0.1" if listen_host in ("0.0.0.0", "::", "127.0.0.1") else listen_host,
        clusters=upstreams,
        web=web_upstream,
        web_cluster=web_upstream.name if web_upstream else "",
        static_files=[s for s in statics if s.path != "/index.html"],
        spa_index=index,
        max_static_bytes=max(4096, largest + 1024),
        local_replies=LOCAL_REPLIES,
        security_headers=SECURITY_HEADERS,
        request_id_max_chars=REQUEST_ID_MAX_CHARS,
        request_id_chars=REQUEST_ID_CHARS,
        cors_origins=cors_origins or [],
        max_json_body_bytes=max_json_body_bytes,
        trusted_hops=trusted_hops,
        offered_request_id_header=OFFERED_REQUEST_ID_HEADER,
    )
