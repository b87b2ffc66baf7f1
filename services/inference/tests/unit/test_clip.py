"""CLIP from a model directory: both published ONNX layouts, both towers in one space."""

from __future__ import annotations

import numpy as np
import pytest

from imgtag_common.errors import NotFound
from imgtag_dev.clip_models import expected_text, make_clip
from imgtag_inference.adapters import clip_files
from imgtag_inference.adapters.embedded import EmbeddedModelLoader
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.domain import images
from imgtag_inference.domain.engine import ImageRequest, InferenceEngine
from imgtag_inference.domain.models import LoadedModels, Task

from .conftest import photo


async def _engine(backend, executor, loaded, clip) -> InferenceEngine:
    engine = InferenceEngine(backend=backend, executor=executor)

    async def ready() -> LoadedModels:
        return LoadedModels(classifier=loaded.classifier, text=loaded.text, clip=clip)

    await engine.load(ready)
    return engine


@pytest.mark.parametrize("layout", ["openclip", "huggingface"])
async def test_a_clip_directory_loads_and_its_towers_share_a_space(tmp_path, backend, executor, loaded, layout) -> None:
    weights = make_clip(tmp_path / "clip" / "Tiny-CLIP", layout=layout)
    files = clip_files.find(tmp_path, "auto")
    assert files is not None
    clip = clip_files.load(files, backend)
    assert clip.name == "clip-tiny-clip" and clip.dimension == 16 and clip.image_size == 32
    assert clip.space == f"clip-tiny-clip:{clip.version}"

    engine = await _engine(backend, executor, loaded, clip)
    text = await engine.embed_texts(["a photo of cat", "猫"], clip.space)
    assert {e.model for e in text} == {"models/clip-tiny-clip-textual"} and {e.space for e in text} == {clip.space}
    mean = layout == "openclip"  # the OpenCLIP stand-in averages over the padded context
    np.testing.assert_allclose(text[0].values, expected_text(weights["table"], "a photo of cat", mean=mean), atol=1e-5)

    image = images.decode(photo("chelsea.png"))
    pixels = normalised(images.clip_pixels(image, 32), (0.5,) * 3, (0.25,) * 3)
    want = pixels.reshape(-1) @ weights["visual"]
    (embedding,) = await engine.embed_images([ImageRequest(data=photo("chelsea.png"))], clip.space)
    np.testing.assert_allclose(embedding.values, want / np.linalg.norm(want), rtol=1e-4, atol=1e-5)

    analysis = await engine.analyse(ImageRequest(data=photo("chelsea.png"), want_embeddings=True))
    assert [(e.model, e.space) for e in analysis.embeddings] == [
        ("models/efficientnet-lite0", loaded.classifier.space),
        ("models/clip-tiny-clip-visual", clip.space),
    ]
    spaces, default_text = engine.spaces()
    cross = [s for s in spaces if s.cross_modal]
    assert [(s.name, s.image_model, s.text_model) for s in cross] == [
        (clip.space, "models/clip-tiny-clip-visual", "models/clip-tiny-clip-textual")
    ]
    assert default_text == loaded.text.space


async def test_new_weights_are_a_new_space(tmp_path, executor) -> None:
    backend = OnnxRuntimeBackend(executor)
    make_clip(tmp_path / "a" / "clip" / "m", seed=1)
    make_clip(tmp_path / "b" / "clip" / "m", seed=2)
    first = clip_files.load(clip_files.find(tmp_path / "a", "m"), backend)
    second = clip_files.load(clip_files.find(tmp_path / "b", "m"), backend)
    again = clip_files.load(clip_files.find(tmp_path / "a", "m"), backend)
    assert first.space != second.space and first.space == again.space


async def test_without_clip_its_spaces_are_not_found(engine) -> None:
    with pytest.raises(NotFound):
        await engine.embed_images([ImageRequest(data=photo("chelsea.png"))], "clip-x:000000000000")


async def test_the_loader_lists_clip_and_keeps_serving_when_it_is_broken(tmp_path, executor, models_dir) -> None:
    make_clip(tmp_path / "clip" / "broken")
    (tmp_path / "clip" / "broken" / "textual" / "model.onnx").write_bytes(b"not onnx")
    (tmp_path / "efficientnet-lite0").symlink_to(models_dir / "efficientnet-lite0")
    loader = EmbeddedModelLoader(OnnxRuntimeBackend(executor), executor, tmp_path, ocr_enabled=False)
    assert {m.name for m in loader.configured()} >= {"models/clip-broken-visual", "models/clip-broken-textual"}
    loaded = await loader.load()
    assert loaded.clip is None
    states = {m.name: (m.task, m.state.value, bool(m.last_error)) for m in loaded.infos}
    assert states["models/clip-broken-textual"] == (Task.TEXT_EMBEDDING, "FAILED", True)
    assert states["models/efficientnet-lite0"] == (Task.IMAGE_TAGGING, "READY", False)


def test_directories_without_a_complete_model_are_ignored(tmp_path) -> None:
    (tmp_path / "clip" / "empty").mkdir(parents=True)
    (tmp_path / "clip" / ".half.partial" / "visual").mkdir(parents=True)
    assert clip_files.find(tmp_path, "auto") is None
    assert clip_files.find(tmp_path, "none") is None


def normalised(pixels: np.ndarray, mean, std) -> np.ndarray:
    """CLIP's normalisation in numpy: float32 [3, S, S] from uint8 [S, S, 3]."""
    unit = (np.asarray(pixels, np.float32) / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32)
    return unit.transpose(2, 0, 1)


def test_the_image_tower_takes_uint8_pixels_and_normalises_them_like_numpy(tmp_path) -> None:
    import onnxruntime as ort

    make_clip(tmp_path / "clip" / "m")
    files = clip_files.find(tmp_path, "m")
    pre = clip_files.preprocess(files)
    assert (pre.size, pre.mean, pre.std) == (32, (0.5,) * 3, (0.25,) * 3)
    grafted = ort.InferenceSession(clip_files.visual_graph(files, pre).SerializeToString())
    published = ort.InferenceSession(str(files.visual))
    pixels = images.clip_pixels(images.decode(photo("coffee.png")), 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    [(name, shape, kind)] = [(i.name, i.shape, i.type) for i in grafted.get_inputs()]
    assert (name, shape[1:], kind) == ("pixels", [32, 32, 3], "tensor(uint8)")
    got = grafted.run(None, {"pixels": pixels[None]})[0]
    want = published.run(None, {published.get_inputs()[0].name: normalised(pixels, pre.mean, pre.std)[None]})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
