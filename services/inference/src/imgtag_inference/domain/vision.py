"""Vision-language providers: the admin's configuration (validated, API keys sealed before they
are stored and never handed back), the one active provider, and describing an image with it:
at most `concurrency` requests in flight per provider, each bounded by its timeout, retried
with exponential backoff when the provider timed out, was rate-limited, answered 5xx or gave
unusable output. A refusal (401/403/other 4xx, a content refusal) is not retried: asking again
gets the same answer, and a paid API would charge for it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from imgtag_inference.domain import vision_image
from imgtag_inference.domain.models import ImageSource
from imgtag_inference.domain.vision_output import (
    ParsedDescription,
    VisionOutputInvalid,
    VisionRefusal,
    build_prompt,
    parse_description,
)

log = logging.getLogger(__name__)

PROVIDER_COLLECTION = "visionProviders"
_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_RAW_OUTPUT = 8192


class ProviderKind(StrEnum):
    OPENAI_COMPATIBLE = "openai-compatible"
    OLLAMA = "ollama"
    TRITON = "triton"


@dataclass(frozen=True)
class VisionProvider:
    id: str
    kind: ProviderKind
    endpoint: str
    model: str
    display_name: str = ""
    sealed_api_key: str = ""  # "fernet:..."; never plain text outside an adapter
    prompt: str = ""
    language: str = "en"
    concurrency: int = 2
    timeout_s: float = 60.0
    max_attempts: int = 3
    json_mode: bool = True
    max_output_tokens: int = 1024
    active: bool = False
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"{PROVIDER_COLLECTION}/{self.id}"


# What an admin may set, with the limits the contract documents.
EDITABLE = (
    "display_name",
    "kind",
    "endpoint",
    "model",
    "api_key",
    "prompt",
    "language",
    "concurrency",
    "timeout",
    "max_attempts",
    "json_mode",
    "max_output_tokens",
    "active",
)


@dataclass(frozen=True)
class ProviderDraft:
    """The fields of a create or update request; None: not given."""

    display_name: str | None = None
    kind: ProviderKind | None = None
    endpoint: str | None = None
    model: str | None = None
    api_key: str | None = None
    prompt: str | None = None
    language: str | None = None
    concurrency: int | None = None
    timeout_s: float | None = None
    max_attempts: int | None = None
    json_mode: bool | None = None
    max_output_tokens: int | None = None
    active: bool | None = None


@dataclass(frozen=True)
class VisionCall:
    """One request to a provider: the image (JPEG) and what to ask."""

    image: bytes
    mime_type: str
    prompt: str
    model: str
    endpoint: str
    api_key: str
    json_mode: bool
    max_output_tokens: int
    timeout_s: float


@dataclass(frozen=True)
class VisionAnswer:
    """The model's text, and whether the provider said it stopped at the token limit."""

    text: str
    cut_short: bool = False


class ProviderRefused(Exception):
    """The provider said no: 4xx other than 408/429, or a content refusal. Not retried."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ProviderUnavailable(Exception):
    """Worth another attempt: timeout, 408/429, 5xx, no connection. `retry_after_s` from the
    provider's Retry-After header, when it sent one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class VisionClient(Protocol):
    """Speaks one provider protocol (adapters/vision_http.py, adapters/vision_triton.py)."""

    async def ask(self, call: VisionCall) -> VisionAnswer: ...


class VisionProviderStore(Protocol):
    async def create(self, *, provider: VisionProvider) -> VisionProvider: ...
    async def get(self, *, provider_id: str) -> VisionProvider | None: ...
    async def active(self) -> VisionProvider | None: ...
    async def list_page(self, *, after_id: str, limit: int) -> list[VisionProvider]: ...
    async def update(self, *, provider: VisionProvider) -> VisionProvider | None: ...
    async def delete(self, *, provider_id: str) -> bool: ...
    async def count(self) -> int: ...


class SecretBox(Protocol):
    def seal(self, plain: str) -> str: ...
    def open(self, sealed: str) -> str: ...


@dataclass(frozen=True)
class Description:
    provider: VisionProvider
    parsed: ParsedDescription
    raw_output: str
    latency_s: float
    attempts: int


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        wait = min(self.initial_s * 2 ** max(attempt - 1, 0), self.max_s)
        if retry_after_s is not None:
            wait = min(max(wait, retry_after_s), self.max_s)
        return wait


