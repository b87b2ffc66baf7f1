"""What the inference service knows about its models, independent of the runtime that executes
them, and the ports the domain needs (implemented in adapters/): a backend that runs named models
on batches of arrays (ONNX Runtime in process, or a Triton server), OCR, and a captioner slot."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import numpy as np


class Task(StrEnum):
    IMAGE_EMBEDDING = "IMAGE_EMBEDDING"
    TEXT_EMBEDDING = "TEXT_EMBEDDING"
    IMAGE_TAGGING = "IMAGE_TAGGING"
    CAPTIONING = "CAPTIONING"
    OCR = "OCR"


class State(StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"
    DISABLED = "DISABLED"


class InferenceBackend(Protocol):
    """Runs models by name on batches. The ONNX Runtime adapter holds in-process sessions; a
    Triton adapter sends the same inputs (same names, dtypes and shapes) to a server."""

    name: str  # "onnxruntime", "triton"
    device: str  # "CPU", "GPU"
    device_name: str

    async def run(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class TextReader(Protocol):
    """OCR: the text in an image, lines joined with newlines (blocking; run in the executor)."""

    def read(self, rgb: np.ndarray) -> str: ...


class Captioner(Protocol):
    """A sentence about an image (vision-language providers plug in here)."""

    model: str

    async def caption(self, image: bytes, language: str) -> str: ...


class ImageSource(Protocol):
    """Encoded image bytes by storage key."""

    async def read(self, key: str, *, limit: int) -> bytes: ...


@dataclass(frozen=True)
class ModelInfo:
    """One model as ListModels shows it."""

    name: str  # "models/efficientnet-lite0"
    display_name: str
    task: Task
    backend: str
    version: str
    embedding_dimension: int = 0
    embedding_space: str = ""
    default_for_task: bool = False
    languages: tuple[str, ...] = ()
    max_batch_size: int = 0
    state: State = State.LOADING
    last_error: str = ""
    load_time: datetime | None = None
    device: str = "CPU"
    device_name: str = ""


def space_name(model: str, version: str) -> str:
    """Embedding spaces are named after the model and a digest of its weights, so a new model or
    new weights is a new space (and embeddings of two spaces are never compared). Only
    [A-Za-z0-9._:-]: the catalog puts space names into index definitions."""
    return f"{model}:{version}"


@dataclass(frozen=True)
class ClassifierSpec:
    """The ImageNet classifier with a pooled embedding (EfficientNet-Lite0)."""

    model: str  # backend model id and resource id, "efficientnet-lite0"
    display_name: str
    version: str
    input: str  # uint8 [N, size, size, 3] RGB
    logits: str
    embedding: str
    input_size: int
    dimension: int

    @property
    def space(self) -> str:
        return space_name(self.model, self.version)


@dataclass(frozen=True)
class TextEncoderSpec:
    """A text tower taking strings (tokenised in the graph)."""

    model: str
    display_name: str
    version: str
    input: str  # string [N]
    output: str
    dimension: int
    languages: tuple[str, ...] = ()

    @property
    def space(self) -> str:
        return space_name(self.model, self.version)


@dataclass(frozen=True)
class ClipSpec:
    """A CLIP model: image and text towers whose vectors share one space."""

    name: str  # "clip-vit-b-32"; the towers are "<name>-visual" and "<name>-textual"
    display_name: str
    version: str  # digest over both towers
    dimension: int
    image_size: int
    visual_input: str  # uint8 [N, size, size, 3] RGB (the tower normalises; see adapters/clip_files.py)
    visual_output: str
    textual_output: str
    # texts -> the textual tower's inputs (token ids, attention mask) in its dtypes
    tokenize: Callable[[Sequence[str]], dict[str, np.ndarray]] = field(compare=False)
    languages: tuple[str, ...] = ()

    @property
    def visual_model(self) -> str:
        return f"{self.name}-visual"

    @property
    def textual_model(self) -> str:
        return f"{self.name}-textual"

    @property
    def space(self) -> str:
        return space_name(self.name, self.version)


@dataclass(frozen=True)
class LoadedModels:
    """What a loader made ready on a backend."""

    classifier: ClassifierSpec
    text: TextEncoderSpec
    clip: ClipSpec | None = None
    reader: TextReader | None = None
    reader_model: str = ""
    captioner: Captioner | None = None
    load_time: datetime | None = None
    # every model as ListModels shows it (optional ones that failed to load: FAILED, with why)
    infos: tuple[ModelInfo, ...] = ()


@dataclass(frozen=True)
class Embedding:
    model: str  # "models/..."
    space: str
    values: np.ndarray  # float32, L2-normalized


@dataclass(frozen=True)
class PredictedTag:
    label: str
    names: dict[str, str]
    category: str
    confidence: float
    model: str


@dataclass(frozen=True)
class ImageAnalysis:
    tags: list[PredictedTag]
    caption: str = ""
    ocr_text: str = ""
    models: list[str] = field(default_factory=list)
    embeddings: list[Embedding] = field(default_factory=list)


@dataclass(frozen=True)
class EmbeddingSpace:
    name: str
    dimension: int
    image_model: str = ""  # "models/..." embedding images into it
    text_model: str = ""  # "models/..." embedding texts into it

    @property
    def cross_modal(self) -> bool:
        return bool(self.image_model and self.text_model)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
