"""One real Triton server per test session (tritonserver 2.51 from PyPI's nvidia-pytriton, CPU,
python backend), serving the CPU variant of deploy/triton filled from the same models directory
as the embedded runtime it is compared with: the converted EfficientNet-Lite0, the multilingual
text encoder, and a small CLIP model in the OpenCLIP layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgtag_common.blocking import BlockingExecutor
from imgtag_dev.clip_models import make_clip
from imgtag_dev.processes import tail
from imgtag_dev.triton import TritonServer, fill_module
from imgtag_inference.adapters import clip_files
from imgtag_inference.adapters.embedded import EmbeddedModelLoader
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.domain.models import LoadedModels

CLIP_DIRECTORY = "Tiny-CLIP"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("models")
    make_clip(models / "clip" / CLIP_DIRECTORY, layout="openclip")
    return models


@pytest.fixture(scope="session")
def executor():
    pool = BlockingExecutor(2)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="session")
def embedded(executor, models_dir) -> tuple[OnnxRuntimeBackend, LoadedModels]:
    """The embedded runtime, the reference Triton's answers are compared with."""
    backend = OnnxRuntimeBackend(executor, intra_op_threads=1)
    loader = EmbeddedModelLoader(backend, executor, models_dir, clip_model=CLIP_DIRECTORY, ocr_enabled=False)
    clip = clip_files.load(clip_files.find(models_dir, CLIP_DIRECTORY), backend)
    return backend, LoadedModels(classifier=loader._load_classifier(), text=loader._load_text_encoder(), clip=clip)


@pytest.fixture(scope="session")
def triton(tmp_path_factory, models_dir, embedded):
    """The server, started once (its repository filled by deploy/triton/fill_repository.py)."""
    work = tmp_path_factory.mktemp("triton")
    written = fill_module().fill(work / "repository", models_dir, clip=CLIP_DIRECTORY, variant="cpu")
    assert written == [
        "efficientnet-lite0",
        "universal-sentence-encoder-multilingual",
        "imgtag-transport-check",
        "clip-tiny-clip-visual",
        "clip-tiny-clip-textual",
    ]
    server = TritonServer(work / "repository", work / "tritonserver.log")
    try:
        server.start()
        yield server
    except Exception:
        print(tail(server.log_path, 60))
        raise
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
