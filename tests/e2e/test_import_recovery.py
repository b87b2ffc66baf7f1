"""A kill -9 of the catalog in the middle of a ZIP import, on a stack of its own: after a restart
the job resumes where it stopped and completes, every entry becomes exactly one asset (none
doubled, none lost) and the report counts each entry once. An archive that disappears meanwhile
fails its job with the reason, keeping the report of what was imported."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc
from imgtag_common.service_tokens import ServiceTokens
from imgtag_dev.archive_fixtures import build_zip
from imgtag_dev.stack import Stack, running
from imgtag_dev.testing import (
    ADMIN_PASSWORD,
    Account,
    as_service,
    channel_as,
    login,
    new_data_dir,
    register_and_approve,
    stack_settings_for_tests,
    unique_png,
)

pytestmark = pytest.mark.e2e

ENTRIES = 60


@dataclass(frozen=True)
class OwnStack:
    stack: Stack
    client: httpx.Client
    owner: Account

    def submit(self, filename: str, archive: bytes) -> str:
        reply = self.client.post(
            "/v1/importJobs:zip",
            params={"filename": filename},
            content=archive,
            headers={"content-type": "application/zip", **self.owner.headers},
        )
        assert reply.status_code == 200, reply.text
        return reply.json()["name"]

    def job(self, name: str) -> dict:
        return self.client.get(f"/v1/{name}", headers=self.owner.headers).json()

    def wait_for(self, name: str, state: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while (job := self.job(name))["state"] != state:
            assert job["state"] in ("PENDING", "RUNNING") and time.monotonic() < deadline, job
            time.sleep(0.3)
        return job

    def kill_9_catalog(self) -> None:
        process = self.stack.services["catalog"].process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.popen.wait()

    def restart_catalog(self) -> None:
        self.stack.services["catalog"].start(self.stack.logs_dir / "catalog.log")


@pytest.fixture(scope="module")
def own_stack() -> Iterator[OwnStack]:
    """A stack whose catalog these tests may kill (never the session's)."""
    data_dir = new_data_dir()
    settings = stack_settings_for_tests(data_dir)
    # A dead worker's job is picked up again after 3 s without heartbeats (30 s by default).
    settings.service_settings = {**settings.service_settings, "catalog": {"job_heartbeat_timeout_s": "3"}}
    try:
        with running(settings) as stack, httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
            admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)
            yield OwnStack(stack, client, register_and_approve(stack.gateway_url, admin, "importer"))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_kill_9_mid_import_resumes_after_restart_without_duplicates_or_losses(own_stack: OwnStack) -> None:
    images = [unique_png(256, 192) for _ in range(ENTRIES)]
    name = own_stack.submit("photos.zip", build_zip([(f"photos/p{i:02}.png", d) for i, d in enumerate(images)]))
    deadline = time.monotonic() + 30
    while int(own_stack.job(name).get("processedCount", "0")) < 5:
        assert time.monotonic() < deadline, "the import did not start"
        time.sleep(0.02)
    # Best of all, kill it between claiming an entry's row and storing its bytes.
    claimed = f"SELECT count(*) FROM assets WHERE owner = '{own_stack.owner.name}' AND state = 'uploading'"
    deadline = time.monotonic() + 3
    while own_stack.stack.postgres.query(claimed, "imgtag_catalog") == "0" and time.monotonic() < deadline:
        pass
    own_stack.kill_9_catalog()
    job_id = name.removeprefix("importJobs/")
    at_kill = int(
        own_stack.stack.postgres.query(
            f"SELECT processed_count FROM import_jobs WHERE id = '{job_id}'", "imgtag_catalog"
        )
    )
    assert 5 <= at_kill < ENTRIES, "the kill came too late to interrupt the import"

    own_stack.restart_catalog()
    job = own_stack.wait_for(name, "SUCCEEDED", timeout_s=90)
    counts = [int(job.get(f, "0")) for f in ("processedCount", "importedCount", "skippedCount", "failedCount")]
    assert counts == [ENTRIES, ENTRIES, 0, 0], job
    assert [i["sourceItem"] for i in job["items"]] == [f"photos/p{i:02}.png" for i in range(ENTRIES)]
    assert {i["outcome"] for i in job["items"]} == {"CREATED"}
    assert len({i["asset"] for i in job["items"]}) == ENTRIES
    rows = own_stack.stack.postgres.query(
        f"SELECT state, sha256 FROM assets WHERE owner = '{own_stack.owner.name}' ORDER BY sha256", "imgtag_catalog"
    ).splitlines()
    assert rows == sorted(f"active|{hashlib.sha256(d).hexdigest()}" for d in images)


def test_an_import_whose_archive_is_gone_fails_with_the_reason_and_keeps_its_report(own_stack: OwnStack) -> None:
    name = own_stack.submit("more.zip", build_zip([(f"q{i:02}.png", unique_png(256, 192)) for i in range(ENTRIES)]))
    own_stack.kill_9_catalog()
    # Deleted through storage (as if by an operator) while the catalog is down.
    asyncio.run(delete_object(own_stack.stack, f"imports/{name.removeprefix('importJobs/')}.zip"))
    own_stack.restart_catalog()
    job = own_stack.wait_for(name, "FAILED", timeout_s=60)
    assert [d["reason"] for d in job["error"]["details"]] == ["ARCHIVE_MISSING"]
    assert job["error"]["code"] == 9 and job["endTime"]  # FAILED_PRECONDITION
    assert int(job.get("processedCount", "0")) == len(job.get("items", [])) < ENTRIES


async def delete_object(stack, key: str) -> None:
    tokens = ServiceTokens("tests", stack.service_secret)
    async with channel_as(stack.service_target("storage"), as_service(tokens)) as channel:
        await storage_pb2_grpc.StorageServiceStub(channel).DeleteObject(storage_pb2.DeleteObjectRequest(key=key))
