"""deploy/triton/fill_repository.py's gpu variant (what GPU nodes serve; no GPU here, so checked
as files): the service's own ONNX graphs with their versions, onnxruntime-backend configs on GPU
instances with dynamic batching, CLIP configs written from the model's files, the VLM slot only
once its weights are there."""

from __future__ import annotations

import onnx
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from imgtag_dev.triton import fill_module
from imgtag_inference.adapters import clip_files, efficientnet

from .conftest import CLIP_DIRECTORY

GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU
CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU


def _config(path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_the_gpu_variant_serves_the_services_graphs_on_gpu_instances(tmp_path, models_dir, embedded) -> None:
    _, reference = embedded
    fill = fill_module()
    written = fill.fill(tmp_path, models_dir, clip=CLIP_DIRECTORY)
    assert written[:5] == [
        "efficientnet-lite0",
        "universal-sentence-encoder-multilingual",
        "imgtag-transport-check",
        "clip-tiny-clip-visual",
        "clip-tiny-clip-textual",
    ]
    assert written[5].startswith("vlm-captioner: skipped, no weights") and not (tmp_path / "vlm-captioner").exists()

    classifier = _config(tmp_path / "efficientnet-lite0" / "config.pbtxt")
    assert classifier.backend == "onnxruntime" and {g.kind for g in classifier.instance_group} == {GPU}
    assert classifier.HasField("dynamic_batching")
    assert classifier.parameters["imgtag_version"].string_value == reference.classifier.version
    converted = efficientnet.converted(models_dir).path.read_bytes()
    assert (tmp_path / "efficientnet-lite0" / "1" / "model.onnx").read_bytes() == converted
    assert not (tmp_path / "efficientnet-lite0" / "1" / "model.py").exists()

    text = _config(tmp_path / "universal-sentence-encoder-multilingual" / "config.pbtxt")
    assert text.backend == "python" and {g.kind for g in text.instance_group} == {CPU}
    assert text.parameters["imgtag_version"].string_value == reference.text.version
    assert text.parameters["custom_ops"].string_value == "onnxruntime_extensions"
    assert (tmp_path / "universal-sentence-encoder-multilingual" / "1" / "model.py").exists()

    visual = _config(tmp_path / "clip-tiny-clip-visual" / "config.pbtxt")
    textual = _config(tmp_path / "clip-tiny-clip-textual" / "config.pbtxt")
    assert [(i.name, i.data_type, list(i.dims)) for i in visual.input] == [
        ("pixels", model_config_pb2.TYPE_UINT8, [32, 32, 3])
    ]
    assert visual.backend == textual.backend == "onnxruntime" and visual.max_batch_size == 64
    assert {g.kind for g in visual.instance_group} == {GPU}
    files = clip_files.find(models_dir, CLIP_DIRECTORY)
    assert visual.parameters["imgtag_version"].string_value == clip_files.version(files) == reference.clip.version
    tower = onnx.load(str(tmp_path / "clip-tiny-clip-textual" / "1" / "model.onnx"))
    assert [i.name for i in textual.input] == [i.name for i in tower.graph.input]
    assert [o.name for o in textual.output] == [o.name for o in tower.graph.output]

    weights = tmp_path / "vlm-captioner" / "1" / "weights"
    weights.mkdir(parents=True)
    (weights / "config.json").write_text("{}")
    assert fill.fill(tmp_path, models_dir, clip="none")[-1] == f"vlm-captioner (weights in {weights})"
    vlm = _config(tmp_path / "vlm-captioner" / "config.pbtxt")
    assert vlm.backend == "vllm" and vlm.model_transaction_policy.decoupled
    assert (tmp_path / "vlm-captioner" / "1" / "model.json").exists()
