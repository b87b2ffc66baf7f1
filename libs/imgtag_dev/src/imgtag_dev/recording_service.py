"""A stand-in gRPC service for gateway tests: `python -m imgtag_dev.recording_service PORT RECORD`.

It answers every unary method with an empty message (valid for any response type) and appends
each call's method and metadata to RECORD as a JSON line, so a test sees exactly what Envoy sent
upstream. A caller may ask it to answer late (`x-test-answer-after-s`) or to fail UNAVAILABLE
(`x-test-fail`). It runs as its own process: forking children (Envoy, services) from a process
that serves gRPC can abort them."""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc


class _RecordEveryCall(grpc.GenericRpcHandler):
    def __init__(self, record: Path) -> None:
        self._record = record
        self._lock = threading.Lock()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            with self._lock, self._record.open("a") as out:
                out.write(json.dumps({"method": details.method, "metadata": metadata}) + "\n")
            time.sleep(float(metadata.get("x-test-answer-after-s", "0")))
            if "x-test-fail" in metadata:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the stand-in was asked to fail")
            return b""

        return grpc.unary_unary_rpc_method_handler(answer)


def main(port: int, record: Path) -> None:
    server = grpc.server(ThreadPoolExecutor(max_workers=8))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_generic_rpc_handlers((_RecordEveryCall(record),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
