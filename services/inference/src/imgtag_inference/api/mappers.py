"""Protobuf <-> domain for the inference API."""

from __future__ import annotations

from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from imgtag.inference.v1 import inference_pb2 as pb
from imgtag_common.errors import ImgTagError, InvalidArgument, to_status_proto
from imgtag_common.filtering import And, Comparison, Expr, Not, Or, invalid, parse_filter
from imgtag_inference.domain.engine import ImageRequest
from imgtag_inference.domain.models import Embedding, EmbeddingSpace, ImageAnalysis, ModelInfo, State, Task

_BACKENDS = {
    "onnxruntime": pb.Model.ONNX_RUNTIME,
    "triton": pb.Model.TRITON,
    "ollama": pb.Model.OLLAMA,
    "openai-compatible": pb.Model.OPENAI_COMPATIBLE,
}
_DEVICES = {"CPU": pb.Model.CPU, "GPU": pb.Model.GPU}


def image_request(image: pb.ImageInput, request: pb.TagImageRequest | None = None) -> ImageRequest:
    r = request or pb.TagImageRequest()
    return ImageRequest(
        id=image.id,
        data=image.data,
        storage_key=image.storage_key,
        want_caption=r.want_caption,
        want_ocr=r.want_ocr,
        want_embeddings=r.want_embeddings,
        max_tags=max(r.max_tags, 0),
        min_confidence=r.min_confidence,
        language=r.language,
    )


def check_tag_request(request: pb.TagImageRequest) -> None:
    if request.min_confidence < 0 or request.min_confidence > 1:
        raise InvalidArgument("min_confidence must be in [0, 1]", reason="INVALID_MIN_CONFIDENCE")
    if request.max_tags < 0:
        raise InvalidArgument("max_tags must not be negative", reason="INVALID_MAX_TAGS")


def embedding_to_proto(e: Embedding) -> pb.Embedding:
    return pb.Embedding(model=e.model, dimension=len(e.values), values=e.values.tolist(), embedding_space=e.space)


def analysis_to_proto(a: ImageAnalysis, language: str = "") -> pb.TagImageResponse:
    lang = (language or "en").split("-")[0].lower()
    return pb.TagImageResponse(
        tags=[
            pb.PredictedTag(
                label=t.label,
                display_name=t.names.get(lang, t.label),
                category=t.category,
                confidence=t.confidence,
                model=t.model,
                display_names=t.names,
            )
            for t in a.tags
        ],
        caption=a.caption,
        ocr_text=a.ocr_text,
        models=a.models,
        image_embeddings=[embedding_to_proto(e) for e in a.embeddings],
    )


def ok_status() -> status_pb2.Status:
    return status_pb2.Status(code=0)


def error_status(error: ImgTagError) -> status_pb2.Status:
    return to_status_proto(error)


def space_to_proto(s: EmbeddingSpace) -> pb.EmbeddingSpace:
    return pb.EmbeddingSpace(
        name=s.name,
        dimension=s.dimension,
        image_model=s.image_model,
        text_model=s.text_model,
        cross_modal=s.cross_modal,
    )


def model_to_proto(m: ModelInfo) -> pb.Model:
    model = pb.Model(
        name=m.name,
        display_name=m.display_name,
        task=pb.Model.Task.Value(m.task.value),
        backend=_BACKENDS.get(m.backend, pb.Model.BACKEND_UNSPECIFIED),
        version=m.version,
        embedding_dimension=m.embedding_dimension,
        embedding_space=m.embedding_space,
        state=pb.Model.State.Value(m.state.value),
        device=_DEVICES.get(m.device, pb.Model.DEVICE_UNSPECIFIED),
        device_name=m.device_name,
        default_for_task=m.default_for_task,
        languages=list(m.languages),
        max_batch_size=m.max_batch_size,
        last_error=m.last_error,
    )
    if m.load_time is not None:
        model.load_time.CopyFrom(_timestamp(m))
    return model


def _timestamp(m: ModelInfo) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(m.load_time)  # type: ignore[arg-type]
    return ts


# ListModels filter: AIP-160 over task, backend, state and device (= and !=, AND/OR/NOT).
_FILTER_FIELDS = {
    "task": (lambda m: m.task.value, {t.value for t in Task}),
    "backend": (lambda m: pb.Model.Backend.Name(_BACKENDS.get(m.backend, 0)), set(pb.Model.Backend.keys())),
    "state": (lambda m: m.state.value, {s.value for s in State}),
    "device": (lambda m: pb.Model.Device.Name(_DEVICES.get(m.device, 0)), set(pb.Model.Device.keys())),
}


def model_filter(text: str):
    """A predicate on ModelInfo for a ListModels filter (INVALID_ARGUMENT when malformed)."""
    tree = parse_filter(text)
    if tree is not None:
        _check(tree)

    def matches(model: ModelInfo) -> bool:
        return tree is None or _eval(tree, model)

    return matches


def _check(e: Expr) -> None:
    if isinstance(e, Comparison):
        if e.field not in _FILTER_FIELDS:
            raise invalid(f"unknown field {e.field!r}; use task, backend, state or device", e.position)
        if e.op not in ("=", "!="):
            raise invalid(f"{e.field} supports = and != only", e.position)
        if e.value not in _FILTER_FIELDS[e.field][1]:
            raise invalid(f"{e.value!r} is not a {e.field}", e.position)
    elif isinstance(e, Not):
        _check(e.operand)
    else:
        for operand in e.operands:
            _check(operand)


def _eval(e: Expr, model: ModelInfo) -> bool:
    if isinstance(e, Comparison):
        equal = _FILTER_FIELDS[e.field][0](model) == e.value
        return equal if e.op == "=" else not equal
    if isinstance(e, Not):
        return not _eval(e.operand, model)
    if isinstance(e, And):
        return all(_eval(o, model) for o in e.operands)
    assert isinstance(e, Or)
    return any(_eval(o, model) for o in e.operands)
