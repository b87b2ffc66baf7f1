"""Stand-in vision-language providers for tests: one HTTP server (in a thread of the test process)
that speaks the providers' real wire formats, success and error shapes alike:

- OpenAI chat completions, `POST <prefix>/chat/completions`, at the prefixes the real services
  use: /v1 (OpenAI, vLLM, Ollama's OpenAI layer), /compatible-mode/v1 (DashScope), /v1beta/openai
  (Gemini). Errors are {"error": {"message", "type", "param", "code"}} with 401, 404, 429
  (with Retry-After) and 500; Gemini wraps its error object in a list.
- Ollama's native `POST /api/chat`; errors are {"error": "..."}.

Every request is checked the way the real servers would take it: the image must be present
(a base64 data URL in an image_url part, or a base64 entry of Ollama's images array, and it must
decode as an image), the model named, the JSON mode asked in the provider's own words, no
streaming. A malformed request is answered 400 and recorded in `problems`, which tests assert
empty, so a client that sends something a real provider would reject fails its test.

What a model answers is chosen by its name (see `answer_for`): "describe" a good JSON answer,
"fenced" the same in a code fence with prose around, "truncated" cut at the token limit,
"garbage" prose without JSON, "declines" a JSON refusal, "refusal" OpenAI's refusal field,
"filtered" a content-filter stop, "flaky" 429/500 once then good, "broken" 500 always, "slow"
an answer after `slow_s`, "missing" the provider's model-not-found error, "new-params" OpenAI's
400 for max_tokens (wants max_completion_tokens)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

API_KEY = "sk-test-7f3c9a1e5b2d4f60"
OPENAI_PREFIXES = {"/v1": "openai", "/compatible-mode/v1": "dashscope", "/v1beta/openai": "gemini"}


@dataclass
class Received:
    """One request as the stand-in got it."""

    path: str
    headers: dict[str, str]
    body: Any
    image_size: tuple[int, int] | None = None
    image_format: str = ""


@dataclass
class VisionProviderStandIn:
    host: str = "127.0.0.1"
    port: int = 0
    slow_s: float = 3.0
    requests: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    _in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    most_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> VisionProviderStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return

            def do_POST(self) -> None:
                stand_in._handle(self)

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="vision-stand-in", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self, *, settle_s: float = 10.0) -> None:
        """Forgets what was asked, after the answers still being made (to a client that gave up
        waiting, say) are done, so that they count for no later test."""
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            with self._lock:
                if not any(self._in_flight.values()):
                    break
            time.sleep(0.05)
        with self._lock:
            self.requests.clear()
            self.problems.clear()
            self._seen.clear()
            self.most_in_flight.clear()

    def count(self, model: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if isinstance(r.body, dict) and r.body.get("model") == model)

    # ------------------------------------------------------------------ one request

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length)
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = h.path.split("?")[0]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        received = Received(path=path, headers=headers, body=body)
        with self._lock:
            self.requests.append(received)
        if path == "/api/chat":
            self._ollama(h, received)
            return
        prefix = path.removesuffix("/chat/completions")
        if path.endswith("/chat/completions") and prefix in OPENAI_PREFIXES:
            self._openai(h, received, OPENAI_PREFIXES[prefix])
            return
        self._send(h, 404, {"error": f"no route {path}"} if path.startswith("/api/") else "404 page not found")

    def _problem(self, h: BaseHTTPRequestHandler, text: str, flavour: str) -> None:
        with self._lock:
            self.problems.append(text)
        if flavour == "ollama":
            self._send(h, 400, {"error": text})
        else:
            self._openai_error(h, 400, text, "invalid_request_error", flavour, code=None)

    # ------------------------------------------------------------------ OpenAI-compatible

    def _openai(self, h: BaseHTTPRequestHandler, r: Received, flavour: str) -> None:
        if not h.headers.get("content-type", "").startswith("application/json"):
            return self._problem(h, "content-type must be application/json", flavour)
        if h.headers.get("authorization") != f"Bearer {API_KEY}":
            shown = (h.headers.get("authorization") or "").removeprefix("Bearer ")[:5]
            return self._openai_error(
                h,
                401,
                f"Incorrect API key provided: {shown}***. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                flavour,
                code="invalid_api_key",
            )
        body = r.body
        if not isinstance(body, dict):
            return self._problem(h, "the body is not a JSON object", flavour)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._problem(h, "model is required", flavour)
        if body.get("stream"):
            return self._problem(h, "stream must not be requested", flavour)
        if "response_format" in body and body["response_format"] != {"type": "json_object"}:
            return self._problem(h, f"response_format must be json_object: {body['response_format']}", flavour)
        tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if not isinstance(tokens, int) or tokens <= 0:
            return self._problem(h, "max_tokens must be a positive integer", flavour)
        prompt, image = "", None
        for message in body.get("messages") or []:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                return self._problem(h, f"bad message: {str(message)[:100]}", flavour)
            content = message.get("content")
            parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
            for part in parts:
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    prompt += part["text"]
                elif part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    if not url.startswith(
                        ("data:image/jpeg;base64,", "data:image/png;base64,", "data:image/webp;base64,")
                    ):
                        return self._problem(h, f"image_url is not a base64 data URL: {url[:40]}", flavour)
                    image = url.split(",", 1)[1]
                else:
                    return self._problem(h, f"unknown content part {part.get('type')!r}", flavour)
        if not prompt.strip():
            return self._problem(h, "no text in the messages", flavour)
        if image is None:
            return self._problem(h, "no image in the messages", flavour)
        if not self._image(r, image):
            return self._problem(h, "the image does not decode", flavour)
        if model == "missing":
            return self._openai_error(
                h,
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                flavour,
                code="model_not_found",
            )
        if model == "new-params" and "max_tokens" in body:
            return self._openai_error(
                h,
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "invalid_request_error",
                flavour,
                code="unsupported_parameter",
            )
        with self._counting(h, model, "openai") as attempt:
            if model == "flaky" and attempt == 1:
                return self._openai_error(
                    h,
                    429,
                    "Rate limit reached for requests. Please try again in 0.2s.",
                    "requests",
                    flavour,
                    code="rate_limit_exceeded",
                    headers={"retry-after": "0.2"},
                )
            if model == "broken":
                return self._openai_error(
                    h,
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                    flavour,
                    code=None,
                )
            if model == "slow":
                time.sleep(self.slow_s)
            text, finish, refusal = answer_for(model, prompt, r.image_size)
        message = {"role": "assistant", "content": None if refusal else text, "refusal": refusal}
        self._send(
            h,
            200,
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": {"prompt_tokens": 812, "completion_tokens": 95, "total_tokens": 907},
            },
        )

    def _openai_error(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        message: str,
        kind: str,
        flavour: str,
        *,
        code: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if flavour == "gemini":
            names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
            body: Any = [{"error": {"code": status, "message": message, "status": names.get(status, "INTERNAL")}}]
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send(h, status, body, headers=headers)

    # ------------------------------------------------------------------ Ollama native

    def _ollama(self, h: BaseHTTPRequestHandler, r: Received) -> None:
        body = r.body
        if not isinstance(body, dict):
            return self._problem(h, "the body is not a JSON object", "ollama")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._problem(h, "model is required", "ollama")
        if body.get("stream", True) is not False:
            return self._problem(h, "stream must be false (Ollama streams by default)", "ollama")
        if "format" in body and body["format"] != "json" and not isinstance(body["format"], dict):
            return self._problem(h, f'format must be "json" or a schema: {body["format"]}', "ollama")
        options = body.get("options") or {}
        if not isinstance(options.get("num_predict", 1), int):
            return self._problem(h, "options.num_predict must be an integer", "ollama")
        prompt, image = "", None
        for message in body.get("messages") or []:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                return self._problem(h, "each message needs a string content", "ollama")
            prompt += message["content"]
            for item in message.get("images") or []:
                if not isinstance(item, str) or item.startswith("data:"):
                    return self._problem(h, "images must be plain base64 strings", "ollama")
                image = item
        if image is None:
            return self._problem(h, "no image in the messages", "ollama")
        if not self._image(r, image):
            return self._problem(h, "the image does not decode", "ollama")
        if model == "missing":
            return self._send(h, 404, {"error": f'model "{model}" not found, try pulling it first'})
        with self._counting(h, model, "ollama") as attempt:
            if model == "flaky" and attempt == 1:
                return self._send(h, 500, {"error": "llama runner process has terminated: signal: killed"})
            if model == "broken":
                return self._send(h, 500, {"error": "llama runner process has terminated: exit status 2"})
            if model == "slow":
                time.sleep(self.slow_s)
            text, finish, refusal = answer_for(model, prompt, r.image_size)
        self._send(
            h,
            200,
            {
                "model": model,
                "created_at": "2026-11-25T10:00:00.000000Z",
                "message": {"role": "assistant", "content": refusal or text},
                "done": True,
                "done_reason": "length" if finish == "length" else "stop",
                "total_duration": 1_234_000_000,
                "eval_count": 95,
            },
        )

    # ------------------------------------------------------------------ helpers

    def _image(self, r: Received, data: str) -> bool:
        try:
            raw = base64.b64decode(data, validate=True)
            with Image.open(io.BytesIO(raw)) as image:
                image.load()
                r.image_size, r.image_format = image.size, image.format or ""
        except Exception:
            return False
        return True

    class _Counter:
        def __init__(self, stand_in: VisionProviderStandIn, model: str, protocol: str) -> None:
            self.stand_in, self.model, self.protocol = stand_in, model, protocol
            self.finished = False

        def __enter__(self) -> int:
            s = self.stand_in
            with s._lock:
                s._seen[(self.protocol, self.model)] += 1
                s._in_flight[self.model] += 1
                s.most_in_flight[self.model] = max(s.most_in_flight[self.model], s._in_flight[self.model])
                return s._seen[(self.protocol, self.model)]

        def done(self) -> None:
            """The answer is about to be written: the client may send its next request once it has it."""
            with self.stand_in._lock:
                if not self.finished:
                    self.finished = True
                    self.stand_in._in_flight[self.model] -= 1

        def __exit__(self, *exc: object) -> None:
            self.done()

    def _counting(self, h: BaseHTTPRequestHandler, model: str, protocol: str) -> _Counter:
        """Counts a model's requests per protocol (which attempt this is) and those in flight: a
        request stops being in flight before its answer is written (see `_send`), or a client that
        sends its next request as soon as it has an answer would seem to exceed its concurrency."""
        counter = self._Counter(self, model, protocol)
        h.imgtag_counter = counter  # type: ignore[attr-defined]
        return counter

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, body: Any, *, headers: dict[str, str] | None = None
    ) -> None:
        data = (json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body).encode()
        if (counter := getattr(h, "imgtag_counter", None)) is not None:
            counter.done()
        h.send_response(status)
        h.send_header("content-type", "application/json" if not isinstance(body, str) else "text/plain")
        h.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)


# ---------------------------------------------------------------------- what models say

TAGS = {
    "objects": [
        {"en": "cat", "zh": "猫", "confidence": 0.94},
        {"en": "Cushion", "zh": "靠垫", "confidence": 0.61},
    ],
    "colors": [{"en": "orange", "zh": "橙色", "confidence": 0.8}, {"en": "gray", "zh": "灰色", "confidence": 0.55}],
    "scene": {"en": "living room", "zh": "客厅", "confidence": 0.72},
    "mood": {"en": "calm", "zh": "平静", "confidence": 0.66},
}


def caption_for(prompt: str, size: tuple[int, int] | None) -> str:
    """The caption the stand-in writes: in the language the prompt asked for, naming the image
    size it received (so a test sees the image arrived whole)."""
    w, h = size or (0, 0)
    if "written in Simplified Chinese" in prompt:
        return f"一只橙色的猫躺在靠垫上, {w}x{h}。"
    return f"An orange cat resting on a cushion ({w}x{h})."


def answer_for(model: str, prompt: str, size: tuple[int, int] | None) -> tuple[str, str, str | None]:
    """(content, finish_reason, refusal) for a model name."""
    good = json.dumps({"caption": caption_for(prompt, size), **TAGS}, ensure_ascii=False)
    if model == "fenced":
        return (
            f"Here is the description you asked for:\n```json\n{good}\n```\nLet me know if you need more.",
            "stop",
            None,
        )
    if model == "truncated":
        return good[: good.index('"colors"') + 40], "length", None
    if model == "garbage":
        return "What a lovely picture! I think it shows something nice, maybe a pet.", "stop", None
    if model == "declines":
        return json.dumps({"error": "I cannot describe images of this kind."}), "stop", None
    if model == "refusal":
        return "", "stop", "I'm sorry, but I can't help with describing this image."
    if model == "filtered":
        return "", "content_filter", None
    return good, "stop", None
