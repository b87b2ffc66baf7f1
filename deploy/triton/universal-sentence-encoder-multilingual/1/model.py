"""Triton python-backend model: the text encoder's ONNX graph (1/model.onnx, copied there by
fill_repository.py) on ONNX Runtime with onnxruntime-extensions' tokeniser ops. Input `inputs`
[N, 1] strings (UTF-8 bytes), output `outputs` [N, 512] float32, as the embedded runtime gives."""

import os

import numpy as np
import onnxruntime as ort
import onnxruntime_extensions
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        options = ort.SessionOptions()
        options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
        options.intra_op_num_threads = 1  # one per instance; instance_group sets how many
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name

    def execute(self, requests):
        # Dynamic batching hands over several requests: one pass for all, then split.
        texts = [pb_utils.get_input_tensor_by_name(r, "inputs").as_numpy().reshape(-1) for r in requests]
        sizes = [len(t) for t in texts]
        strings = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.concatenate(texts)]
        batch = np.array(strings, dtype=object)
        vectors = self.session.run([self.output], {self.input: batch})[0].astype(np.float32)
        responses, start = [], 0
        for size in sizes:
            out = pb_utils.Tensor("outputs", vectors[start : start + size])
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            start += size
        return responses
