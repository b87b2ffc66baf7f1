"""The embedded backend: ONNX Runtime sessions in this process, on the CPU.

Sessions are created once and kept (no idle unload). `run` executes in the inference thread
pool, never on the event loop; the pool is bounded, and micro-batching in the domain keeps the
number of concurrent runs low, so ONNX Runtime's own threads are not oversubscribed."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from imgtag_common.blocking import BlockingExecutor


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


class OnnxRuntimeBackend:
    """InferenceBackend on in-process ONNX Runtime sessions."""

    name = "onnxruntime"
    device = "CPU"

    def __init__(self, executor: BlockingExecutor, *, intra_op_threads: int = 0) -> None:
        self._executor = executor
        self._threads = intra_op_threads
        self._sessions: dict[str, ort.InferenceSession] = {}
        self.device_name = cpu_name()

    def load(self, model: str, source: Path | bytes, *, custom_ops: bool = False) -> ort.InferenceSession:
        """Create the session for `model` from a file or its bytes (blocking)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.log_severity_level = 3
        # Idle pool threads must not spin: decoding and other sessions need those cores between passes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if custom_ops:
            import onnxruntime_extensions

            options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
        session = ort.InferenceSession(
            str(source) if isinstance(source, Path) else source, options, providers=["CPUExecutionProvider"]
        )
        self._sessions[model] = session
        return session

    def session(self, model: str) -> ort.InferenceSession:
        return self._sessions[model]

    def run_blocking(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self._sessions[model]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, dict(inputs)), strict=True))

    async def run(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return await self._executor.run(self.run_blocking, model, inputs)
