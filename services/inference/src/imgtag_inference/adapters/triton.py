"""The Triton backend: the same models as the embedded runtime, run by a Triton Inference Server
(KServe v2 over gRPC, `tritonclient.grpc.aio`), for GPU nodes.

Model names, inputs and outputs are those of deploy/triton/*/config.pbtxt, which
deploy/triton/fill_repository.py fills with the very ONNX graphs the service runs embedded. The
domain sends the same arrays to either backend (uint8 pixels at model size, never float32
pixels; strings; token ids); this adapter only reshapes them to the shapes a config declares
(strings go as [N, 1]).

Each model's config carries the version the fill script computed from its weights
(`parameters { key: "imgtag_version" }`): that is the model's embedding space, so vectors made
on Triton are comparable with those made embedded, and a repository filled from other weights
is a new space rather than a silent mix.

Before it serves, the service also proves the transport: `imgtag-transport-check` answers the
SHA-256 of what it received, and any difference keeps the service NOT_SERVING (a ready server can
hand its models corrupted inputs; see that model's config)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import InferInput, model_config_pb2
from tritonclient.grpc import aio as triton_aio
from tritonclient.utils import InferenceServerException

from imgtag_common.errors import Unavailable
from imgtag_inference.adapters import clip_files
from imgtag_inference.adapters.embedded import CLASSIFIER, TEXT_ENCODER, USE_LANGUAGES, EmbeddedModelLoader
from imgtag_inference.domain.models import ClassifierSpec, ClipSpec, TextEncoderSpec

log = logging.getLogger(__name__)

TRANSPORT_CHECK = "imgtag-transport-check"
VERSION_PARAMETER = "imgtag_version"
_MAX_MESSAGE_BYTES = 2**31 - 1
# Triton's gRPC codes that mean "not now" rather than "wrong": the server is down or restarting,
# or the model is not loaded (yet).
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.NOT_FOUND"}
_DATATYPES = {
    model_config_pb2.TYPE_UINT8: "UINT8",
    model_config_pb2.TYPE_INT32: "INT32",
    model_config_pb2.TYPE_INT64: "INT64",
    model_config_pb2.TYPE_FP16: "FP16",
    model_config_pb2.TYPE_FP32: "FP32",
    model_config_pb2.TYPE_STRING: "BYTES",
}


class TritonError(RuntimeError):
    """Triton refused a request for a reason that retrying will not fix (a contract mismatch)."""


class TransportCorrupted(RuntimeError):
    """The server's models did not receive the bytes that were sent."""


@dataclass(frozen=True)
class _Input:
    datatype: str
    dims: tuple[int, ...]  # without the batch dimension when batched
    batched: bool


