"""deploy/triton: every config.pbtxt parses with Triton's own model-config protobuf (tritonclient
ships it), batches on the GPU, and names the inputs and outputs the inference service sends and
reads. Where the service's embedded models are importable, the fill script runs and the configs
are checked against the real ONNX files it wrote."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from imgtag_dev.paths import REPO_ROOT

TRITON = REPO_ROOT / "deploy" / "triton"
T = mc.DataType
# What the inference service sends and reads per model: (inputs, outputs) as name -> (type, dims
# without the batch axis). Keep in step with services/inference (see docs/deployment.md).
CONTRACT = {
    "efficientnet-lite0": (
        {"pixels": (T.TYPE_UINT8, [224, 224, 3])},
        {"logits": (T.TYPE_FP32, [1000]), "embedding": (T.TYPE_FP32, [1280])},
    ),
    "universal-sentence-encoder-multilingual": (
        {"inputs": (T.TYPE_STRING, [1])},
        {"outputs": (T.TYPE_FP32, [512])},
    ),
    # uint8 NHWC pixels, never float32: the fill script grafts CLIP's normalisation onto the tower
    "clip-vit-b-32-openai-visual": ({"pixels": (T.TYPE_UINT8, [224, 224, 3])}, {"embedding": (T.TYPE_FP32, [512])}),
    "clip-vit-b-32-openai-textual": ({"text": (T.TYPE_INT32, [77])}, {"embedding": (T.TYPE_FP32, [512])}),
    # the service proves with it that inputs arrive intact before it serves
    "imgtag-transport-check": (
        {"rows": (T.TYPE_UINT8, [-1, -1]), "texts": (T.TYPE_STRING, [-1])},
        {"rows_sha256": (T.TYPE_STRING, [-1]), "texts_sha256": (T.TYPE_STRING, [-1])},
    ),
    "vlm-captioner": (
        {
            "text_input": (T.TYPE_STRING, [1]),
            "image": (T.TYPE_STRING, [-1]),
            "sampling_parameters": (T.TYPE_STRING, [1]),
            "stream": (T.TYPE_BOOL, [1]),
            "exclude_input_in_output": (T.TYPE_BOOL, [1]),
        },
        {"text_output": (T.TYPE_STRING, [-1])},
    ),
}


def load(name: str) -> mc.ModelConfig:
    return text_format.Parse((TRITON / name / "config.pbtxt").read_text(), mc.ModelConfig())


def test_there_is_a_config_for_every_model_the_service_calls_and_no_other() -> None:
    assert {p.parent.name for p in TRITON.glob("*/config.pbtxt")} == set(CONTRACT)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_config_parses_and_names_what_the_client_sends(name: str) -> None:
    config = load(name)
    assert config.name == name  # Triton requires the directory's name
    inputs, outputs = CONTRACT[name]
    assert {i.name: (i.data_type, list(i.dims)) for i in config.input} == inputs
    assert {o.name: (o.data_type, list(o.dims)) for o in config.output} == outputs
    required = [i.name for i in config.input if not i.optional]
    assert required, "a model with no required input"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_models_batch_and_image_models_run_on_the_gpu(name: str) -> None:
    config = load(name)
    kinds = {g.kind for g in config.instance_group}
    assert kinds, "instance groups are explicit"
    if config.backend == "vllm":
        # vLLM batches continuously itself; the backend wants it so.
        assert config.max_batch_size == 0 and config.model_transaction_policy.decoupled
        assert kinds == {mc.ModelInstanceGroup.KIND_GPU}
        engine = json.loads((TRITON / name / "1" / "model.json").read_text())
        assert engine["model"] == f"/models/{name}/1/weights"
        return
    if name == "imgtag-transport-check":
        # one small request at start-up: no batching, a CPU instance
        assert (config.backend, config.max_batch_size, kinds) == ("python", 0, {mc.ModelInstanceGroup.KIND_CPU})
        assert (TRITON / name / "1" / "model.py").is_file()
        return
    assert config.max_batch_size >= 32
    assert config.HasField("dynamic_batching")
    assert all(0 < size <= config.max_batch_size for size in config.dynamic_batching.preferred_batch_size)
    if name == "universal-sentence-encoder-multilingual":
        # Its tokeniser ops exist only as a Python extension: python backend, CPU (see config).
        assert (config.backend, kinds) == ("python", {mc.ModelInstanceGroup.KIND_CPU})
        assert (TRITON / "onnx_python_model.py").is_file()  # installed as its 1/model.py
    else:
        assert (config.backend, kinds) == ("onnxruntime", {mc.ModelInstanceGroup.KIND_GPU})


def test_the_triton_image_installs_the_runtime_versions_the_service_embeds() -> None:
    dockerfile = (TRITON / "Dockerfile").read_text()
    constraints = (REPO_ROOT / "constraints.txt").read_text().lower().splitlines()
    for package in ("onnxruntime", "onnxruntime-extensions"):
        pinned = [line.replace("_", "-") for line in constraints if line.split("==")[0].replace("_", "-") == package]
        if pinned:  # the service's embedded runtime is installed in this checkout
            assert pinned[0] in dockerfile.lower(), f"{package}: Triton and the service must agree"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


EMBEDDED = _importable("imgtag_inference.adapters.efficientnet")


@pytest.mark.skipif(not EMBEDDED, reason="the inference service's embedded models are not in this checkout")
def test_fill_script_writes_models_whose_tensors_match_the_configs(tmp_path: Path) -> None:
    import onnxruntime as ort

    repository = tmp_path / "repository"
    script = [sys.executable, str(TRITON / "fill_repository.py")]
    run = subprocess.run(
        [*script, "--repository", str(repository), "--models-dir", str(tmp_path / "models"), "--clip", "none"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("efficientnet-lite0", "universal-sentence-encoder-multilingual"):
        config = text_format.Parse((repository / name / "config.pbtxt").read_text(), mc.ModelConfig())
        options = ort.SessionOptions()
        if config.backend == "python":  # the tokeniser's custom ops, as 1/model.py registers them
            import onnxruntime_extensions

            options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
        model = str(repository / name / "1" / "model.onnx")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        assert {i.name for i in config.input} == {i.name for i in session.get_inputs()}
        assert {o.name for o in config.output} == {o.name for o in session.get_outputs()}
        for output in session.get_outputs():
            declared = next(o for o in config.output if o.name == output.name)
            assert list(declared.dims) == output.shape[1:]
    assert (repository / "universal-sentence-encoder-multilingual" / "1" / "model.py").is_file()
    # the VLM slot waits for its weights (a model that cannot load stops Triton at start-up)
    assert not (repository / "vlm-captioner").exists()
    assert "vlm-captioner: skipped, no weights" in run.stdout


@pytest.mark.skipif(not EMBEDDED, reason="the inference service's embedded models are not in this checkout")
@pytest.mark.parametrize(
    ("directory", "layout", "inputs"),
    [
        ("ViT-B-32__openai", "openclip", {"visual": {"pixels"}, "textual": {"text"}}),
        ("Tiny-HF", "hf", {"visual": {"pixels"}, "textual": {"input_ids", "attention_mask"}}),
    ],
)
def test_fill_script_installs_a_clip_model_with_configs_naming_its_tensors(
    tmp_path: Path, directory: str, layout: str, inputs: dict[str, set[str]]
) -> None:
    import onnxruntime as ort

    from imgtag_dev.clip_models import make_clip
    from imgtag_inference.adapters.clip_files import model_name

    models, repository = tmp_path / "models", tmp_path / "repository"
    make_clip(models / "clip" / directory, layout=layout)
    script = [sys.executable, str(TRITON / "fill_repository.py")]
    run = subprocess.run(
        [*script, "--repository", str(repository), "--models-dir", str(models), "--clip", directory],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    name = model_name(models / "clip" / directory)
    for tower in ("visual", "textual"):
        model = f"{name}-{tower}"
        config = text_format.Parse((repository / model / "config.pbtxt").read_text(), mc.ModelConfig())
        assert config.name == model and config.backend == "onnxruntime"
        assert {g.kind for g in config.instance_group} == {mc.ModelInstanceGroup.KIND_GPU}
        assert config.HasField("dynamic_batching")
        session = ort.InferenceSession(str(repository / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        assert {i.name for i in config.input} == {i.name for i in session.get_inputs()} == inputs[tower]
        assert {o.name for o in config.output} == {o.name for o in session.get_outputs()}
        for declared in config.input:  # written from the files: dims as the file has them
            actual = next(i for i in session.get_inputs() if i.name == declared.name)
            assert list(declared.dims) == actual.shape[1:]
