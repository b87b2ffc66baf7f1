"""Vision-language captions end to end, through the real gateway on the session stack: an admin
configures providers over REST (the key is sealed in PostgreSQL and never comes back, nor into a
log), a user uploads a photo and gets the provider's caption in the admin's language and its
tags in English and Chinese as AI suggestions that are confirmed and rejected like any other;
a provider that answers garbage or refuses leaves a visible failure on the asset and the
embedded model's tags in place; with no provider the stage is skipped.

The providers are the stand-ins of imgtag_dev.vision_providers (OpenAI chat completions and
Ollama's native API on their real wire formats); each test checks that they received no request
a real provider would refuse."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from imgtag_dev.testing import SKIMAGE_PHOTOS, Account, expect_error, upload
from imgtag_dev.vision_providers import API_KEY

pytestmark = pytest.mark.e2e

CAPTION_DONE = ("CAPTION_SUCCEEDED", "CAPTION_FAILED", "CAPTION_SKIPPED")


@pytest.fixture
def admin_http(gateway_url: str, admin: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60, headers=admin.headers) as client:
        yield client


@pytest.fixture
def providers(admin_http: httpx.Client, vision_stand_in) -> Iterator[list[str]]:
    """Names of the providers a test made; deleted afterwards, so other tests' uploads are not
    described. The stand-in must have received only requests a real provider accepts."""
    vision_stand_in.reset()
    made: list[str] = []
    yield made
    for name in made:
        admin_http.delete(f"/v1/{name}")
    assert vision_stand_in.problems == []


def _create(admin_http: httpx.Client, made: list[str], provider_id: str, **fields) -> dict:
    reply = admin_http.post("/v1/visionProviders", params={"visionProviderId": provider_id}, json=fields)
    assert reply.status_code == 200, reply.text
    made.append(reply.json()["name"])
    return reply.json()


def _openai(stand_in, **fields) -> dict:
    return {
        "kind": "OPENAI_COMPATIBLE",
        "endpoint": stand_in.url + "/v1",
        "model": "describe",
        "apiKey": API_KEY,
        "active": True,
        **fields,
    }


def _wait_for_caption(client: httpx.Client, name: str, headers: dict[str, str], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        asset = client.get(f"/v1/{name}", headers=headers).json()
        if asset.get("captionState") in CAPTION_DONE:
            return asset
        assert time.monotonic() < deadline, f"{name}: caption still {asset.get('captionState')}: {asset}"
        time.sleep(0.3)


@pytest.fixture
def owner(gateway_url: str, new_user: Callable[[], Account]) -> Iterator[tuple[httpx.Client, Account]]:
    """A fresh user (so the same photo is never a duplicate of another test's) and their client."""
    account = new_user()
    with httpx.Client(base_url=gateway_url, timeout=30, headers=account.headers) as client:
        yield client, account


def _upload(client: httpx.Client, user: Account, photo: str) -> str:
    reply = upload(client, user, (SKIMAGE_PHOTOS / photo).read_bytes(), filename=photo)
    assert reply.status_code == 200, reply.text
    return reply.json()["name"]


def test_admins_configure_providers_over_rest_and_the_key_is_sealed_and_never_returned(
    admin_http, user, gateway_url, stack, vision_stand_in, providers
) -> None:
    created = _create(
        admin_http, providers, "e2e-keys", **_openai(vision_stand_in, language="zh", displayName="Qwen-VL (stand-in)")
    )
    assert created["name"] == "visionProviders/e2e-keys" and created["hasApiKey"] is True
    assert created["kind"] == "OPENAI_COMPATIBLE" and created["active"] is True and created["language"] == "zh"
    assert (created["concurrency"], created["timeout"], created["maxAttempts"]) == (2, "60s", 3)
    assert created["jsonMode"] is True and created["maxOutputTokens"] == 1024
    listed = admin_http.get("/v1/visionProviders")
    fetched = admin_http.get("/v1/visionProviders/e2e-keys")
    for reply in (admin_http.post("/v1/visionProviders", json={}), listed, fetched):
        assert API_KEY not in reply.text  # (the gateway prints every field: "apiKey" is there, empty)
    assert fetched.json()["apiKey"] == "" and {p["apiKey"] for p in listed.json()["visionProviders"]} == {""}
    assert "visionProviders/e2e-keys" in [p["name"] for p in listed.json()["visionProviders"]]

    row = stack.postgres.query(
        "SELECT row_to_json(v)::text FROM vision_providers v WHERE id = 'e2e-keys'", "imgtag_inference"
    )
    sealed = stack.postgres.query(
        "SELECT sealed_api_key FROM vision_providers WHERE id = 'e2e-keys'", "imgtag_inference"
    )
    assert sealed.startswith("fernet:") and API_KEY not in row and API_KEY[3:] not in row

    with httpx.Client(base_url=gateway_url, timeout=30, headers=user.headers) as as_user:
        expect_error(as_user.get("/v1/visionProviders"), 403, 7)
        expect_error(as_user.post("/v1/visionProviders", json=_openai(vision_stand_in)), 403, 7)

    # A wrong key: the provider's own words come back, and nothing is retried.
    changed = admin_http.patch(
        "/v1/visionProviders/e2e-keys", params={"updateMask": "apiKey"}, json={"apiKey": "sk-wrong-0000"}
    )
    assert changed.status_code == 200 and changed.json()["hasApiKey"] is True
    refused = expect_error(
        admin_http.post("/v1/visionProviders/e2e-keys:test", json={}), 400, 9, "VISION_PROVIDER_REFUSED"
    )
    assert "HTTP 401" in refused["message"] and "Incorrect API key provided: sk-wr***" in refused["message"]
    assert vision_stand_in.count("describe") == 1

    admin_http.patch("/v1/visionProviders/e2e-keys", params={"updateMask": "apiKey"}, json={"apiKey": API_KEY})
    tested = admin_http.post("/v1/visionProviders/e2e-keys:test", json={})
    assert tested.status_code == 200, tested.text
    description = tested.json()["description"]
    assert description["caption"] == "一只橙色的猫躺在靠垫上, 320x240。"  # the built-in sample picture
    assert description["language"] == "zh" and description["provider"] == "visionProviders/e2e-keys"
    cat = next(t for t in description["tags"] if t["label"] == "cat")
    assert (
        cat["displayName"] == "猫" and cat["displayNames"] == {"en": "cat", "zh": "猫"} and cat["category"] == "object"
    )
    assert tested.json()["attempts"] == 1 and '"caption"' in tested.json()["rawOutput"]

    cleared = admin_http.patch("/v1/visionProviders/e2e-keys", params={"updateMask": "apiKey"}, json={})
    assert cleared.json()["hasApiKey"] is False
    assert (
        stack.postgres.query("SELECT sealed_api_key FROM vision_providers WHERE id = 'e2e-keys'", "imgtag_inference")
        == ""
    )
    expect_error(
        admin_http.patch("/v1/visionProviders/e2e-keys", params={"updateMask": "name"}, json={}),
        400,
        3,
        "INVALID_UPDATE_MASK",
    )
    expect_error(admin_http.get("/v1/visionProviders/nope"), 404, 5, "VISION_PROVIDER_NOT_FOUND")
    for log in (stack.logs_dir / "inference.log", stack.logs_dir / "gateway-access.log"):
        assert API_KEY not in log.read_text()


def test_an_uploaded_photo_gets_the_caption_and_bilingual_tags_reviewed_like_other_ai_tags(
    admin_http, owner, vision_stand_in, providers
) -> None:
    http, user = owner
    _create(admin_http, providers, "e2e-openai", **_openai(vision_stand_in, language="zh"))
    name = _upload(http, user, "chelsea.png")
    asset = _wait_for_caption(http, name, user.headers)
    assert asset["captionState"] == "CAPTION_SUCCEEDED", asset
    assert (
        asset["caption"] == "一只橙色的猫躺在靠垫上, 451x300。"
        and asset["captionProvider"] == "visionProviders/e2e-openai"
    )
    assert asset["analysisState"] == "SUCCEEDED" and not asset.get("captionError")
    (request,) = [r for r in vision_stand_in.requests if r.body and r.body.get("model") == "describe"]
    assert request.image_size == (451, 300) and request.image_format == "JPEG"

    def tags(language: str) -> dict[str, dict]:
        reply = http.get(f"/v1/{name}", headers={**user.headers, "accept-language": language})
        return {t["displayName"]: t for t in reply.json().get("tags", [])}

    english, chinese = tags("en"), tags("zh-CN")
    vision = {k: t for k, t in english.items() if t["model"] == "visionProviders/e2e-openai"}
    assert {"cushion", "living room", "calm"} <= set(vision), english
    assert {"靠垫", "客厅", "平静"} <= {k for k, t in chinese.items() if t["model"] == "visionProviders/e2e-openai"}
    assert vision["cushion"]["category"] == "object" and vision["living room"]["category"] == "scene"
    assert vision["calm"]["category"] == "mood" and vision["cushion"]["confidence"] == pytest.approx(0.61)
    assert all(t["source"] == "AI" and t["state"] == "SUGGESTED" for t in vision.values())
    # the embedded model's tags are there too (a VLM tag it also suggested stays the model's)
    assert english["cat"]["model"] == "models/efficientnet-lite0"

    # Reviewed like any AI suggestion; a re-analysis keeps the verdicts.
    cushion, calm = vision["cushion"]["tag"], vision["calm"]["tag"]
    assert http.post(f"/v1/{name}:confirmTag", json={"tag": cushion}).status_code == 200
    assert http.post(f"/v1/{name}:rejectTag", json={"tag": calm}).status_code == 200
    assert http.post(f"/v1/{name}:reanalyze", json={}).status_code == 200
    time.sleep(0.5)
    asset = _wait_for_caption(http, name, user.headers)
    assert asset["captionState"] == "CAPTION_SUCCEEDED" and vision_stand_in.count("describe") == 2
    after = tags("en")
    assert after["cushion"]["state"] == "CONFIRMED" and "calm" not in after
    assert after["living room"]["state"] == "SUGGESTED"

    # The caption is searchable (it is part of the asset's text embedding).
    found = http.post("/v1/assets:search", json={"query": "靠垫上的橙色猫"}).json()
    assert name in [r["asset"]["name"] for r in found.get("results", [])][:3]


def test_ollamas_native_api_captions_in_english(admin_http, owner, vision_stand_in, providers) -> None:
    http, user = owner
    _create(
        admin_http,
        providers,
        "e2e-ollama",
        kind="OLLAMA",
        endpoint=vision_stand_in.url,
        model="describe",
        language="en",
        active=True,
    )
    name = _upload(http, user, "coffee.png")
    asset = _wait_for_caption(http, name, user.headers)
    assert asset["captionState"] == "CAPTION_SUCCEEDED", asset
    assert asset["caption"] == "An orange cat resting on a cushion (600x400)."  # the stand-in says what it says
    assert any(r.path == "/api/chat" for r in vision_stand_in.requests)


@pytest.mark.parametrize(
    ("model", "photo", "words"),
    [
        ("garbage", "rocket.jpg", "gave no usable answer in 1 attempt: the answer holds no JSON object"),
        ("refusal", "motorcycle_left.png", "refused: the model declined: I'm sorry, but I can't help"),
    ],
)
def test_garbage_or_a_refusal_fails_the_caption_visibly_and_the_embedded_tags_stay(
    admin_http, owner, vision_stand_in, providers, model, photo, words
) -> None:
    http, user = owner
    _create(admin_http, providers, f"e2e-{model}", **_openai(vision_stand_in, model=model, maxAttempts=1))
    name = _upload(http, user, photo)
    asset = _wait_for_caption(http, name, user.headers)
    assert asset["captionState"] == "CAPTION_FAILED", asset
    assert words in asset["captionError"] and f"visionProviders/e2e-{model}" in asset["captionError"]
    assert asset["analysisState"] == "SUCCEEDED" and not asset.get("caption")
    models = {t["model"] for t in asset["tags"]}
    assert "models/efficientnet-lite0" in models and not any(m.startswith("visionProviders/") for m in models)
    assert {"rocket", "motorcycle"} & {t["displayName"] for t in asset["tags"]}
    failed = http.get("/v1/assets", params={"filter": "caption_state = CAPTION_FAILED"}).json()
    assert name in [a["name"] for a in failed.get("assets", [])]


def test_a_provider_that_stays_down_is_retried_by_the_pipeline_then_the_caption_fails(
    admin_http, owner, vision_stand_in, providers
) -> None:
    http, user = owner
    _create(admin_http, providers, "e2e-broken", **_openai(vision_stand_in, model="broken", maxAttempts=1))
    name = _upload(http, user, "camera.png")
    asset = _wait_for_caption(http, name, user.headers)
    assert asset["captionState"] == "CAPTION_FAILED", asset
    # one attempt per job run, and the job ran twice (IMGTAG_CATALOG_DESCRIBE_MAX_ATTEMPTS in the tests)
    assert vision_stand_in.count("broken") == 2
    assert "did not answer in 1 attempt: HTTP 500: The server had an error" in asset["captionError"]
    assert not asset["captionError"].startswith("retrying") and asset["analysisState"] == "SUCCEEDED"


def test_without_an_active_provider_the_caption_is_skipped(admin_http, owner, vision_stand_in, providers) -> None:
    http, user = owner
    _create(admin_http, providers, "e2e-inactive", **_openai(vision_stand_in, active=False))
    active = [p for p in admin_http.get("/v1/visionProviders").json().get("visionProviders", []) if p.get("active")]
    assert active == []
    name = _upload(http, user, "astronaut.png")
    asset = _wait_for_caption(http, name, user.headers)
    assert (
        asset["captionState"] == "CAPTION_SKIPPED" and "no vision-language provider is active" in asset["captionError"]
    )
    assert vision_stand_in.requests == [] and asset["analysisState"] == "SUCCEEDED"