class TritonBackend:
    """InferenceBackend on a Triton server."""

    name = "triton"

    def __init__(self, url: str, *, timeout_s: float = 60.0) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._client = triton_aio.InferenceServerClient(
            url,
            channel_args=[
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_permit_without_calls", 1),
                # Find a restarted server within seconds, not gRPC's default of up to two minutes.
                ("grpc.initial_reconnect_backoff_ms", 250),
                ("grpc.max_reconnect_backoff_ms", 2_000),
            ],
        )
        self._inputs: dict[str, dict[str, _Input]] = {}
        self.device = "GPU"
        self.device_name = f"Triton at {url}"

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, awaitable, what: str):
        try:
            return await awaitable
        except InferenceServerException as error:
            if (error.status() or "") in _UNAVAILABLE or error.status() is None:
                raise Unavailable(
                    f"Triton at {self.url} cannot {what} now: {error.message()}", reason="TRITON_UNAVAILABLE"
                ) from error
            raise TritonError(f"Triton at {self.url} refused to {what}: {error.status()} {error.message()}") from error

    async def ready(self, models: Sequence[str]) -> bool:
        """The server is live and each of `models` is ready (False when it cannot be reached).
        Not the server's own readiness: with strict readiness that needs every model in the
        repository, and a model the service does not call (the VLM slot) must not stop it."""
        timeout = min(self._timeout_s, 5.0)
        try:
            if not await self._client.is_server_live(client_timeout=timeout):
                return False
            for model in models:
                if not await self._client.is_model_ready(model, client_timeout=timeout):
                    return False
        except InferenceServerException:
            return False
        return True

    async def config(self, model: str) -> model_config_pb2.ModelConfig:
        """The model's configuration as the server loaded it (and the shapes `run` sends)."""
        reply = await self._call(
            self._client.get_model_config(model, client_timeout=self._timeout_s), f"describe {model}"
        )
        config = reply.config
        batched = config.max_batch_size > 0
        self._inputs[model] = {
            i.name: _Input(_DATATYPES.get(i.data_type, ""), tuple(i.dims), batched) for i in config.input
        }
        return config

    async def run(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if model not in self._inputs:
            await self.config(model)
        declared = self._inputs[model]
        request = []
        for name, array in inputs.items():
            spec = declared.get(name)
            if spec is None:
                raise TritonError(f"Triton's {model} has no input {name!r} (it has {sorted(declared)})")
            array = _shaped(array, spec)
            item = InferInput(name, list(array.shape), spec.datatype)
            item.set_data_from_numpy(array)
            request.append(item)
        result = await self._call(self._client.infer(model, request, client_timeout=self._timeout_s), f"run {model}")
        return {output.name: result.as_numpy(output.name) for output in result.get_response().outputs}

    async def check_transport(self, *, rows: int = 4, row_bytes: int = 224 * 224 * 3) -> None:
        """Send images' worth of random bytes and awkward strings to the checksum model; raise
        TransportCorrupted unless every digest matches what was sent."""
        generator = np.random.default_rng()
        sent_rows = generator.integers(0, 256, size=(rows, row_bytes), dtype=np.uint8)
        sent_texts = ["", "猫 cat", "x" * 40_000, "A" * 1_234 + "\u00e9", "\x00\x04\x04\x04 binary-looking"]
        out = await self.run(TRANSPORT_CHECK, {"rows": sent_rows, "texts": np.array(sent_texts, dtype=object)})
        want_rows = [hashlib.sha256(row.tobytes()).hexdigest() for row in sent_rows]
        want_texts = [hashlib.sha256(t.encode()).hexdigest() for t in sent_texts]
        got_rows = [_text(d) for d in out["rows_sha256"].reshape(-1)]
        got_texts = [_text(d) for d in out["texts_sha256"].reshape(-1)]
        bad = [i for i, (g, w) in enumerate(zip(got_rows, want_rows, strict=True)) if g != w]
        bad_texts = [i for i, (g, w) in enumerate(zip(got_texts, want_texts, strict=True)) if g != w]
        if bad or bad_texts:
            raise TransportCorrupted(
                f"Triton at {self.url} handed its models other bytes than were sent (rows {bad} of {rows}, "
                f"strings {bad_texts} of {len(sent_texts)} differ): its answers cannot be trusted"
            )


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _shaped(array: np.ndarray, spec: _Input) -> np.ndarray:
    """The array in the shape the config declares: [N, *dims] for batched models, e.g. [N] strings
    to [N, 1]. Shapes that already have the declared rank go as they are."""
    array = np.asarray(array)
    rank = len(spec.dims) + (1 if spec.batched else 0)
    if array.ndim == rank:
        return array
    leading = (array.shape[0],) if spec.batched else ()
    return array.reshape(leading + tuple(d if d > 0 else -1 for d in spec.dims))


def _version(config: model_config_pb2.ModelConfig) -> str:
    parameter = config.parameters.get(VERSION_PARAMETER)
    if parameter is None or not parameter.string_value:
        raise ValueError(
            f"Triton's {config.name} has no {VERSION_PARAMETER} parameter: fill the repository with "
            "deploy/triton/fill_repository.py, which records the version of the weights it installs"
        )
    return parameter.string_value


def _outputs(config: model_config_pb2.ModelConfig) -> dict[str, tuple[int, ...]]:
    return {o.name: tuple(o.dims) for o in config.output}


@dataclass
class TritonModelLoader(EmbeddedModelLoader):
    """The models as Triton serves them: specs from the server's configs (names, shapes,
    versions), CLIP's tokenizer from the local model directory, OCR in process as embedded."""

    backend: TritonBackend  # type: ignore[assignment]
    transport_check: bool = True

    def required_models(self) -> list[str]:
        """Models that must be ready before the service serves (CLIP is optional, as embedded)."""
        return [CLASSIFIER, TEXT_ENCODER] + ([TRANSPORT_CHECK] if self.transport_check else [])

    async def load(self):
        if self.transport_check:
            await self.backend.check_transport()
        return await super().load()

    async def _classifier(self) -> ClassifierSpec:
        config = await self.backend.config(CLASSIFIER)
        outputs = _outputs(config)
        if {"logits", "embedding"} - set(outputs) or len(config.input) != 1:
            raise ValueError(f"Triton's {CLASSIFIER} does not have one input and outputs logits and embedding")
        (pixels,) = config.input
        kinds = {g.kind for g in config.instance_group}
        self.backend.device = (
            "GPU"
            if model_config_pb2.ModelInstanceGroup.KIND_GPU in kinds
            else "CPU"
            if kinds == {model_config_pb2.ModelInstanceGroup.KIND_CPU}
            else ""
        )
        return ClassifierSpec(
            model=CLASSIFIER,
            display_name="EfficientNet-Lite0 (ImageNet-1k)",
            version=_version(config),
            input=pixels.name,
            logits="logits",
            embedding="embedding",
            input_size=int(pixels.dims[0]),
            dimension=int(outputs["embedding"][-1]),
        )

    async def _text_encoder(self) -> TextEncoderSpec:
        config = await self.backend.config(TEXT_ENCODER)
        (text,) = config.input
        (output,) = config.output
        return TextEncoderSpec(
            model=TEXT_ENCODER,
            display_name="Universal Sentence Encoder Multilingual",
            version=_version(config),
            input=text.name,
            output=output.name,
            dimension=int(output.dims[-1]),
            languages=USE_LANGUAGES,
        )

    async def _clip(self) -> ClipSpec | None:
        files = clip_files.find(self.models_dir, self.clip_model)
        if files is None:
            return None
        name = clip_files.model_name(files.directory)
        visual, textual = await asyncio.gather(
            self.backend.config(f"{name}-visual"), self.backend.config(f"{name}-textual")
        )
        local = await self.executor.run(clip_files.version, files)
        for config in (visual, textual):
            if _version(config) != local:
                raise ValueError(
                    f"Triton's {config.name} holds other weights ({_version(config)}) than {files.directory} "
                    f"({local}): fill the repository again"
                )
        if [(i.name, i.data_type) for i in visual.input] != [(clip_files.PIXELS, model_config_pb2.TYPE_UINT8)]:
            raise ValueError(
                f"Triton's {name}-visual does not take uint8 {clip_files.PIXELS} (fill the repository again)"
            )
        pre = clip_files.preprocess(files)
        tokenize = clip_files.tokenizer(
            files, [(i.name, model_config_pb2.DataType.Name(i.data_type)) for i in textual.input]
        )
        visual_output = clip_files.pick([o.name for o in visual.output], clip_files.VISUAL_OUTPUTS)
        textual_output = clip_files.pick([o.name for o in textual.output], clip_files.TEXTUAL_OUTPUTS)
        dimension = int(_outputs(visual)[visual_output][-1])
        if int(_outputs(textual)[textual_output][-1]) != dimension:
            raise ValueError(f"Triton's {name} towers do not share a space")
        return clip_files.spec(
            files,
            pre,
            tokenize,
            version=local,
            dimension=dimension,
            visual_output=visual_output,
            textual_output=textual_output,
        )
