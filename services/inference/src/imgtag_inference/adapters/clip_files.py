"""CLIP models from a directory, in the two layouts that are published as ONNX:

- OpenCLIP / Immich: config.json, visual/model.onnx (+ preprocess_cfg.json),
  textual/model.onnx (+ tokenizer.json, tokenizer_config.json);
- Hugging Face (Optimum / transformers.js): onnx/vision_model.onnx, onnx/text_model.onnx,
  tokenizer.json, preprocessor_config.json, config.json.

Multilingual models (e.g. XLM-Roberta-Base-ViT-B-32) need nothing else: their tokenizer.json
carries the SentencePiece vocabulary. Tokenising uses the `tokenizers` library (no PyTorch).

The image tower is run with a prefix grafted onto its graph (`visual_graph`): it takes uint8 RGB
pixels, NHWC, at the tower's size, and normalises them itself ((x / 255 - mean) / std, then
NCHW). That is what every backend is sent, so a Triton server gets a quarter of the bytes float32
pixels would take, and the fill script puts the same grafted graph into its repository."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.domain.models import ClipSpec

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CONTEXT = 77
# The grafted image input (same name and layout as the classifier's).
PIXELS = "pixels"
_PREFIX = "imgtag_preprocess/"
VISUAL_OUTPUTS = ("image_embeds", "embedding", "embeddings", "image_features")
TEXTUAL_OUTPUTS = ("text_embeds", "embedding", "embeddings", "text_features")


@dataclass(frozen=True)
class ClipFiles:
    directory: Path
    visual: Path
    textual: Path
    tokenizer: Path
    preprocess: dict
    config: dict
    tokenizer_config: dict


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def locate(directory: Path) -> ClipFiles | None:
    """The model files in `directory`, or None when it holds no complete CLIP model."""
    layouts = [
        (
            directory / "visual/model.onnx",
            directory / "textual/model.onnx",
            directory / "textual/tokenizer.json",
            directory / "visual/preprocess_cfg.json",
            directory / "textual/tokenizer_config.json",
        ),
        (
            directory / "onnx/vision_model.onnx",
            directory / "onnx/text_model.onnx",
            directory / "tokenizer.json",
            directory / "preprocessor_config.json",
            directory / "tokenizer_config.json",
        ),
    ]
    for visual, textual, tokenizer, preprocess, tokenizer_config in layouts:
        if visual.exists() and textual.exists() and tokenizer.exists():
            return ClipFiles(
                directory,
                visual,
                textual,
                tokenizer,
                _json(preprocess),
                _json(directory / "config.json"),
                _json(tokenizer_config),
            )
    return None


def find(models_dir: Path, name: str) -> ClipFiles | None:
    """The CLIP model to load from models_dir/clip/: `name`, or with "auto" the first complete one."""
    root = models_dir / "clip"
    if name in ("", "none") or not root.is_dir():
        return None
    if name != "auto":
        return locate(root / name)
    for candidate in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = locate(candidate)
        if files is not None:
            return files
    return None


def model_name(directory: Path) -> str:
    return "clip-" + re.sub(r"[^a-z0-9.-]+", "-", directory.name.lower()).strip("-")


def _image_size(files: ClipFiles) -> int:
    p, c = files.preprocess, files.config
    size = p.get("size") or p.get("crop_size") or c.get("vision_cfg", {}).get("image_size") or 224
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge") or 224
    if isinstance(size, list):
        size = size[0]
    return int(size)


def _context_length(files: ClipFiles) -> int:
    length = files.config.get("text_cfg", {}).get("context_length")
    if length is None:
        length = files.tokenizer_config.get("model_max_length", DEFAULT_CONTEXT)
    return int(length) if 0 < int(length) <= 1024 else DEFAULT_CONTEXT


def pick(names: Sequence[str], preferred: Sequence[str]) -> str:
    for name in preferred:
        if name in names:
            return name
    return names[0]


@dataclass(frozen=True)
class Preprocess:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def preprocess(files: ClipFiles) -> Preprocess:
    """Image size, mean and std from the model's preprocessing config (OpenAI's by default)."""
    mean = tuple(files.preprocess.get("mean") or files.preprocess.get("image_mean") or OPENAI_MEAN)
    std = tuple(files.preprocess.get("std") or files.preprocess.get("image_std") or OPENAI_STD)
    return Preprocess(_image_size(files), mean, std)  # type: ignore[arg-type]


def version(files: ClipFiles) -> str:
    """Digest of both towers and the tokenizer: new weights are a new embedding space."""
    digest = hashlib.sha256()
    for path in (files.visual, files.textual, files.tokenizer):
        digest.update(file_sha256(path))
    return digest.hexdigest()[:12]


def file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def has_external_data(path: Path) -> bool:
    # Models over 2 GB keep their weights in side files that only a path load can find.
    return any(path.parent.glob(path.name + "_data")) or any(path.parent.glob(path.stem + ".onnx.data"))


def visual_graph(files: ClipFiles, pre: Preprocess, blob: bytes | None = None) -> onnx.ModelProto:
    """The image tower (its file, or `blob` already read from it) with a uint8 NHWC input
    `pixels` that it normalises itself. External weights stay external (their paths are relative
    to the tower's directory)."""
    model = onnx.load_from_string(blob) if blob is not None else onnx.load(str(files.visual), load_external_data=False)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    original = next(i for i in graph.input if i.name not in initializers)
    batch = original.type.tensor_type.shape.dim[0]
    pixels = helper.make_tensor_value_info(
        PIXELS, TensorProto.UINT8, [batch.dim_param or batch.dim_value or "n", pre.size, pre.size, 3]
    )
    p = _PREFIX
    constants = [
        numpy_helper.from_array(np.array(255.0, np.float32), p + "scale"),
        numpy_helper.from_array(np.array(pre.mean, np.float32), p + "mean"),
        numpy_helper.from_array(np.array(pre.std, np.float32), p + "std"),
    ]
    # The same float32 operations, in the same order, as numpy's (x / 255 - mean) / std.
    nodes = [
        helper.make_node("Cast", [PIXELS], [p + "float"], to=TensorProto.FLOAT),
        helper.make_node("Div", [p + "float", p + "scale"], [p + "unit"]),
        helper.make_node("Sub", [p + "unit", p + "mean"], [p + "centred"]),
        helper.make_node("Div", [p + "centred", p + "std"], [p + "normalised"]),
        helper.make_node("Transpose", [p + "normalised"], [original.name], perm=[0, 3, 1, 2]),
    ]
    graph.input.remove(original)
    graph.input.insert(0, pixels)
    graph.initializer.extend(constants)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    return model


def visual_source(files: ClipFiles, pre: Preprocess, blob: bytes) -> Path | bytes:
    """The grafted tower for an ONNX Runtime session: bytes, or a file beside the original when
    its weights are external (a byte load cannot find them)."""
    model = visual_graph(files, pre, blob)
    if not has_external_data(files.visual):
        return model.SerializeToString()
    target = files.visual.with_name(files.visual.stem + ".uint8.onnx")
    temporary = target.with_name(target.name + ".partial")
    temporary.write_bytes(model.SerializeToString())
    temporary.replace(target)
    return target


def load(files: ClipFiles, backend: OnnxRuntimeBackend) -> ClipSpec:
    """Create both towers' sessions and the spec (blocking). Each file is read once (a model
    file may be a pipe) and its bytes serve both the session and the version digest."""
    name = model_name(files.directory)
    pre = preprocess(files)
    digest = hashlib.sha256()
    blobs = {}
    for part, path in (("visual", files.visual), ("textual", files.textual), ("tokenizer", files.tokenizer)):
        blobs[part] = path.read_bytes()
        digest.update(hashlib.sha256(blobs[part]).digest())
    visual = backend.load(f"{name}-visual", visual_source(files, pre, blobs["visual"]))
    textual = backend.load(f"{name}-textual", files.textual if has_external_data(files.textual) else blobs["textual"])
    tokenize = tokenizer(files, [(i.name, i.type) for i in textual.get_inputs()], blobs["tokenizer"].decode())
    visual_output = pick([o.name for o in visual.get_outputs()], VISUAL_OUTPUTS)
    textual_output = pick([o.name for o in textual.get_outputs()], TEXTUAL_OUTPUTS)
    probe = visual.run([visual_output], {PIXELS: np.zeros((1, pre.size, pre.size, 3), np.uint8)})[0]
    text_probe = textual.run([textual_output], tokenize(["a photo"]))[0]
    if probe.shape[-1] != text_probe.shape[-1] or probe.ndim != 2:
        raise ValueError(
            f"{files.directory}: image vectors {probe.shape} and text vectors {text_probe.shape} do not share a space"
        )
    return spec(
        files,
        pre,
        tokenize,
        version=digest.hexdigest()[:12],
        dimension=int(probe.shape[-1]),
        visual_output=visual_output,
        textual_output=textual_output,
    )


def tokenizer(files: ClipFiles, inputs: Sequence[tuple[str, str]], text: str | None = None):
    """texts -> the text tower's inputs (token ids, and the attention mask when it takes one),
    padded to the context length, in the dtypes the tower declares ("tensor(int32)", "INT32", ...)."""
    tok = Tokenizer.from_str(text if text is not None else files.tokenizer.read_text())
    context = _context_length(files)
    padding = tok.padding or {}
    pad_id = padding.get("pad_id", 0)
    tok.no_padding()
    tok.enable_truncation(context)
    tok.enable_padding(length=context, pad_id=pad_id)
    dtypes = [(n, np.int32 if "int32" in t.lower() else np.int64) for n, t in inputs]

    def tokenize(texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings])
        return {n: (mask if "mask" in n.lower() else ids).astype(dtype) for n, dtype in dtypes}

    return tokenize


def spec(
    files: ClipFiles,
    pre: Preprocess,
    tokenize,
    *,
    version: str,
    dimension: int,
    visual_output: str,
    textual_output: str,
) -> ClipSpec:
    name = model_name(files.directory)
    multilingual = "xlm" in name or "multilingual" in name or "m-clip" in name
    return ClipSpec(
        name=name,
        display_name=f"CLIP {files.directory.name}",
        version=version,
        dimension=dimension,
        image_size=pre.size,
        visual_input=PIXELS,
        visual_output=visual_output,
        textual_output=textual_output,
        tokenize=tokenize,
        languages=() if multilingual else ("en",),
    )
