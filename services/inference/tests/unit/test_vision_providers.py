"""Describing images with vision-language providers over their real wire formats: the HTTP
clients against a stand-in that speaks OpenAI chat completions (as OpenAI, DashScope, Gemini,
vLLM and Ollama's /v1 serve it) and Ollama's native API, with their error shapes, and that
refuses any request a real provider would refuse. Retries, backoff, timeouts, refusals,
unusable answers and the concurrency limit are the domain's; the store is an in-memory stand-in
(the real one is tested on PostgreSQL through the gateway, tests/e2e/test_vision_captions.py)."""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from dataclasses import replace

import pytest
from PIL import Image

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import FailedPrecondition, InvalidArgument, Unavailable
from imgtag_common.sealing import FernetSecretBox
from imgtag_dev.testing import SKIMAGE_PHOTOS
from imgtag_dev.vision_providers import API_KEY
from imgtag_inference.adapters.vision_http import HttpVisionClients
from imgtag_inference.domain.vision import Backoff, ProviderDraft, ProviderKind, VisionProvider, VisionService

CAT = (SKIMAGE_PHOTOS / "chelsea.png").read_bytes()  # 451 x 300


class MemoryStore:
    """The VisionProviderStore port in memory (one active provider, like the table's index)."""

    def __init__(self) -> None:
        self.rows: dict[str, VisionProvider] = {}

    async def create(self, *, provider: VisionProvider) -> VisionProvider:
        if provider.active:
            self._deactivate()
        self.rows[provider.id] = provider
        return provider

    async def get(self, *, provider_id: str) -> VisionProvider | None:
        return self.rows.get(provider_id)

    async def active(self) -> VisionProvider | None:
        return next((p for p in self.rows.values() if p.active), None)

    async def list_page(self, *, after_id: str, limit: int) -> list[VisionProvider]:
        return [self.rows[k] for k in sorted(self.rows) if k > after_id][:limit]

    async def update(self, *, provider: VisionProvider) -> VisionProvider | None:
        if provider.id not in self.rows:
            return None
        if provider.active:
            self._deactivate()
        self.rows[provider.id] = provider
        return provider

    async def delete(self, *, provider_id: str) -> bool:
        return self.rows.pop(provider_id, None) is not None

    async def count(self) -> int:
        return len(self.rows)

    def _deactivate(self) -> None:
        for key, row in self.rows.items():
            self.rows[key] = replace(row, active=False)


@pytest.fixture
async def vision(vision_stand_in):
    vision_stand_in.reset()
    clients = HttpVisionClients()
    executor = BlockingExecutor(2)
    service = VisionService(
        store=MemoryStore(),
        secrets=FernetSecretBox(secrets.token_urlsafe(32), purpose="tests"),
        clients={ProviderKind.OPENAI_COMPATIBLE: clients.openai, ProviderKind.OLLAMA: clients.ollama},
        executor=executor,
        backoff=Backoff(initial_s=0.05, max_s=0.5),
    )
    yield service
    await clients.close()
    executor.shutdown()
    assert vision_stand_in.problems == [], "the stand-in got requests a real provider would refuse"


def _openai(stand_in, prefix: str = "/v1", **fields) -> ProviderDraft:
    values = {"kind": ProviderKind.OPENAI_COMPATIBLE, "endpoint": stand_in.url + prefix, "api_key": API_KEY}
    return ProviderDraft(**{**values, "model": "describe", **fields})


def _ollama(stand_in, **fields) -> ProviderDraft:
    return ProviderDraft(**{"kind": ProviderKind.OLLAMA, "endpoint": stand_in.url, "model": "describe", **fields})


def _labels(description) -> dict[str, tuple[str, dict[str, str], float]]:
    return {t.label: (t.category, t.names, t.confidence) for t in description.parsed.tags}


@pytest.mark.parametrize(
    ("prefix", "who"),
    [
        ("/v1", "OpenAI, vLLM, Ollama's /v1"),
        ("/compatible-mode/v1", "DashScope (Qwen-VL)"),
        ("/v1beta/openai", "Gemini"),
    ],
)
async def test_openai_compatible_providers_caption_and_tag_in_both_languages(vision, vision_stand_in, prefix, who):
    await vision.create(_openai(vision_stand_in, prefix, language="zh"), "p")
    described = await vision.describe(data=CAT)
    assert described.parsed.caption == "一只橙色的猫躺在靠垫上, 451x300。", who  # the whole image arrived
    labels = _labels(described)
    assert labels["cat"] == ("object", {"en": "cat", "zh": "猫"}, pytest.approx(0.94))
    assert labels["cushion"][1] == {"en": "cushion", "zh": "靠垫"}
    assert labels["orange"][0] == "color" and labels["living room"][0] == "scene" and labels["calm"][0] == "mood"
    (request,) = vision_stand_in.requests
    assert request.path == prefix + "/chat/completions" and request.image_format == "JPEG"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["response_format"] == {"type": "json_object"} and request.body["model"] == "describe"
    assert request.body["max_tokens"] == 1024 and described.attempts == 1


