"""docs/api-access.md: every public route with who may call it, generated from the contracts'
access rules, so the document cannot drift from what the gateway and the services enforce."""

from __future__ import annotations

from pathlib import Path

from imgtag.api.v1 import access_pb2
from imgtag_dev.gateway import public_routes
from imgtag_dev.paths import DESCRIPTOR_SET, REPO_ROOT

ACCESS_DOC = REPO_ROOT / "docs" / "api-access.md"
_AUDIENCE = {
    access_pb2.AccessRule.PUBLIC: "anyone",
    access_pb2.AccessRule.USER: "signed-in user",
    access_pb2.AccessRule.ADMIN: "admin",
}


def render(descriptor: Path = DESCRIPTOR_SET) -> str:
    rows = []
    for route in public_routes(descriptor):
        for method, template in route.rest:
            _, service, rpc = route.path.split("/")
            scopes = ", ".join(
                f"`{s.lower().replace('_', '.')}`" for s in sorted(access_pb2.Scope.Name(v) for v in route.scopes)
            )
            who = _AUDIENCE[route.audience]
            rows.append(f"| `{method} {template}` | {service.split('.')[1]}.{rpc} | {who} | {scopes or '-'} |")
    return (
        "# Who may call what\n\n"
        "Generated from the `(imgtag.api.v1.access)` rule on every RPC by `imgtag access-doc`; a test fails\n"
        "when this file and the contracts disagree. The gateway checks access tokens on every route that is\n"
        "not for anyone (API-key requests pass to the service, which checks the key); every service checks\n"
        "the rule again on every call, including direct gRPC calls. Internal RPCs (no REST route) need a\n"
        "service credential. Beyond these rules a user sees their own assets plus those shared with the\n"
        "instance, and changes only their own; API keys reach only their owner's own assets.\n\n"
        "| route | RPC | who | API key scopes accepted |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def write() -> Path:
    ACCESS_DOC.write_text(render())
    return ACCESS_DOC
