"""schemathesis against the running stack: every operation of the OpenAPI document that the
gateway serves (/openapi.json, generated from the protos) is called with generated requests,
valid and invalid, by a signed-in user of its own. No answer is a 5xx, and every answer matches
the document: its status is documented, its content type is, and its body fits the schema."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from imgtag_dev.paths import venv_bin
from imgtag_dev.testing import ADMIN_PASSWORD, USER_PASSWORD, login, register_and_approve

pytestmark = pytest.mark.e2e

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
NO_ID = "00000000-0000-4000-8000-000000000000"
# Routes of the contract whose RPCs are not implemented yet answer 501 UNIMPLEMENTED to everyone,
# which the fuzzing would count as server errors. Checked below, so the list shrinks when an
# implementation lands. (ImportAssets, the one left, is for admins: a user is refused first.)
NOT_IMPLEMENTED_HERE: dict[str, tuple[str, str]] = {}


@pytest.mark.timeout(1800)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(gateway_url: str, tmp_path: Path) -> None:
    # A user of its own: what the requests change stays in that user's library (registrations
    # and tags the generator makes are harmless to other tests).
    admin = login(gateway_url, "admin", ADMIN_PASSWORD)
    fuzzer = register_and_approve(gateway_url, admin, "fz" + secrets.token_hex(5))
    for operation, (method, path) in NOT_IMPLEMENTED_HERE.items():
        reply = httpx.request(method, gateway_url + path, headers=fuzzer.headers, content=b"{}", timeout=30)
        assert reply.status_code == 501, f"{operation} answers {reply.status_code} now: fuzz it ({reply.text})"
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            venv_bin("schemathesis"),
            "run",
            f"{gateway_url}/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            os.environ.get("IMGTAG_FUZZ_EXAMPLES", "15"),
            "--seed",
            "20261125",
            "--generation-deterministic",
            "--workers",
            "2",
            "--request-timeout",
            "60",
            "--suppress-health-check",
            "all",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            *(arg for operation in NOT_IMPLEMENTED_HERE for arg in ("--exclude-operation-id", operation)),
        ],
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "imgtag_dev.fuzz_auth",
            "IMGTAG_FUZZ_URL": gateway_url,
            "IMGTAG_FUZZ_USERNAME": fuzzer.username,
            "IMGTAG_FUZZ_PASSWORD": USER_PASSWORD,
        },
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    sys.stdout.write(run.stdout[-6000:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    if report.exists():
        summary = json.loads(report.read_text())
        print(json.dumps(summary, indent=1)[:2000])
