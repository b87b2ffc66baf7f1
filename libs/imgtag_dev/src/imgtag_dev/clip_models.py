"""Small, randomly initialised CLIP encoders written as real ONNX files in the layouts that
published CLIP models use (OpenCLIP/Immich and Hugging Face), with a real tokenizer.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

DIM = 16
IMAGE = 32
CONTEXT = 8
WORDS = ["[PAD]", "[UNK]", "a", "photo", "of", "cat", "dog", "car", "猫", "狗", "汽车"]


def _save(model: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def visual_encoder(weights: np.ndarray, *, input_name: str, output_name: str) -> onnx.ModelProto:
    """Flatten the image and project it: [N, 3, S, S] -> [N, DIM]."""
    nodes = [
        helper.make_node("Flatten", [input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "visual",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["n", 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["n", DIM])],
        [numpy_helper.from_array(weights, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def textual_encoder(table: np.ndarray, *, ids: str, mask: str | None, dtype: int, output_name: str) -> onnx.ModelProto:
    """Mean of the token vectors (of the unmasked tokens when a mask is an input)."""
    inputs = [helper.make_tensor_value_info(ids, dtype, ["n", CONTEXT])]
    nodes = [helper.make_node("Gather", ["table", ids], ["tokens"], axis=0)]
    if mask is None:
        nodes.append(helper.make_node("ReduceMean", ["tokens", "axes"], [output_name], keepdims=0))
    else:
        inputs.append(helper.make_tensor_value_info(mask, dtype, ["n", CONTEXT]))
        nodes += [
            helper.make_node("Cast", [mask], ["m"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),
            helper.make_node("Mul", ["tokens", "m3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axes"], [output_name], keepdims=0),
        ]
    graph = helper.make_graph(
        nodes,
        "textual",
        inputs,
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["n", DIM])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.array([2], np.int64), "last"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def tokenizer_json(pad: bool) -> str:
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    if pad:
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer.to_str()


def make_clip(directory: Path, *, layout: str = "openclip", seed: int = 0) -> dict[str, np.ndarray]:
    """Write a CLIP model into `directory`; returns its weights for computing expected vectors."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((3 * IMAGE * IMAGE, DIM)).astype(np.float32)
    table = rng.standard_normal((len(WORDS), DIM)).astype(np.float32)
    table[0] = 0  # padding adds nothing
    preprocess = {"size": [IMAGE, IMAGE], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    if layout == "openclip":
        _save(visual_encoder(weights, input_name="image", output_name="embedding"), directory / "visual/model.onnx")
        _save(
            textual_encoder(table, ids="text", mask=None, dtype=TensorProto.INT32, output_name="embedding"),
            directory / "textual/model.onnx",
        )
        (directory / "textual/tokenizer.json").write_text(tokenizer_json(pad=False))
        (directory / "visual/preprocess_cfg.json").write_text(json.dumps(preprocess))
        (directory / "config.json").write_text(json.dumps({"embed_dim": DIM, "text_cfg": {"context_length": CONTEXT}}))
    else:
        _save(
            visual_encoder(weights, input_name="pixel_values", output_name="image_embeds"),
            directory / "onnx/vision_model.onnx",
        )
        _save(
            textual_encoder(
                table, ids="input_ids", mask="attention_mask", dtype=TensorProto.INT64, output_name="text_embeds"
            ),
            directory / "onnx/text_model.onnx",
        )
        (directory / "tokenizer.json").write_text(tokenizer_json(pad=True))
        (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": CONTEXT}))
        (directory / "preprocessor_config.json").write_text(
            json.dumps(
                {"crop_size": {"height": IMAGE, "width": IMAGE}, "image_mean": [0.5] * 3, "image_std": [0.25] * 3}
            )
        )
        (directory / "config.json").write_text(json.dumps({"projection_dim": DIM}))
    return {"visual": weights, "table": table}


def expected_text(table: np.ndarray, text: str, *, mean: bool) -> np.ndarray:
    ids = [WORDS.index(w) if w in WORDS else 1 for w in text.split()][:CONTEXT]
    vector = table[ids].sum(axis=0) / (CONTEXT if mean else 1)
    return vector / np.linalg.norm(vector)
