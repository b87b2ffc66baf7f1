"""A vision-language provider of kind TRITON against a real tritonserver (2.51, python backend,
the harness of imgtag_dev.triton) serving a stand-in VLM that takes and gives the string tensors
of Triton's vLLM backend and is decoupled like it (imgtag_dev.triton_vlm). Configured by an admin
through the gateway on the session stack; asked through TestVisionProvider (REST) and
DescribeImage (gRPC, as the catalog does). The stand-in's caption carries the SHA-256 of the
image bytes it decoded, so the image is seen to arrive byte for byte, not only the server to be
ready."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import grpc
import httpx
import pytest

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_dev.testing import SKIMAGE_PHOTOS, as_service, channel_as
from imgtag_dev.triton import TritonServer
from imgtag_dev.triton_vlm import write_repository
from imgtag_inference.domain.vision_image import jpeg_for_vision

pytestmark = pytest.mark.integration

ROCKET = (SKIMAGE_PHOTOS / "rocket.jpg").read_bytes()


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    home = tmp_path_factory.mktemp("triton-vlm")
    server = TritonServer(write_repository(home / "models"), home / "tritonserver.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def admin_http(gateway_url, admin):
    with httpx.Client(base_url=gateway_url, timeout=120, headers=admin.headers) as client:
        made: list[str] = []
        client.made = made  # type: ignore[attr-defined]
        yield client
        for name in made:
            client.delete(f"/v1/{name}")


def _provider(client: httpx.Client, provider_id: str, triton: TritonServer, **fields) -> None:
    body = {"kind": "TRITON", "endpoint": triton.url, "model": "vlm-stand-in", "active": False, **fields}
    reply = client.post("/v1/visionProviders", params={"visionProviderId": provider_id}, json=body)
    assert reply.status_code == 200, reply.text
    client.made.append(reply.json()["name"])  # type: ignore[attr-defined]


def test_a_vlm_on_triton_captions_through_kserve_v2_string_tensors(admin_http, triton, stack, service_tokens):
    _provider(admin_http, "triton-vlm", triton, language="zh", active=True)
    tested = admin_http.post("/v1/visionProviders/triton-vlm:test", json={"image": base64.b64encode(ROCKET).decode()})
    assert tested.status_code == 200, tested.text
    sent = jpeg_for_vision(ROCKET, 1024)  # what the service sends: JPEG, at most 1024 px
    description = tested.json()["description"]
    assert description["caption"] == f"一张测试图片, {len(sent)} 字节, sha256 {hashlib.sha256(sent).hexdigest()}"
    tags = {t["label"]: t for t in description["tags"]}
    assert tags["test pattern"]["displayNames"] == {"en": "test pattern", "zh": "测试图案"}
    assert tags["test pattern"]["displayName"] == "测试图案" and tags["studio"]["category"] == "scene"
    assert description["provider"] == "visionProviders/triton-vlm" and description["model"] == "vlm-stand-in"

    # DescribeImage, as the catalog's describe stage calls it (the active provider).
    async def describe(image: bytes) -> pb.DescribeImageResponse:
        async with channel_as(stack.service_target("inference"), as_service(service_tokens)) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            return await stub.DescribeImage(pb.DescribeImageRequest(image=pb.ImageInput(data=image)))

    coffee = (SKIMAGE_PHOTOS / "coffee.png").read_bytes()
    reply = asyncio.run(describe(coffee))
    assert reply.description.caption.endswith(hashlib.sha256(jpeg_for_vision(coffee, 1024)).hexdigest())
    assert reply.description.tags[0].model == "visionProviders/triton-vlm"


def test_triton_failures_are_told_apart(admin_http, triton) -> None:
    _provider(admin_http, "triton-prose", triton, model="vlm-prose", maxAttempts=2)
    prose = admin_http.post("/v1/visionProviders/triton-prose:test", json={})
    body = prose.json()
    assert prose.status_code == 400 and "VISION_OUTPUT_INVALID" in prose.text, prose.text
    assert "This looks like a picture" in body["message"]

    _provider(admin_http, "triton-unknown", triton, model="no-such-model", maxAttempts=1)
    unknown = admin_http.post("/v1/visionProviders/triton-unknown:test", json={})
    assert unknown.status_code == 400 and "VISION_PROVIDER_REFUSED" in unknown.text, unknown.text
    assert "no-such-model" in unknown.json()["message"]

    _provider(admin_http, "triton-down", triton, endpoint="127.0.0.1:9", maxAttempts=1, timeout="3s")
    down = admin_http.post("/v1/visionProviders/triton-down:test", json={})
    assert down.status_code == 503 and "VISION_PROVIDER_UNAVAILABLE" in down.text, down.text
    assert grpc.StatusCode.UNAVAILABLE.value[0] == down.json()["code"]
