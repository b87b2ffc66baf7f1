"""The inference service process. Its contract (imgtag/inference/v1) is complete; the servicer is
not: every InferenceService method still answers UNIMPLEMENTED (ONNX Runtime / Triton models are
the next inference issue). It runs so the gateway, health checks and the local stack have all
four services, and it already enforces the contract's access rules."""

from __future__ import annotations

from imgtag.inference.v1 import inference_pb2_grpc
from imgtag_common.server import GrpcApp, start_app
from imgtag_inference.settings import InferenceSettings

SERVICE_NAME = "imgtag.inference.v1.InferenceService"


async def build_server(settings: InferenceSettings) -> GrpcApp:
    servicer = inference_pb2_grpc.InferenceServiceServicer()  # the generated base: UNIMPLEMENTED throughout
    return await start_app(
        settings,
        services=[
            (SERVICE_NAME, lambda server: inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server))
        ],
        tokens=settings.service_tokens("inference"),
    )
