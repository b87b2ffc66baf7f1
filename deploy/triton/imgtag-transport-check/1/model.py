"""Triton python-backend model: the SHA-256 (hex) of each row of `rows` and of each element of
`texts`, as received. The inference service compares them with what it sent (config.pbtxt says
why)."""

import hashlib

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "rows").as_numpy()
            texts = pb_utils.get_input_tensor_by_name(request, "texts").as_numpy().reshape(-1)
            row_digests = [hashlib.sha256(np.ascontiguousarray(row).tobytes()).hexdigest() for row in rows]
            text_digests = [hashlib.sha256(bytes(text)).hexdigest() for text in texts]
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("rows_sha256", np.array(row_digests, dtype=object)),
                        pb_utils.Tensor("texts_sha256", np.array(text_digests, dtype=object)),
                    ]
                )
            )
        return responses