async def test_ollama_native_chat_sends_the_image_in_its_images_array(vision, vision_stand_in):
    await vision.create(_ollama(vision_stand_in, language="en", max_output_tokens=300), "ollama")
    described = await vision.describe(data=CAT)
    assert described.parsed.caption == "An orange cat resting on a cushion (451x300)."
    assert set(_labels(described)) == {"cat", "cushion", "orange", "gray", "living room", "calm"}
    (request,) = vision_stand_in.requests
    assert request.path == "/api/chat" and "authorization" not in request.headers
    assert request.body["stream"] is False and request.body["format"] == "json"
    assert request.body["options"]["num_predict"] == 300


async def test_json_mode_off_asks_for_no_format_and_a_fenced_answer_still_parses(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, model="fenced", json_mode=False), "p")
    await vision.create(_ollama(vision_stand_in, model="fenced", json_mode=False), "o")
    assert "cat" in _labels(await vision.describe(data=CAT))
    assert "cat" in _labels(await vision.test("o", CAT))
    assert [("response_format" in r.body, "format" in r.body) for r in vision_stand_in.requests] == [
        (False, False),
        (False, False),
    ]


async def test_an_answer_cut_at_the_token_limit_keeps_what_is_complete(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, model="truncated"), "p")
    await vision.create(_ollama(vision_stand_in, model="truncated"), "o")
    for described in (await vision.test("p", CAT), await vision.test("o", CAT)):
        assert described.parsed.truncated and described.parsed.caption.startswith("An orange cat")
        assert {"cat", "cushion"} <= set(_labels(described)) and "calm" not in _labels(described)


async def test_a_wrong_key_is_refused_with_the_providers_words_and_not_retried(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, api_key="sk-wrong-key", max_attempts=3), "p")
    with pytest.raises(FailedPrecondition) as refused:
        await vision.describe(data=CAT)
    assert refused.value.reason == "VISION_PROVIDER_REFUSED"
    assert "HTTP 401" in refused.value.message and "Incorrect API key provided: sk-wr***" in refused.value.message
    assert "invalid_api_key" in refused.value.message and len(vision_stand_in.requests) == 1


async def test_gemini_errors_come_as_a_list_and_a_missing_model_is_a_refusal(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, "/v1beta/openai", api_key="bad"), "gemini")
    with pytest.raises(FailedPrecondition, match=r"HTTP 401.*Incorrect API key.*UNAUTHENTICATED"):
        await vision.test("gemini", CAT)
    await vision.create(_ollama(vision_stand_in, model="missing"), "ollama")
    with pytest.raises(FailedPrecondition, match=r'HTTP 404\): model "missing" not found, try pulling it first'):
        await vision.test("ollama", CAT)
    await vision.create(_openai(vision_stand_in, model="missing"), "openai")
    with pytest.raises(FailedPrecondition, match=r"does not exist.*model_not_found"):
        await vision.test("openai", CAT)


async def test_rate_limits_and_server_errors_are_retried_with_backoff(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, model="flaky"), "p")
    started = time.monotonic()
    described = await vision.describe(data=CAT)
    assert described.attempts == 2 and time.monotonic() - started >= 0.2  # Retry-After: 0.2
    await vision.create(_ollama(vision_stand_in, model="flaky"), "o")
    assert (await vision.test("o", CAT)).attempts == 2  # Ollama's 500 {"error": ...} once


async def test_a_provider_that_keeps_failing_is_unavailable_after_its_attempts(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, model="broken", max_attempts=3), "p")
    with pytest.raises(Unavailable) as down:
        await vision.describe(data=CAT)
    assert down.value.reason == "VISION_PROVIDER_UNAVAILABLE" and "3 attempts" in down.value.message
    assert "HTTP 500: The server had an error" in down.value.message
    assert vision_stand_in.count("broken") == 3
    await vision.create(_ollama(vision_stand_in, model="broken", max_attempts=2), "o")
    with pytest.raises(Unavailable, match="llama runner process has terminated"):
        await vision.test("o", CAT)


