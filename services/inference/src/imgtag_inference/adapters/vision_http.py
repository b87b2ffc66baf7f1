"""Vision-language providers over HTTP (httpx): OpenAI-compatible chat completions and Ollama's
native chat API, each with its own error shapes turned into the domain's refusal (not retried)
or unavailability (retried).

OpenAI-compatible (OpenAI, DashScope compatible mode, Gemini's OpenAI endpoint, vLLM, Ollama /v1):
    POST {endpoint}/chat/completions
    {"model", "messages": [{"role": "system", ...}, {"role": "user", "content": [{"type": "text"},
     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}]}],
     "max_tokens", "temperature", "response_format": {"type": "json_object"}}
    -> {"choices": [{"message": {"content", "refusal"}, "finish_reason"}]}
    errors: {"error": {"message", "type", "code"}} (Gemini: a list of such objects)
Ollama native:
    POST {endpoint}/api/chat {"model", "messages": [{"role", "content", "images": [base64]}],
     "stream": false, "format": "json", "options": {"num_predict", "temperature"}}
    -> {"message": {"content"}, "done": true, "done_reason"}; errors: {"error": "..."}"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from imgtag_inference.domain.vision import ProviderRefused, ProviderUnavailable, VisionAnswer, VisionCall

TEMPERATURE = 0.2
# Not worth retrying: the request itself is wrong. 408 and 429 are (below).
_RETRIED_4XX = {408, 409, 425, 429}


class HttpVisionClients:
    """One connection pool for every HTTP provider; `openai` and `ollama` speak the protocols."""

    def __init__(self, *, verify: bool | str = True) -> None:
        self._client = httpx.AsyncClient(verify=verify, follow_redirects=False, trust_env=False)
        self.openai = OpenAICompatibleClient(self._client)
        self.ollama = OllamaClient(self._client)

    async def close(self) -> None:
        await self._client.aclose()


class OpenAICompatibleClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def ask(self, call: VisionCall) -> VisionAnswer:
        image = base64.b64encode(call.image).decode()
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": call.prompt},
                        {"type": "image_url", "image_url": {"url": f"data:{call.mime_type};base64,{image}"}},
                    ],
                }
            ],
            "max_tokens": call.max_output_tokens,
            "temperature": TEMPERATURE,
        }
        if call.json_mode:
            body["response_format"] = {"type": "json_object"}
        url = call.endpoint.rstrip("/") + "/chat/completions"
        try:
            reply = await _post(self._client, url, body, call)
        except ProviderRefused as refused:
            # Newer OpenAI models take max_completion_tokens instead; ask again the way they want.
            if refused.status == 400 and "max_completion_tokens" in refused.message:
                body["max_completion_tokens"] = body.pop("max_tokens")
                reply = await _post(self._client, url, body, call)
            else:
                raise
        try:
            choice = reply["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError) as error:
            raise ProviderUnavailable(f"the answer has no choices: {_short(reply)}") from error
        if message.get("refusal"):
            raise ProviderRefused(f"the model declined: {message['refusal']}")
        finish = choice.get("finish_reason")
        if finish == "content_filter":
            raise ProviderRefused("the provider's content filter stopped the answer")
        return VisionAnswer(text=_content_text(message.get("content")), cut_short=finish == "length")


class OllamaClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def ask(self, call: VisionCall) -> VisionAnswer:
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [
                {"role": "user", "content": call.prompt, "images": [base64.b64encode(call.image).decode()]},
            ],
            "stream": False,
            "options": {"temperature": TEMPERATURE, "num_predict": call.max_output_tokens},
        }
        if call.json_mode:
            body["format"] = "json"
        reply = await _post(self._client, call.endpoint.rstrip("/") + "/api/chat", body, call)
        message = reply.get("message") if isinstance(reply, dict) else None
        if not isinstance(message, dict):
            raise ProviderUnavailable(f"the answer has no message: {_short(reply)}")
        return VisionAnswer(text=_content_text(message.get("content")), cut_short=reply.get("done_reason") == "length")


async def _post(client: httpx.AsyncClient, url: str, body: dict, call: VisionCall) -> Any:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if call.api_key:
        headers["authorization"] = f"Bearer {call.api_key}"
    try:
        response = await client.post(url, json=body, headers=headers, timeout=httpx.Timeout(call.timeout_s))
    except httpx.TimeoutException as error:
        raise ProviderUnavailable(f"no answer within {call.timeout_s:g} s ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        raise ProviderUnavailable(f"cannot reach {url}: {type(error).__name__}: {error}") from error
    if response.status_code >= 400:
        message = _error_message(response)
        if response.status_code >= 500 or response.status_code in _RETRIED_4XX:
            raise ProviderUnavailable(
                f"HTTP {response.status_code}: {message}", retry_after_s=_retry_after(response.headers)
            )
        raise ProviderRefused(message, status=response.status_code)
    try:
        return response.json()
    except ValueError as error:
        raise ProviderUnavailable(f"the answer is not JSON: {_short(response.text)}") from error


def _error_message(response: httpx.Response) -> str:
    """The provider's own words: OpenAI {"error": {"message"}}, Gemini [{"error": {...}}],
    Ollama {"error": "..."}; else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text) or response.reason_phrase
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str):
            return error[:500]
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            # OpenAI: code "invalid_api_key" (or type); Gemini: code 401 with status "UNAUTHENTICATED"
            code = next((v for v in (error.get(k) for k in ("code", "status", "type")) if isinstance(v, str) and v), "")
            return (f"{message} ({code})" if code and str(code) not in message else message)[:500] or _short(body)
    return _short(body)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


def _content_text(content: Any) -> str:
    """Message content: a string, or a list of parts (some servers answer that way)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:300]
