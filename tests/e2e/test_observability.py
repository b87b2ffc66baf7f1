"""Every service answers the standard health and reflection services, and one request id follows
a request from the gateway through catalog into storage, in JSON log lines."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from imgtag_dev.stack import SERVICES
from imgtag_dev.testing import unique_png

pytestmark = pytest.mark.e2e


async def test_every_service_is_serving_and_reflects_its_contract(stack) -> None:
    for name in SERVICES:
        full_name = f"imgtag.{name}.v1.{name.capitalize()}Service"
        async with grpc.aio.insecure_channel(stack.service_target(name)) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=full_name))
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            listed = {s.name async for reply in stream for s in reply.list_services_response.service}
            assert {full_name, "grpc.health.v1.Health"} <= listed


def _log_lines(stack, service: str, request_id: str) -> list[dict]:
    lines = (stack.logs_dir / f"{service}.log").read_text().splitlines()
    return [
        entry
        for entry in map(json.loads, filter(lambda line: line.startswith("{"), lines))
        if entry.get("request_id") == request_id
    ]


def test_request_id_follows_a_request_through_the_services(stack, http: httpx.Client) -> None:
    request_id = f"trace-{uuid.uuid4()}"
    uploaded = http.post(
        "/v1/assets:upload",
        params={"filename": "trace.png"},
        content=unique_png(),
        headers={"content-type": "image/png"},
    )
    name = uploaded.json()["name"]
    http.get("/v1/assets", params={"page_size": 1}, headers={"x-request-id": request_id}).raise_for_status()
    http.get(f"/v1/{name}/content", headers={"x-request-id": request_id}).raise_for_status()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        _log_lines(stack, "catalog", request_id) and _log_lines(stack, "storage", request_id)
    ):
        time.sleep(0.2)
    catalog = _log_lines(stack, "catalog", request_id)
    storage = _log_lines(stack, "storage", request_id)
    assert {e["method"] for e in catalog} >= {
        "/imgtag.catalog.v1.CatalogService/ListAssets",
        "/imgtag.catalog.v1.CatalogService/GetAssetContent",
    }
    assert {e["method"] for e in storage} == {"/imgtag.storage.v1.StorageService/ReadObject"}
    assert all(e["service"] in ("catalog", "storage") and e["level"] == "INFO" for e in catalog + storage)