@dataclass
class VisionService:
    store: VisionProviderStore
    secrets: SecretBox
    clients: Mapping[ProviderKind, VisionClient]
    executor: BlockingExecutor
    backoff: Backoff = Backoff()
    image_px: int = 1024
    images_source: ImageSource | None = None  # images named by storage key
    max_image_bytes: int = 32 * 1024 * 1024
    # what a successful TestVisionProvider without an image sends
    sample_image: Callable[[], bytes] = field(default=vision_image.sample_picture)
    _gates: dict[str, tuple[int, asyncio.Semaphore]] = field(default_factory=dict)

    # ------------------------------------------------------------------ configuration

    async def create(self, draft: ProviderDraft, provider_id: str) -> VisionProvider:
        if draft.kind is None:
            raise InvalidArgument("kind is required", reason="INVALID_VISION_PROVIDER")
        provider_id = provider_id or await self._free_id(draft.kind.value)
        if not _ID.match(provider_id):
            raise InvalidArgument(
                "the provider id must be 1-63 characters of a-z, 0-9 and -, starting with a letter",
                reason="INVALID_VISION_PROVIDER_ID",
            )
        if await self.store.get(provider_id=provider_id) is not None:
            raise AlreadyExists(f"vision provider {provider_id!r} already exists", reason="VISION_PROVIDER_EXISTS")
        now = datetime.now(UTC)
        base = VisionProvider(
            id=provider_id,
            kind=draft.kind,
            endpoint="",
            model="",
            active=await self.store.count() == 0,
            create_time=now,
            update_time=now,
        )
        provider = self._apply(base, draft)
        created = await self.store.create(provider=provider)
        log.info("vision provider created", extra={"provider": created.name, "kind": created.kind.value})
        return created

    async def _free_id(self, base: str) -> str:
        candidate, n = base, 1
        while await self.store.get(provider_id=candidate) is not None:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    async def get(self, provider_id: str) -> VisionProvider:
        provider = await self.store.get(provider_id=provider_id)
        if provider is None:
            raise NotFound(f"no vision provider {provider_id!r}", reason="VISION_PROVIDER_NOT_FOUND")
        return provider

    async def list_page(self, *, after_id: str, limit: int) -> list[VisionProvider]:
        return await self.store.list_page(after_id=after_id, limit=limit)

    async def update(self, provider_id: str, draft: ProviderDraft) -> VisionProvider:
        current = await self.get(provider_id)
        changed = replace(self._apply(current, draft), update_time=datetime.now(UTC))
        updated = await self.store.update(provider=changed)
        if updated is None:
            raise NotFound(f"no vision provider {provider_id!r}", reason="VISION_PROVIDER_NOT_FOUND")
        return updated

    async def delete(self, provider_id: str) -> None:
        if not await self.store.delete(provider_id=provider_id):
            raise NotFound(f"no vision provider {provider_id!r}", reason="VISION_PROVIDER_NOT_FOUND")
        self._gates.pop(provider_id, None)

    def _apply(self, provider: VisionProvider, draft: ProviderDraft) -> VisionProvider:
        """The provider with the draft's fields set, checked."""
        changes: dict = {}
        for name in ("display_name", "endpoint", "model", "language"):
            value = getattr(draft, name)
            if value is not None:
                changes[name] = value.strip()
        for name in (
            "kind",
            "prompt",
            "concurrency",
            "timeout_s",
            "max_attempts",
            "json_mode",
            "max_output_tokens",
            "active",
        ):
            value = getattr(draft, name)
            if value is not None:
                changes[name] = value
        if draft.api_key is not None:
            changes["sealed_api_key"] = self.secrets.seal(draft.api_key.strip()) if draft.api_key.strip() else ""
        provider = replace(provider, **changes)
        _check(provider)
        return provider

    # ------------------------------------------------------------------ describing

    async def describe(self, *, data: bytes = b"", storage_key: str = "") -> Description:
        """The active provider's caption and tags for an image (bytes, or a storage key)."""
        image = await self._image(data, storage_key)
        provider = await self.store.active()
        if provider is None:
            raise FailedPrecondition("no vision-language provider is active", reason="VISION_PROVIDER_NOT_CONFIGURED")
        return await self._describe(provider, image)

    async def _image(self, data: bytes, storage_key: str) -> bytes:
        if data:
            if len(data) > self.max_image_bytes:
                raise InvalidArgument(
                    f"the image is larger than {self.max_image_bytes} bytes", reason="IMAGE_TOO_LARGE"
                )
            return data
        if storage_key and self.images_source is not None:
            return await self.images_source.read(storage_key, limit=self.max_image_bytes)
        raise InvalidArgument("the image has neither data nor storage_key", reason="IMAGE_MISSING")

    async def test(self, provider_id: str, image: bytes) -> Description:
        provider = await self.get(provider_id)
        return await self._describe(provider, image or self.sample_image())

    async def _describe(self, provider: VisionProvider, image: bytes) -> Description:
        jpeg = await self.executor.run(vision_image.jpeg_for_vision, image, self.image_px)
        api_key = self.secrets.open(provider.sealed_api_key) if provider.sealed_api_key else ""
        call = VisionCall(
            image=jpeg,
            mime_type="image/jpeg",
            prompt=build_prompt(provider.prompt, provider.language),
            model=provider.model,
            endpoint=provider.endpoint,
            api_key=api_key,
            json_mode=provider.json_mode,
            max_output_tokens=provider.max_output_tokens,
            timeout_s=provider.timeout_s,
        )
        client = self.clients[provider.kind]
        last_problem = ""
        for attempt in range(1, provider.max_attempts + 1):
            retry_after: float | None = None
            started = time.monotonic()
            try:
                async with self._gate(provider):
                    answer = await asyncio.wait_for(client.ask(call), timeout=provider.timeout_s + 5)
                parsed = parse_description(answer.text, cut_short=answer.cut_short)
                return Description(
                    provider=provider,
                    parsed=parsed,
                    raw_output=answer.text[:MAX_RAW_OUTPUT],
                    latency_s=time.monotonic() - started,
                    attempts=attempt,
                )
            except ProviderRefused as refused:
                raise _refused(provider, refused.message, refused.status) from refused
            except VisionRefusal as refusal:
                raise _refused(provider, f"the model declined: {refusal}", 0) from refusal
            except VisionOutputInvalid as invalid:
                last_problem, kind = str(invalid), "invalid"
            except ProviderUnavailable as unavailable:
                last_problem, kind, retry_after = unavailable.message, "unavailable", unavailable.retry_after_s
            except TimeoutError:
                last_problem, kind = f"no answer within {provider.timeout_s:g} s", "unavailable"
            log.warning(
                "vision provider attempt failed",
                extra={"provider": provider.name, "attempt": attempt, "problem": last_problem[:300]},
            )
            if attempt < provider.max_attempts:
                await asyncio.sleep(self.backoff.delay(attempt, retry_after))
        attempts = f"{provider.max_attempts} attempt{'s' if provider.max_attempts > 1 else ''}"
        if kind == "invalid":
            raise FailedPrecondition(
                f"{provider.name} gave no usable answer in {attempts}: {last_problem}"[:1000],
                reason="VISION_OUTPUT_INVALID",
                metadata={"provider": provider.name},
            )
        raise Unavailable(
            f"{provider.name} did not answer in {attempts}: {last_problem}"[:1000],
            reason="VISION_PROVIDER_UNAVAILABLE",
            metadata={"provider": provider.name},
        )

    def _gate(self, provider: VisionProvider) -> asyncio.Semaphore:
        """At most `concurrency` requests in flight per provider (a new semaphore when it changes;
        requests already waiting on the old one finish under the old limit)."""
        held = self._gates.get(provider.id)
        if held is None or held[0] != provider.concurrency:
            held = (provider.concurrency, asyncio.Semaphore(provider.concurrency))
            self._gates[provider.id] = held
        return held[1]