async def test_a_slow_provider_times_out_and_an_unreachable_one_is_unavailable(vision, vision_stand_in):
    vision_stand_in.slow_s = 2.5
    await vision.create(_openai(vision_stand_in, model="slow", timeout_s=1, max_attempts=1), "slow")
    started = time.monotonic()
    with pytest.raises(Unavailable, match="no answer within 1 s"):
        await vision.describe(data=CAT)
    assert time.monotonic() - started < 2.4
    await vision.create(_openai(vision_stand_in, endpoint="http://127.0.0.1:9/v1", max_attempts=2), "nowhere")
    with pytest.raises(Unavailable, match=r"cannot reach http://127\.0\.0\.1:9/v1/chat/completions"):
        await vision.test("nowhere", CAT)


async def test_garbage_is_retried_then_a_clear_failure_and_refusals_are_not(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, model="garbage", max_attempts=2), "p")
    with pytest.raises(FailedPrecondition) as invalid:
        await vision.describe(data=CAT)
    assert invalid.value.reason == "VISION_OUTPUT_INVALID"
    assert (
        "no usable answer in 2 attempts" in invalid.value.message and "What a lovely picture" in invalid.value.message
    )
    assert vision_stand_in.count("garbage") == 2
    for model, words in (
        ("refusal", "the model declined: I'm sorry, but I can't help"),
        ("declines", "the model declined: I cannot describe images of this kind."),
        ("filtered", "content filter"),
    ):
        await vision.create(_openai(vision_stand_in, model=model), model)
        with pytest.raises(FailedPrecondition) as refused:
            await vision.test(model, CAT)
        assert refused.value.reason == "VISION_PROVIDER_REFUSED" and words in refused.value.message
        assert vision_stand_in.count(model) == 1


async def test_models_that_want_max_completion_tokens_are_asked_again_that_way(vision, vision_stand_in):
    await vision.create(_openai(vision_stand_in, model="new-params"), "p")
    assert "cat" in _labels(await vision.describe(data=CAT))
    first, second = vision_stand_in.requests
    assert "max_tokens" in first.body and second.body["max_completion_tokens"] == 1024
    assert "max_tokens" not in second.body


async def test_no_more_requests_in_flight_than_the_providers_concurrency(vision, vision_stand_in):
    vision_stand_in.slow_s = 0.3
    await vision.create(_openai(vision_stand_in, model="slow", concurrency=2, timeout_s=10), "p")
    await asyncio.gather(*(vision.describe(data=CAT) for _ in range(6)))
    assert vision_stand_in.most_in_flight["slow"] == 2


async def test_large_images_are_sent_as_jpeg_of_at_most_1024_px(vision, vision_stand_in):
    big = io.BytesIO()
    Image.new("RGB", (3000, 1500), (200, 40, 40)).save(big, "PNG")
    await vision.create(_openai(vision_stand_in), "p")
    assert (await vision.describe(data=big.getvalue())).parsed.caption.endswith("(1024x512).")
    with pytest.raises(InvalidArgument):
        await vision.describe(data=b"not an image")


async def test_keys_are_sealed_the_first_provider_is_active_and_activation_moves(vision, vision_stand_in):
    first = await vision.create(_openai(vision_stand_in), "")
    assert first.id == "openai-compatible" and first.active
    assert first.sealed_api_key.startswith("fernet:") and API_KEY not in first.sealed_api_key
    second = await vision.create(_ollama(vision_stand_in), "")
    assert second.id == "ollama" and not second.active
    await vision.update("ollama", ProviderDraft(active=True))
    assert not (await vision.get("openai-compatible")).active and (await vision.get("ollama")).active
    await vision.update("openai-compatible", ProviderDraft(api_key=""))
    assert (await vision.get("openai-compatible")).sealed_api_key == ""
    with pytest.raises(InvalidArgument, match="http:// or https://"):
        await vision.create(ProviderDraft(kind=ProviderKind.OLLAMA, endpoint="ollama:11434", model="m"), "x")
    with pytest.raises(InvalidArgument, match="host:port"):
        await vision.create(ProviderDraft(kind=ProviderKind.TRITON, endpoint="http://t:8001", model="m"), "t")
    await vision.delete("ollama")
    with pytest.raises(FailedPrecondition) as none:
        await vision.describe(data=CAT)
    assert none.value.reason == "VISION_PROVIDER_NOT_CONFIGURED"
