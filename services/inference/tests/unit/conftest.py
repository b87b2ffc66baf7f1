"""Real models, loaded once per test session: the converted EfficientNet-Lite0 and the
multilingual sentence encoder on a real ONNX Runtime backend (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgtag_common.blocking import BlockingExecutor
from imgtag_dev.testing import SKIMAGE_PHOTOS
from imgtag_inference.adapters.embedded import EmbeddedModelLoader
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.domain.engine import InferenceEngine
from imgtag_inference.domain.models import LoadedModels


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def executor():
    pool = BlockingExecutor(4)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="session")
def backend(executor) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(executor)


@pytest.fixture(scope="session")
def loaded(backend, executor, models_dir) -> LoadedModels:
    """Classifier and text encoder (OCR and CLIP have their own tests)."""
    loader = EmbeddedModelLoader(backend, executor, models_dir, clip_model="none", ocr_enabled=False)
    return LoadedModels(classifier=loader._load_classifier(), text=loader._load_text_encoder())


@pytest.fixture
async def engine(backend, executor, loaded) -> InferenceEngine:
    engine = InferenceEngine(backend=backend, executor=executor)

    async def ready() -> LoadedModels:
        return loaded

    await engine.load(ready)
    return engine


def photo(name: str) -> bytes:
    return (SKIMAGE_PHOTOS / name).read_bytes()


def preview(name: str) -> bytes:
    """The photo as the catalog sends it: a WebP preview (quality 82; these are under 1920 px)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.open(SKIMAGE_PHOTOS / name).convert("RGB").save(out, "WEBP", quality=82, method=4)
    return out.getvalue()
