"""A vision-language model on a Triton (KServe v2) server, through `tritonclient.grpc.aio`, with
the string tensors Triton's vLLM backend takes and gives:

    text_input               BYTES [1]  the prompt (with the model's chat template, see README)
    image                    BYTES [1]  the image, base64 (JPEG)
    sampling_parameters      BYTES [1]  JSON: {"max_tokens", "temperature"}
    stream                   BOOL  [1]  false: one answer
    exclude_input_in_output  BOOL  [1]  true: the answer without the prompt
    -> text_output           BYTES [1]

Requests go over the bidirectional stream (ModelStreamInfer), which serves decoupled models
(the vLLM backend is one) as well as ordinary ones."""

from __future__ import annotations

import asyncio
import base64
import json

import grpc
import numpy as np
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from imgtag_inference.adapters.vision_http import TEMPERATURE
from imgtag_inference.domain.vision import ProviderRefused, ProviderUnavailable, VisionAnswer, VisionCall

OUTPUT = "text_output"
_REFUSED_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
}


class TritonVisionClient:
    def __init__(self) -> None:
        self._clients: dict[str, triton.InferenceServerClient] = {}

    def _client(self, endpoint: str) -> triton.InferenceServerClient:
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients[endpoint] = triton.InferenceServerClient(url=endpoint)
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    async def ask(self, call: VisionCall) -> VisionAnswer:
        inputs = [
            _strings("text_input", call.prompt.encode()),
            _strings("image", base64.b64encode(call.image)),
            _strings(
                "sampling_parameters",
                json.dumps({"max_tokens": call.max_output_tokens, "temperature": TEMPERATURE}).encode(),
            ),
            _flag("stream", False),
            _flag("exclude_input_in_output", True),
        ]
        request = {"model_name": call.model, "inputs": inputs, "outputs": [triton.InferRequestedOutput(OUTPUT)]}

        async def requests():
            yield request

        headers = {"authorization": f"Bearer {call.api_key}"} if call.api_key else None
        text = ""
        try:
            async with asyncio.timeout(call.timeout_s):
                responses = self._client(call.endpoint).stream_infer(
                    requests(), stream_timeout=call.timeout_s, headers=headers
                )
                async for result, error in responses:
                    if error is not None:
                        raise _model_error(str(error.message() or error))
                    output = result.as_numpy(OUTPUT)
                    if output is not None and output.size:
                        text = _text(output)
        except TimeoutError as error:
            raise ProviderUnavailable(f"no answer within {call.timeout_s:g} s") from error
        except InferenceServerException as error:
            raise _rpc_error(error) from error
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code in _REFUSED_CODES:
                raise ProviderRefused(f"{code.name}: {error.details()}") from error
            raise ProviderUnavailable(f"{code.name}: {error.details()}") from error
        return VisionAnswer(text=text)


def _strings(name: str, value: bytes) -> triton.InferInput:
    tensor = triton.InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value], dtype=np.object_))
    return tensor


def _flag(name: str, value: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, [1], "BOOL")
    tensor.set_data_from_numpy(np.array([value], dtype=bool))
    return tensor


def _text(output: np.ndarray) -> str:
    parts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in output.reshape(-1)]
    return "".join(parts)


def _model_error(message: str) -> Exception:
    lowered = message.lower()
    if "unknown model" in lowered or "unexpected inference input" in lowered or "unable to find" in lowered:
        return ProviderRefused(message[:500])
    return ProviderUnavailable(message[:500])


def _rpc_error(error: InferenceServerException) -> Exception:
    status = str(error.status() or "")
    message = f"{status}: {error.message()}" if status else str(error.message())
    if any(code.name in status for code in _REFUSED_CODES):
        return ProviderRefused(message[:500])
    return ProviderUnavailable(message[:500])
