"""schemathesis against the running stack: every operation of the OpenAPI document that the
gateway serves (/openapi.json, generated from the protos) is called with generated requests by a
signed-in user of its own. No answer is a 5xx, and every answer matches the document: its status
is documented, its content type is, and its body fits the schema."""

from __future__ import annotations

import secrets

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from imgtag_dev.testing import ADMIN_PASSWORD, USER_PASSWORD, login, register_and_approve

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Who the generated requests come from: set by the `api` fixture, read by the auth provider.
_USER: dict[str, str] = {}


@schemathesis.auth()
class SignedInUser:
    """A fresh access token every few minutes (they live ten), from the fuzzing user's password."""

    def get(self, case, context) -> str:
        return login(_USER["gateway"], _USER["username"], USER_PASSWORD).access_token

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def api(gateway_url: str):
    """The document as the gateway serves it, and a user of its own (what the requests change
    stays in that user's library; registrations and tags the generator makes are harmless)."""
    admin = login(gateway_url, "admin", ADMIN_PASSWORD)
    fuzzer = register_and_approve(gateway_url, admin, "fz" + secrets.token_hex(5))
    _USER.update(gateway=gateway_url, username=fuzzer.username)
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(case) -> None:
    case.call_and_validate(checks=CHECKS, timeout=60)
