"""A stand-in vision-language model for a real Triton server (python backend), for tests: it takes
and gives the string tensors of Triton's vLLM backend, which serves real VLMs on Triton (the slot
deploy/triton/vlm-captioner), and is decoupled like it (answers through a response sender):

    text_input BYTES [1], image BYTES [-1] (base64), sampling_parameters BYTES [1] (JSON),
    stream BOOL [1], exclude_input_in_output BOOL [1]  ->  text_output BYTES [-1]

It checks what it gets as vLLM would need it (a prompt, one base64 JPEG/PNG/WebP image, JSON
sampling parameters with max_tokens, no streaming, the prompt left out of the output) and fails
the request otherwise. Its caption names the size and SHA-256 of the image bytes it decoded, so a
test sees the image arrived byte for byte. `write_repository` makes a model repository with the
stand-ins: "vlm-stand-in" (a good JSON answer, in Chinese when the prompt asks) and "vlm-prose"
(an answer without JSON)."""

from __future__ import annotations

from pathlib import Path

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
model_transaction_policy {{
  decoupled: true
}}
input [
  {{ name: "text_input" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "image" data_type: TYPE_STRING dims: [ -1 ] optional: true }},
  {{ name: "sampling_parameters" data_type: TYPE_STRING dims: [ 1 ] optional: true }},
  {{ name: "stream" data_type: TYPE_BOOL dims: [ 1 ] optional: true }},
  {{ name: "exclude_input_in_output" data_type: TYPE_BOOL dims: [ 1 ] optional: true }}
]
output [
  {{ name: "text_output" data_type: TYPE_STRING dims: [ -1 ] }}
]
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
"""

MODEL = '''"""Stand-in VLM (see imgtag_dev.triton_vlm)."""

import base64
import hashlib
import json

import numpy as np
import triton_python_backend_utils as pb_utils

IMAGE_MAGIC = (b"\\xff\\xd8\\xff", b"\\x89PNG", b"RIFF")


def _one(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)


class TritonPythonModel:
    def initialize(self, args):
        self.name = args["model_name"]

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                text = self.answer(request)
                out = pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=np.object_))
                sender.send(pb_utils.InferenceResponse(output_tensors=[out]))
            except Exception as error:  # the request is malformed: say so, as vLLM would
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"stand-in refused: {error}")))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None

    def answer(self, request):
        prompt = _one(request, "text_input")
        if prompt is None or len(prompt) != 1 or not prompt[0]:
            raise ValueError("text_input must hold one prompt")
        prompt = prompt[0].decode("utf-8")
        images = _one(request, "image")
        if images is None or len(images) != 1:
            raise ValueError("image must hold one base64 image")
        data = base64.b64decode(images[0], validate=True)
        if not data.startswith(IMAGE_MAGIC):
            raise ValueError("image is not a JPEG, PNG or WebP file")
        parameters = _one(request, "sampling_parameters")
        sampling = json.loads(parameters[0]) if parameters is not None else {}
        if not isinstance(sampling.get("max_tokens"), int) or sampling["max_tokens"] <= 0:
            raise ValueError("sampling_parameters needs a positive max_tokens")
        stream = _one(request, "stream")
        if stream is not None and bool(stream[0]):
            raise ValueError("this stand-in answers in one piece: stream must be false")
        exclude = _one(request, "exclude_input_in_output")
        if exclude is None or not bool(exclude[0]):
            raise ValueError("exclude_input_in_output must be true (or the prompt is echoed)")
        if self.name == "vlm-prose":
            return "This looks like a picture. I hope that helps!"
        digest = hashlib.sha256(data).hexdigest()
        if "written in Simplified Chinese" in prompt:
            caption = f"一张测试图片, {len(data)} 字节, sha256 {digest}"
        else:
            caption = f"A test picture, {len(data)} bytes, sha256 {digest}"
        return json.dumps(
            {
                "caption": caption,
                "objects": [{"en": "test pattern", "zh": "测试图案", "confidence": 0.9}],
                "colors": [{"en": "red", "zh": "红色", "confidence": 0.8}],
                "scene": {"en": "studio", "zh": "摄影棚", "confidence": 0.6},
                "mood": {"en": "plain", "zh": "朴素", "confidence": 0.5},
            },
            ensure_ascii=False,
        )
'''

MODELS = ("vlm-stand-in", "vlm-prose")


def write_repository(repository: Path) -> Path:
    """A Triton model repository holding the stand-in VLMs."""
    for name in MODELS:
        (repository / name / "1").mkdir(parents=True, exist_ok=True)
        (repository / name / "config.pbtxt").write_text(CONFIG.format(name=name))
        (repository / name / "1" / "model.py").write_text(MODEL)
    return repository
