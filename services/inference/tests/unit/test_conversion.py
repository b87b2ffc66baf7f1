"""EfficientNet-Lite0 converted without PyTorch: the ONNX graph computes what the weights say."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from imgtag_dev.testing import SKIMAGE_PHOTOS
from imgtag_inference.adapters import efficientnet
from imgtag_inference.adapters.torch_pickle import read_state_dict
from imgtag_inference.domain.images import classifier_pixels
from imgtag_inference.domain.vocabulary import imagenet_vocabulary

# ---------------------------------------------------------------- a plain numpy forward pass


def _pad(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, int]:
    before, after, out = efficientnet.same_padding(x.shape[1], k, s)
    return np.pad(x, ((0, 0), (before, after), (before, after))), out


def _conv(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool = False) -> np.ndarray:
    """x [C, H, W], w [O, I, k, k]; TensorFlow SAME padding."""
    k = w.shape[2]
    xp, out = _pad(x, k, stride)
    y = np.zeros((w.shape[0], out, out))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i : i + stride * out : stride, j : j + stride * out : stride]
            y += w[:, 0, i, j][:, None, None] * patch if depthwise else np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return y


def _bn(x: np.ndarray, state: dict, name: str) -> np.ndarray:
    g, b = state[f"{name}.weight"], state[f"{name}.bias"]
    m, v = state[f"{name}.running_mean"], state[f"{name}.running_var"]
    return ((x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-3)) * g[:, None, None] + b[:, None, None]


def numpy_forward(state: dict, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and pooled features for one uint8 [224, 224, 3] image, layer by layer."""
    relu6 = lambda t: np.clip(t, 0, 6)  # noqa: E731
    x = (pixels.astype(np.float64) / 127.5 - 1).transpose(2, 0, 1)
    x = relu6(_bn(_conv(x, state["_conv_stem.weight"], 2), state, "_bn0"))
    for spec in efficientnet.block_specs(state):
        p = f"_blocks.{spec.index}"
        inputs = x
        if f"{p}._expand_conv.weight" in state:
            x = relu6(_bn(_conv(x, state[f"{p}._expand_conv.weight"], 1), state, f"{p}._bn0"))
        x = relu6(_bn(_conv(x, state[f"{p}._depthwise_conv.weight"], spec.stride, depthwise=True), state, f"{p}._bn1"))
        x = _bn(_conv(x, state[f"{p}._project_conv.weight"], 1), state, f"{p}._bn2")
        if spec.skip:
            x = x + inputs
    x = relu6(_bn(_conv(x, state["_conv_head.weight"], 1), state, "_bn1"))
    features = x.mean(axis=(1, 2))
    return state["_fc.weight"] @ features + state["_fc.bias"], features


@pytest.fixture(scope="module")
def state() -> dict:
    return read_state_dict(efficientnet.weights_path())


@pytest.fixture(scope="module")
def session(models_dir) -> ort.InferenceSession:
    return ort.InferenceSession(str(efficientnet.converted(models_dir).path), providers=["CPUExecutionProvider"])


def _pixels(name: str) -> np.ndarray:
    return classifier_pixels(Image.open(SKIMAGE_PHOTOS / name).convert("RGB"), 224)


def test_the_onnx_graph_equals_a_numpy_forward_pass_of_the_same_weights(state, session) -> None:
    for name in ("chelsea.png", "rocket.jpg"):
        pixels = _pixels(name)
        logits, embedding = session.run(["logits", "embedding"], {"pixels": pixels[None]})
        want_logits, want_features = numpy_forward(state, pixels)
        np.testing.assert_allclose(embedding[0], want_features, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(logits[0], want_logits, rtol=1e-3, atol=2e-3)


@pytest.mark.parametrize(
    ("photo", "expected_top"),
    [
        ("chelsea.png", {"tiger cat", "egyptian cat", "tabby cat"}),
        ("coffee.png", {"espresso"}),
        ("rocket.jpg", {"missile", "projectile"}),
        ("motorcycle_right.png", {"moped", "motor scooter"}),
    ],
)
def test_top_classes_on_known_photos(session, photo, expected_top) -> None:
    logits = session.run(["logits"], {"pixels": _pixels(photo)[None]})[0][0]
    top = [imagenet_vocabulary().classes[i].tag.label for i in np.argsort(-logits)[: len(expected_top)]]
    assert set(top) == expected_top, top


def test_the_graph_has_two_outputs_and_a_compact_uint8_input(session) -> None:
    (pixels,) = session.get_inputs()
    assert pixels.type == "tensor(uint8)" and pixels.shape[1:] == [224, 224, 3]
    assert {o.name: o.shape[1] for o in session.get_outputs()} == {"logits": 1000, "embedding": 1280}


def test_batches_give_the_same_rows_as_single_images(session) -> None:
    images = np.stack([_pixels("chelsea.png"), _pixels("coffee.png")])
    batched = session.run(["embedding"], {"pixels": images})[0]
    single = session.run(["embedding"], {"pixels": images[1:]})[0]
    np.testing.assert_allclose(batched[1], single[0], rtol=1e-4, atol=1e-5)


def test_conversion_is_cached_and_safe_when_processes_start_together(tmp_path) -> None:
    results, errors = [], []

    def convert() -> None:
        try:
            results.append(efficientnet.converted(tmp_path))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=convert) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.path for r in results}) == 1
    files = list((tmp_path / "efficientnet-lite0").iterdir())
    assert files == [results[0].path], files  # no temporary file left behind
    onnx.checker.check_model(str(results[0].path))
    mtime = results[0].path.stat().st_mtime_ns
    again = efficientnet.converted(tmp_path)
    assert again == results[0] and again.path.stat().st_mtime_ns == mtime


def test_checkpoints_that_would_run_code_are_refused(tmp_path) -> None:
    path = tmp_path / "evil.pth"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(path, "wb") as file:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, file)
        pickle.dump({"x": Evil()}, file)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing builtins\.print"):
        read_state_dict(path)
