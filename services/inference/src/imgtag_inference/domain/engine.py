"""The inference service's rules: which models answer what, per-item failures in batches, tags
from class probabilities, colours and text, embeddings that name their space.

Models load once (`load`), in the background after the server starts; until then every call
is UNAVAILABLE (callers such as the catalog's pipeline wait and retry) and health says
NOT_SERVING. Nothing is ever unloaded. A remote backend that goes away (Triton) suspends the
engine: calls are UNAVAILABLE, not failures of the images they carry, until it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import ImgTagError, InvalidArgument, NotFound, Unavailable
from imgtag_inference.domain import colours, images
from imgtag_inference.domain.batching import MicroBatcher
from imgtag_inference.domain.models import (
    ClipSpec,
    Embedding,
    EmbeddingSpace,
    ImageAnalysis,
    ImageSource,
    InferenceBackend,
    LoadedModels,
    ModelInfo,
    PredictedTag,
    State,
    Task,
    l2_normalize,
)
from imgtag_inference.domain.vocabulary import (
    MIN_CONFIDENCE,
    MIN_LEADING_CLASS,
    TEXTURE_CONFIDENCE,
    Vocabulary,
    imagenet_vocabulary,
)

log = logging.getLogger(__name__)

MAX_IMAGES = 64
MAX_TEXTS = 256
MAX_TEXT_CHARS = 4096
DEFAULT_MAX_TAGS = 20
# Images smaller than this (short side, pixels) get no tags: the classifier sees 224 px and a few
# hundred pixels say nothing reliable about colours either (16 px of noise blur to "gray").
MIN_TAG_PX = 32
COLOUR_MODEL = "models/colours"


@dataclass(frozen=True)
class TaggingRules:
    min_confidence: float = MIN_CONFIDENCE
    texture_confidence: float = TEXTURE_CONFIDENCE
    min_leading_class: float = MIN_LEADING_CLASS
    colour_min_share: float = colours.MIN_SHARE


@dataclass(frozen=True)
class ImageRequest:
    """One image to analyse: bytes, or a storage key to read them from."""

    id: str = ""
    data: bytes = b""
    storage_key: str = ""
    want_caption: bool = False
    want_ocr: bool = False
    want_embeddings: bool = False
    max_tags: int = 0
    min_confidence: float = 0.0
    language: str = ""


@dataclass
class _Batchers:
    classifier: MicroBatcher
    text: MicroBatcher
    clip_image: MicroBatcher | None = None
    clip_text: MicroBatcher | None = None


@dataclass
class InferenceEngine:
    backend: InferenceBackend
    executor: BlockingExecutor
    images_source: ImageSource | None = None
    rules: TaggingRules = TaggingRules()
    max_batch: int = 32
    batch_window_s: float = 0.005
    max_image_bytes: int = 32 * 1024 * 1024
    vocabulary: Vocabulary = field(default_factory=imagenet_vocabulary)
    models_loaded: LoadedModels | None = None
    load_error: str = ""
    # Why the backend cannot run models now (a Triton server that is down); "" when it can.
    suspended: str = ""
    _batchers: _Batchers | None = None

    # ------------------------------------------------------------------ life cycle

    @property
    def ready(self) -> bool:
        return self.models_loaded is not None

    async def load(self, loader: Callable[[], Awaitable[LoadedModels]]) -> None:
        """Load every model (once); on failure the service stays NOT_SERVING with the reason."""
        try:
            loaded = await loader()
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("models failed to load")
            raise
        self._batchers = _Batchers(
            classifier=MicroBatcher(self._classify_batch, max_batch=self.max_batch, window_s=self.batch_window_s),
            text=MicroBatcher(self._text_batch, max_batch=self.max_batch, window_s=self.batch_window_s),
        )
        if loaded.clip is not None:
            self._batchers.clip_image = MicroBatcher(
                self._clip_image_batch, max_batch=self.max_batch, window_s=self.batch_window_s
            )
            self._batchers.clip_text = MicroBatcher(
                self._clip_text_batch, max_batch=self.max_batch, window_s=self.batch_window_s
            )
        self.models_loaded = loaded

    def suspend(self, reason: str) -> None:
        """The backend is gone: every call answers UNAVAILABLE with `reason` until `resume`."""
        self.suspended = reason

    def resume(self) -> None:
        self.suspended = ""

    def _models(self) -> LoadedModels:
        if self.suspended:
            raise Unavailable(self.suspended, reason="BACKEND_UNAVAILABLE")
        if self.models_loaded is None:
            reason = f" (loading failed: {self.load_error})" if self.load_error else ""
            raise Unavailable("the inference models are still loading; retry later" + reason, reason="MODELS_LOADING")
        return self.models_loaded

    @property
    def batchers(self) -> _Batchers:
        self._models()
        assert self._batchers is not None
        return self._batchers

    # ------------------------------------------------------------------ forward passes

    async def _classify_batch(self, pixels: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        spec = self._models().classifier
        out = await self.backend.run(spec.model, {spec.input: np.stack(pixels)})
        logits = out[spec.logits].astype(np.float64)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        embeddings = l2_normalize(out[spec.embedding])
        return list(zip(probabilities, embeddings, strict=True))

    async def _text_batch(self, texts: list[str]) -> list[np.ndarray]:
        spec = self._models().text
        out = await self.backend.run(spec.model, {spec.input: np.array(texts, dtype=object)})
        return list(l2_normalize(out[spec.output]))

    async def _clip_image_batch(self, pixels: list[np.ndarray]) -> list[np.ndarray]:
        clip = self._clip()
        out = await self.backend.run(clip.visual_model, {clip.visual_input: np.stack(pixels)})
        return list(l2_normalize(out[clip.visual_output]))

    async def _clip_text_batch(self, texts: list[str]) -> list[np.ndarray]:
        clip = self._clip()
        out = await self.backend.run(clip.textual_model, clip.tokenize(texts))
        return list(l2_normalize(out[clip.textual_output]))

    def _clip(self) -> ClipSpec:
        clip = self._models().clip
        if clip is None:
            raise NotFound("no CLIP model is loaded", reason="EMBEDDING_SPACE_NOT_FOUND")
        return clip

    # ------------------------------------------------------------------ images

    async def _image_bytes(self, request: ImageRequest) -> bytes:
        if request.data:
            if len(request.data) > self.max_image_bytes:
                raise InvalidArgument(
                    f"the image is larger than {self.max_image_bytes} bytes", reason="IMAGE_TOO_LARGE"
                )
            return request.data
        if request.storage_key:
            if self.images_source is None:
                raise InvalidArgument("this inference service cannot read storage keys", reason="NO_STORAGE")
            return await self.images_source.read(request.storage_key, limit=self.max_image_bytes)
        raise InvalidArgument("the image has neither data nor storage_key", reason="IMAGE_MISSING")

    async def _decoded(self, request: ImageRequest) -> tuple[bytes, Image.Image]:
        data = await self._image_bytes(request)
        return data, await self.executor.run(images.decode, data)

    async def analyse(self, request: ImageRequest) -> ImageAnalysis:
        """Tags (objects and colours), optionally OCR text, a caption and every image embedding."""
        models = self._models()
        batchers = self.batchers
        data, image = await self._decoded(request)
        spec = models.classifier
        pixels = await self.executor.run(images.classifier_pixels, image, spec.input_size)
        pending: dict[str, asyncio.Future] = {"classify": asyncio.ensure_future(batchers.classifier.submit(pixels))}
        if request.want_embeddings and models.clip is not None:
            pending["clip"] = asyncio.ensure_future(self._clip_image(image))
        if request.want_ocr and models.reader is not None:
            pending["ocr"] = asyncio.ensure_future(self.executor.run(models.reader.read, np.asarray(image)))
        if request.want_caption and models.captioner is not None:
            pending["caption"] = asyncio.ensure_future(models.captioner.caption(data, request.language or "en"))
        too_small = min(image.size) < MIN_TAG_PX
        colour_tags = (
            []
            if too_small
            else await self.executor.run(colours.colour_tags, image, min_share=self.rules.colour_min_share)
        )
        try:
            results = dict(zip(pending, await asyncio.gather(*pending.values()), strict=True))
        finally:
            for future in pending.values():
                future.cancel()
        probabilities, embedding = results["classify"]
        threshold = max(request.min_confidence, 0.0) or self.rules.min_confidence
        scored = (
            []
            if too_small
            else self.vocabulary.tags(
                probabilities,
                min_confidence=threshold,
                texture_confidence=max(self.rules.texture_confidence, threshold),
                min_leading_class=self.rules.min_leading_class,
                max_tags=DEFAULT_MAX_TAGS,
            )
        )
        classifier_model = f"models/{spec.model}"
        tags = [
            PredictedTag(s.tag.label, s.tag.names, s.tag.category, s.confidence, classifier_model) for s in scored
        ] + [
            PredictedTag(s.tag.label, s.tag.names, s.tag.category, s.confidence, COLOUR_MODEL)
            for s in colour_tags
            if s.confidence >= threshold or not request.min_confidence
        ]
        tags = tags[: request.max_tags or DEFAULT_MAX_TAGS]
        used = [classifier_model, COLOUR_MODEL]
        ocr_text = results.get("ocr", "")
        if "ocr" in results:
            used.append(f"models/{models.reader_model}")
        caption = results.get("caption", "")
        if "caption" in results and models.captioner is not None:
            used.append(models.captioner.model)
        embeddings = []
        if request.want_embeddings:
            embeddings.append(Embedding(classifier_model, spec.space, embedding))
            if "clip" in results and models.clip is not None:
                embeddings.append(Embedding(f"models/{models.clip.visual_model}", models.clip.space, results["clip"]))
        return ImageAnalysis(tags=tags, caption=caption, ocr_text=ocr_text, models=used, embeddings=embeddings)

    async def _clip_image(self, image: Image.Image) -> np.ndarray:
        clip = self._clip()
        pixels = await self.executor.run(images.clip_pixels, image, clip.image_size)
        assert self.batchers.clip_image is not None
        return await self.batchers.clip_image.submit(pixels)

    async def analyse_many(self, requests: Sequence[ImageRequest]) -> list[ImageAnalysis | ImgTagError]:
        """One result per request, in order; a bad image fails only its own item. The whole call
        fails only when the models are not loaded (UNAVAILABLE) or the batch is too large."""
        self._models()
        _check_count(len(requests), MAX_IMAGES, "images")
        return await asyncio.gather(*(_item(self.analyse(r)) for r in requests))

    async def embed_images(self, requests: Sequence[ImageRequest], space: str = "") -> list[Embedding | ImgTagError]:
        """Image embeddings in `space` ("" = the classifier's visual space)."""
        models = self._models()
        _check_count(len(requests), MAX_IMAGES, "images")
        target = space or models.classifier.space
        if target == models.classifier.space:

            async def one(request: ImageRequest) -> Embedding:
                _, image = await self._decoded(request)
                pixels = await self.executor.run(images.classifier_pixels, image, models.classifier.input_size)
                _, vector = await self.batchers.classifier.submit(pixels)
                return Embedding(f"models/{models.classifier.model}", models.classifier.space, vector)

        elif models.clip is not None and target == models.clip.space:
            clip = models.clip

            async def one(request: ImageRequest) -> Embedding:
                _, image = await self._decoded(request)
                return Embedding(f"models/{clip.visual_model}", clip.space, await self._clip_image(image))

        else:
            raise self._unknown_space(target)
        return await asyncio.gather(*(_item(one(r)) for r in requests))

    # ------------------------------------------------------------------ texts

    async def embed_texts(self, texts: Sequence[str], space: str = "") -> list[Embedding]:
        """Text embeddings in `space` ("" = the multilingual text space, or a CLIP space)."""
        models = self._models()
        _check_count(len(texts), MAX_TEXTS, "texts")
        for i, text in enumerate(texts):
            if len(text) > MAX_TEXT_CHARS:
                raise InvalidArgument(f"texts[{i}] is longer than {MAX_TEXT_CHARS} characters", reason="TEXT_TOO_LONG")
        target = space or models.text.space
        if target == models.text.space:
            model, batcher = f"models/{models.text.model}", self.batchers.text
        elif models.clip is not None and target == models.clip.space:
            model, batcher = f"models/{models.clip.textual_model}", self.batchers.clip_text
        else:
            raise self._unknown_space(target)
        assert batcher is not None
        vectors = await batcher.submit_many(list(texts))
        return [Embedding(model, target, v) for v in vectors]

    def _unknown_space(self, space: str) -> NotFound:
        known = ", ".join(s.name for s in self.spaces()[0])
        return NotFound(
            f"no model embeds into space {space!r}; known spaces: {known}",
            reason="EMBEDDING_SPACE_NOT_FOUND",
            metadata={"embedding_space": space},
        )

    # ------------------------------------------------------------------ what exists

    def spaces(self) -> tuple[list[EmbeddingSpace], str]:
        """Every embedding space and the default text space."""
        models = self._models()
        c, t = models.classifier, models.text
        spaces = [
            EmbeddingSpace(t.space, t.dimension, text_model=f"models/{t.model}"),
            EmbeddingSpace(c.space, c.dimension, image_model=f"models/{c.model}"),
        ]
        if models.clip is not None:
            k = models.clip
            spaces.append(
                EmbeddingSpace(
                    k.space, k.dimension, image_model=f"models/{k.visual_model}", text_model=f"models/{k.textual_model}"
                )
            )
        return spaces, t.space

    def models(self, configured: Sequence[ModelInfo]) -> list[ModelInfo]:
        """Every model with its state: the loaded ones once loading finished, else the configured
        ones as LOADING (or FAILED with the reason)."""
        if self.models_loaded is not None and self.suspended:
            infos = [
                replace(i, state=State.FAILED, last_error=self.suspended) if i.backend == self.backend.name else i
                for i in self.models_loaded.infos
            ]
        elif self.models_loaded is not None:
            infos = list(self.models_loaded.infos)
        else:
            state = State.FAILED if self.load_error else State.LOADING
            infos = [replace(info, state=state, last_error=self.load_error) for info in configured]
        return sorted(infos, key=lambda m: (list(Task).index(m.task), m.name))


def _check_count(n: int, maximum: int, what: str) -> None:
    if n == 0:
        raise InvalidArgument(f"no {what} given", reason="EMPTY_BATCH")
    if n > maximum:
        raise InvalidArgument(f"{n} {what} given, at most {maximum} per call", reason="BATCH_TOO_LARGE")


async def _item(work: Awaitable):
    try:
        return await work
    except Unavailable:
        raise  # nothing is wrong with this item: the whole call is to be tried again
    except ImgTagError as error:
        return error
