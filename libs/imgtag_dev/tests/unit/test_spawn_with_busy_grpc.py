"""Children started while the supervisor's gRPC channels are busy reach exec: with grpcio's fork
support on and a plain fork, about one child in six died with SIGABRT before exec
(grpc/grpc#43055), which showed up as a service "exited with code -6 during start-up". spawn()
starts children without running Python between fork and exec (vfork), so they survive even with
fork support on, as when grpc is imported before imgtag_dev could turn it off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, tempfile
    from pathlib import Path
    import imgtag_dev  # first, as the CLI and the test session import it
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from imgtag_dev.processes import spawn

    async def main():
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub, busy = health_pb2_grpc.HealthStub(channel), True

            async def calls():
                while busy:
                    await stub.Check(health_pb2.HealthCheckRequest())

            load = asyncio.create_task(calls())
            log = Path(tempfile.mkdtemp()) / "child.log"

            def start_and_wait():
                return spawn("child", ["true"], log_path=log).popen.wait()

            codes = [await asyncio.to_thread(start_and_wait) for _ in range(100)]
            busy = False
            await load
        print(sum(code != 0 for code in codes))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("fork_support", ["", "true"], ids=["default", "fork-support-on"])
def test_children_survive_fork_while_grpc_is_busy(fork_support: str) -> None:
    # Without this session's setting (importing imgtag_dev turns fork support off), and with it on.
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    if fork_support:
        env["GRPC_ENABLE_FORK_SUPPORT"] = fork_support
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0", f"children that died before exec: {result.stdout} {result.stderr[-2000:]}"
