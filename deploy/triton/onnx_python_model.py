"""Triton python-backend model that runs its version directory's model.onnx on ONNX Runtime, on
the CPU. fill_repository.py installs it as <model>/1/model.py where Triton's onnxruntime backend
cannot serve a model:

- the text encoder always: its graph needs onnxruntime-extensions' tokeniser ops (its
  config.pbtxt says why the onnxruntime backend cannot load them);
- every ONNX model in the CPU variant of the repository (`--variant cpu`), for Triton builds
  without the onnxruntime backend, such as the one in PyPI's nvidia-pytriton that the tests run.

Requests that dynamic batching hands over together run as one pass and are split again. Inputs
are reshaped to the rank the graph declares (strings arrive as [N, 1] and the text encoder takes
[N]); outputs are the config's, in the graph's dtypes. Parameters (config.pbtxt): `custom_ops`
("onnxruntime_extensions") and `intra_op_threads` (default: ONNX Runtime's, one per core)."""

import itertools
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_threads") or 0)
        options.log_severity_level = 3
        # Idle threads must not spin: other instances and models share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if parameters.get("custom_ops") == "onnxruntime_extensions":
            import onnxruntime_extensions

            options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [(i.name, len(i.shape), i.type == "tensor(string)") for i in self.session.get_inputs()]
        self.outputs = [o["name"] for o in config["output"]]
        self.batched = int(config.get("max_batch_size", 0)) > 0

    def _feed(self, request):
        feed = {}
        for name, rank, is_string in self.inputs:
            array = pb_utils.get_input_tensor_by_name(request, name).as_numpy()
            if array.ndim != rank:  # e.g. [N, 1] strings for a graph that takes [N]
                array = array.reshape((*array.shape[: rank - 1], -1)) if rank else array.reshape(())
            if is_string:
                array = np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else str(b), otypes=[object])(
                    array
                )
            feed[name] = array
        return feed

    def execute(self, requests):
        try:
            feeds = [self._feed(r) for r in requests]
            if self.batched and len(feeds) > 1:
                sizes = [len(next(iter(f.values()))) for f in feeds]
                merged = {name: np.concatenate([f[name] for f in feeds]) for name, _, _ in self.inputs}
                results = self.session.run(self.outputs, merged)
                bounds = np.cumsum([0, *sizes])
                per_request = [[r[a:b] for r in results] for a, b in itertools.pairwise(bounds)]
            else:
                per_request = [self.session.run(self.outputs, f) for f in feeds]
        except Exception as error:  # every request of this pass gets the reason
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error))) for _ in requests]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(n, np.ascontiguousarray(v)) for n, v in zip(self.outputs, values, strict=False)
                ]
            )
            for values in per_request
        ]
