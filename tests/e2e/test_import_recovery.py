"""A kill -9 of the catalog in the middle of a ZIP import, on a stack of its own: after a restart
the job resumes where it stopped and completes, every entry becomes exactly one asset (none
doubled, none lost) and the report counts each entry once."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time

import httpx
import pytest

from imgtag_dev.archive_fixtures import build_zip
from imgtag_dev.stack import running
from imgtag_dev.testing import (
    ADMIN_PASSWORD,
    login,
    new_data_dir,
    register_and_approve,
    stack_settings_for_tests,
    unique_png,
)

pytestmark = pytest.mark.e2e

ENTRIES = 60


def test_a_kill_9_mid_import_resumes_after_restart_without_duplicates_or_losses() -> None:
    data_dir = new_data_dir()
    settings = stack_settings_for_tests(data_dir)
    # A dead worker's job is picked up again after 3 s without heartbeats (30 s by default).
    settings.service_settings = {**settings.service_settings, "catalog": {"job_heartbeat_timeout_s": "3"}}
    images = [unique_png(256, 192) for _ in range(ENTRIES)]
    archive = build_zip([(f"photos/p{i:02}.png", data) for i, data in enumerate(images)])
    try:
        with running(settings) as stack, httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
            admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)
            owner = register_and_approve(stack.gateway_url, admin, "importer")
            reply = client.post(
                "/v1/importJobs:zip",
                params={"filename": "photos.zip"},
                content=archive,
                headers={"content-type": "application/zip", **owner.headers},
            )
            assert reply.status_code == 200, reply.text
            name = reply.json()["name"]

            def progress() -> int:
                return int(client.get(f"/v1/{name}", headers=owner.headers).json().get("processedCount", "0"))

            deadline = time.monotonic() + 30
            while progress() < 5:
                assert time.monotonic() < deadline, "the import did not start"
                time.sleep(0.02)
            catalog = stack.services["catalog"]
            assert catalog.process is not None
            os.killpg(catalog.process.pid, signal.SIGKILL)
            catalog.process.popen.wait()
            at_kill = int(
                stack.postgres.query(
                    f"SELECT processed_count FROM import_jobs WHERE id = '{name.removeprefix('importJobs/')}'",
                    "imgtag_catalog",
                )
            )
            assert 5 <= at_kill < ENTRIES, "the kill came too late to interrupt the import"

            catalog.start(stack.logs_dir / "catalog.log")
            deadline = time.monotonic() + 90
            while (job := client.get(f"/v1/{name}", headers=owner.headers).json())["state"] != "SUCCEEDED":
                assert job["state"] in ("PENDING", "RUNNING") and time.monotonic() < deadline, job
                time.sleep(0.3)

            counts = [int(job.get(f, "0")) for f in ("processedCount", "importedCount", "skippedCount", "failedCount")]
            assert counts == [ENTRIES, ENTRIES, 0, 0], job
            assert [i["sourceItem"] for i in job["items"]] == [f"photos/p{i:02}.png" for i in range(ENTRIES)]
            assert {i["outcome"] for i in job["items"]} == {"CREATED"}
            assert len({i["asset"] for i in job["items"]}) == ENTRIES
            rows = stack.postgres.query(
                f"SELECT state, sha256 FROM assets WHERE owner = '{owner.name}' ORDER BY sha256", "imgtag_catalog"
            ).splitlines()
            assert rows == sorted(f"active|{hashlib.sha256(d).hexdigest()}" for d in images)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
