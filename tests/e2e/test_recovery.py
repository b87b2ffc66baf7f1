"""A kill -9 in the middle of a batch of uploads: every upload that was answered is kept, every
one that was cut off can simply be sent again (created, or a duplicate naming the asset that
did land), and processing picks up where the killed worker left off, so no asset stays stuck.

These tests SIGKILL a service of the shared test stack and start it again before they end."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from imgtag_dev.stack import Stack
from imgtag_dev.testing import Account, upload, wait_until_processed

pytestmark = pytest.mark.e2e

FILES = 24


def _noisy_jpeg(seed: int) -> bytes:
    """A 1200x900 JPEG that does not compress to nothing, so renditions take real work."""
    noise = Image.frombytes("RGB", (300, 225), os.urandom(300 * 225 * 3)).resize((1200, 900))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=85, comment=f"recovery {seed}".encode())
    return out.getvalue()


def _kill(stack: Stack, service: str, when: threading.Event) -> None:
    when.wait(timeout=120)
    process = stack.services[service].process
    assert process is not None
    process.popen.kill()  # SIGKILL: no cleanup, no goodbye
    process.popen.wait()


def _send(client: httpx.Client, account: Account, data: bytes, filename: str) -> httpx.Response | None:
    try:
        return upload(client, account, data, filename)
    except httpx.TransportError:
        return None  # cut off mid-request: the client does not know what happened


@pytest.mark.parametrize("service", ["catalog", "storage"])
def test_kill_9_mid_batch_loses_nothing_and_leaves_nothing_stuck(stack: Stack, gateway_url, new_user, service) -> None:
    person = new_user()
    files = {f"recovery-{i}.jpg": _noisy_jpeg(i) for i in range(FILES)}
    answered: dict[str, httpx.Response | None] = {}
    third_done = threading.Event()
    killer = threading.Thread(target=_kill, args=(stack, service, third_done))
    killer.start()
    try:
        with httpx.Client(base_url=gateway_url, timeout=60) as client:

            def send(item: tuple[str, bytes]) -> None:
                filename, data = item
                answered[filename] = _send(client, person, data, filename)
                if sum(1 for r in answered.values() if r is not None and r.status_code == 200) >= FILES // 3:
                    third_done.set()

            with ThreadPoolExecutor(max_workers=3) as pool:
                list(pool.map(send, files.items()))
    finally:
        third_done.set()
        killer.join()
        # Started from this thread: children die with the thread that spawned them (PDEATHSIG).
        stack.services[service].start(stack.logs_dir / f"{service}.log")
    log_tail = (stack.logs_dir / f"{service}.log").read_text()[-4000:]
    assert stack.services[service].process.popen.poll() is None, log_tail

    created = {f: r.json()["name"] for f, r in answered.items() if r is not None and r.status_code == 200}
    interrupted = sorted(set(files) - set(created))
    assert created, "nothing was uploaded before the kill"

    # The client's answer to "did my upload land?" is to send it again.
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        for filename in interrupted:
            deadline = time.monotonic() + 60
            while True:
                reply = _send(client, person, files[filename], filename)
                if reply is not None and reply.status_code in (200, 409):
                    break
                # The restarted service, or an upload claim the janitor has yet to settle.
                assert reply is None or reply.status_code in (503, 504), (reply.status_code, reply.text)
                assert time.monotonic() < deadline, (filename, reply and reply.text, log_tail)
                time.sleep(0.5)
            body = reply.json()
            if reply.status_code == 409:
                assert body["details"][0]["reason"] == "DUPLICATE_ASSET", body
                created[filename] = body["details"][0]["metadata"]["asset"]
            else:
                created[filename] = body["name"]

        # One asset per file, each with its bytes, none stuck in processing.
        assert len(set(created.values())) == FILES
        for filename, name in created.items():
            # (photos that waited for storage are queued again 2 min after their upload)
            asset = wait_until_processed(client, name, person.headers, timeout_s=180)
            assert asset["processingState"] == "PROCESSING_COMPLETED", (asset.get("processingError"), asset)
            assert asset["sha256"] == hashlib.sha256(files[filename]).hexdigest()
            original = client.get(f"/v1/{name}/content", headers=person.headers)
            assert original.status_code == 200, (original.text, log_tail)
            assert original.content == files[filename]
            thumbnail = client.get(f"/v1/{name}/content", params={"variant": "THUMBNAIL"}, headers=person.headers)
            assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/webp"
        listing = client.get("/v1/assets", params={"page_size": 100}, headers=person.headers).json()
        assert sorted(a["name"] for a in listing["assets"]) == sorted(created.values())
