"""CLIP models from a directory, in the two layouts that are published as ONNX:

- OpenCLIP / Immich: config.json, visual/model.onnx (+ preprocess_cfg.json),
  textual/model.onnx (+ tokenizer.json, tokenizer_config.json);
- Hugging Face (Optimum / transformers.js): onnx/vision_model.onnx, onnx/text_model.onnx,
  tokenizer.json, preprocessor_config.json, config.json.

Multilingual models (e.g. XLM-Roberta-Base-ViT-B-32) need nothing else: their tokenizer.json
carries the SentencePiece vocabulary. Tokenising uses the `tokenizers` library (no PyTorch)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend
from imgtag_inference.domain.models import ClipSpec

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CONTEXT = 77
_VISUAL_OUTPUTS = ("image_embeds", "embedding", "embeddings", "image_features")
_TEXTUAL_OUTPUTS = ("text_embeds", "embedding", "embeddings", "text_features")


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


def _pick(names: Sequence[str], preferred: Sequence[str]) -> str:
    for name in preferred:
        if name in names:
            return name
    return names[0]


def load(files: ClipFiles, backend: OnnxRuntimeBackend) -> ClipSpec:
    """Create both towers' sessions and the spec (blocking). The version is a digest of both
    towers and the tokenizer, so new weights are a new embedding space."""
    name = model_name(files.directory)
    digest = hashlib.sha256()
    blobs = {}
    for part, path in (("visual", files.visual), ("textual", files.textual), ("tokenizer", files.tokenizer)):
        blobs[part] = path.read_bytes()
        digest.update(hashlib.sha256(blobs[part]).digest())
    visual = backend.load(f"{name}-visual", _with_external_data(files.visual, blobs["visual"]))
    textual = backend.load(f"{name}-textual", _with_external_data(files.textual, blobs["textual"]))
    tokenizer = Tokenizer.from_str(blobs["tokenizer"].decode())
    context = _context_length(files)
    padding = tokenizer.padding or {}
    pad_id = padding.get("pad_id", 0)
    tokenizer.no_padding()
    tokenizer.enable_truncation(context)
    tokenizer.enable_padding(length=context, pad_id=pad_id)
    inputs = [(i.name, np.int32 if i.type == "tensor(int32)" else np.int64) for i in textual.get_inputs()]

    def tokenize(texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings])
        return {n: (mask if "mask" in n.lower() else ids).astype(dtype) for n, dtype in inputs}

    size = _image_size(files)
    mean = tuple(files.preprocess.get("mean") or files.preprocess.get("image_mean") or OPENAI_MEAN)
    std = tuple(files.preprocess.get("std") or files.preprocess.get("image_std") or OPENAI_STD)
    visual_input = visual.get_inputs()[0].name
    visual_output = _pick([o.name for o in visual.get_outputs()], _VISUAL_OUTPUTS)
    textual_output = _pick([o.name for o in textual.get_outputs()], _TEXTUAL_OUTPUTS)
    probe = visual.run([visual_output], {visual_input: np.zeros((1, 3, size, size), np.float32)})[0]
    text_probe = textual.run([textual_output], tokenize(["a photo"]))[0]
    if probe.shape[-1] != text_probe.shape[-1] or probe.ndim != 2:
        raise ValueError(
            f"{files.directory}: image vectors {probe.shape} and text vectors {text_probe.shape} do not share a space"
        )
    multilingual = "xlm" in name or "multilingual" in name or "m-clip" in name
    return ClipSpec(
        name=name,
        display_name=f"CLIP {files.directory.name}",
        version=digest.hexdigest()[:12],
        dimension=int(probe.shape[-1]),
        image_size=size,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        visual_input=visual_input,
        visual_output=visual_output,
        textual_output=textual_output,
        tokenize=tokenize,
        languages=() if multilingual else ("en",),
    )


def _with_external_data(path: Path, blob: bytes) -> Path | bytes:
    # Models over 2 GB keep their weights in side files that only a path load can find.
    if any(path.parent.glob(path.name + "_data")) or any(path.parent.glob(path.stem + ".onnx.data")):
        return path
    return blob