def _refused(provider: VisionProvider, message: str, status: int) -> FailedPrecondition:
    prefix = f"{provider.name} refused" + (f" (HTTP {status})" if status else "")
    return FailedPrecondition(
        f"{prefix}: {message}"[:1000],
        reason="VISION_PROVIDER_REFUSED",
        metadata={"provider": provider.name, **({"http_status": str(status)} if status else {})},
    )


def _check(p: VisionProvider) -> None:
    def invalid(message: str) -> InvalidArgument:
        return InvalidArgument(message, reason="INVALID_VISION_PROVIDER")

    if not p.endpoint:
        raise invalid("endpoint is required")
    if p.kind is ProviderKind.TRITON:
        if "://" in p.endpoint or ":" not in p.endpoint:
            raise invalid("a TRITON endpoint is host:port of its gRPC server, e.g. triton:8001")
    elif not re.match(r"^https?://[^\s/]+", p.endpoint):
        raise invalid("endpoint must be an http:// or https:// URL")
    if not p.model or len(p.model) > 200:
        raise invalid("model is required (at most 200 characters)")
    if len(p.display_name) > 200:
        raise invalid("display_name is at most 200 characters")
    if len(p.prompt) > 20_000:
        raise invalid("prompt is at most 20000 characters")
    if not _LANGUAGE.match(p.language):
        raise invalid("language must be a BCP-47 code such as en, zh or zh-TW")
    if not 1 <= p.concurrency <= 64:
        raise invalid("concurrency must be 1-64")
    if not 1 <= p.timeout_s <= 600:
        raise invalid("timeout must be 1 s to 10 min")
    if not 1 <= p.max_attempts <= 10:
        raise invalid("max_attempts must be 1-10")
    if not 16 <= p.max_output_tokens <= 16384:
        raise invalid("max_output_tokens must be 16-16384")


def provider_id_of(name: str) -> str:
    """The id in "visionProviders/{id}"; INVALID_ARGUMENT otherwise."""
    prefix, _, provider_id = name.partition("/")
    if prefix != PROVIDER_COLLECTION or not _ID.match(provider_id):
        raise InvalidArgument(f"{name!r} is not a vision provider name", reason="INVALID_VISION_PROVIDER_NAME")
    return provider_id
