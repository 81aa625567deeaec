"""The one LLM client: every provider (DeepSeek, OpenRouter, OpenAI, any OpenAI-compatible server)
through the official `openai` package.

It asks for JSON (json_schema where the provider supports it, otherwise json_object with the
schema in the prompt), digs the JSON out of whatever the model wrapped it in, validates it with
pydantic, retries what is worth retrying and turns what is not into an error a user can act on.
"""

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import openai
from django.conf import settings
from pydantic import BaseModel, ValidationError

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_SECONDS = 30.0


class LLMError(Exception):
    """A call that did not give usable output; `message` says what happened and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LLMFatalError(LLMError):
    """The provider refuses us (key, balance, quota, model): retrying cannot help, stop the run."""


class LLMOutputError(LLMError):
    """The model answered, but not with valid output, even after the bounded retries."""


class LLMUnavailableError(LLMError):
    """Timeouts, 429s or 5xx outlasted the retries."""


@dataclass
class Usage:
    """Calls and tokens, summed across the threads of one unit."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    invalid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, tokens_in: int = 0, tokens_out: int = 0, invalid: int = 0) -> None:
        with self._lock:
            self.calls += 1
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
            self.invalid += invalid

    def take(self) -> tuple[int, int, int, int]:
        """Return and reset (calls, tokens_in, tokens_out, invalid)."""
        with self._lock:
            values = (self.calls, self.tokens_in, self.tokens_out, self.invalid)
            self.calls = self.tokens_in = self.tokens_out = self.invalid = 0
            return values


@dataclass(frozen=True)
class Endpoint:
    """What the client needs from an LLMProvider row (a plain value, safe to share across threads)."""

    provider_id: int
    name: str
    base_url: str
    model: str
    api_key: str
    api_key_env: str
    supports_json_schema: bool
    timeout_seconds: float
    max_concurrency: int
    requests_per_minute: int

    @classmethod
    def from_provider(cls, provider) -> "Endpoint":
        return cls(
            provider_id=provider.pk, name=provider.name, base_url=provider.resolved_base_url,
            model=provider.resolved_model, api_key=provider.api_key(), api_key_env=provider.api_key_env,
            supports_json_schema=provider.supports_json_schema, timeout_seconds=provider.timeout_seconds,
            max_concurrency=provider.max_concurrency, requests_per_minute=provider.requests_per_minute,
        )

    def check(self) -> None:
        """Raise LLMFatalError when the endpoint cannot work at all (before any call)."""
        if not self.base_url:
            raise LLMFatalError(f"{self.name}: no base URL — set the provider's base URL or LLM_BASE_URL.")


# --- Parsing -----------------------------------------------------------------------------------

THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
CODE_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str):
    """The first JSON object in a model's answer, ignoring <think> blocks, code fences and prose.

    Raises ValueError when there is none.
    """
    text = THINK_BLOCK.sub("", text or "").strip()
    candidates = [m.group(1).strip() for m in CODE_FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for match in re.finditer(r"[{\[]", candidate):
            try:
                value, _ = decoder.raw_decode(candidate, match.start())
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
            if isinstance(value, list):  # some models answer with the bare list
                return {"items": value}
    raise ValueError("no JSON object in the answer")


def strict_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema with additionalProperties false everywhere (OpenAI strict mode wants it)."""
    schema = model.model_json_schema()

    def close(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                node.setdefault("additionalProperties", False)
                node["required"] = list(node.get("properties", {}))
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


# --- The client --------------------------------------------------------------------------------


def _retry_after_seconds(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                return None  # an HTTP date: fall back to our own backoff
    return None


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(inner.get("code") or inner.get("type") or "")


class LLMClient:
    """Chat completions that return validated pydantic objects.

    `limiter` (distiller.ratelimit.ProviderLimiter) bounds concurrency and requests per minute
    across all workers; each HTTP attempt holds one slot, backoff sleeps hold none.
    """

    def __init__(self, endpoint: Endpoint, *, limiter=None, max_retries: int | None = None,
                 invalid_retries: int | None = None, retry_base_seconds: float | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.endpoint = endpoint
        self.limiter = limiter
        self.max_retries = settings.DISTILL_MAX_RETRIES if max_retries is None else max_retries
        self.invalid_retries = settings.DISTILL_INVALID_RETRIES if invalid_retries is None else invalid_retries
        self.retry_base = settings.DISTILL_RETRY_BASE_MS / 1000 if retry_base_seconds is None else retry_base_seconds
        self.sleep = sleep
        # Our own retries decide; the SDK's would hide Retry-After and fault counts from us.
        self.sdk = openai.OpenAI(api_key=endpoint.api_key or "not-needed", base_url=endpoint.base_url,
                                 timeout=endpoint.timeout_seconds, max_retries=0)
        self._model, self._model_lock = "", threading.Lock()

    def served_model(self) -> str:
        """The endpoint's model, or the first one a local server lists when none is configured."""
        if self.endpoint.model:
            return self.endpoint.model
        with self._model_lock:
            if not self._model:
                try:
                    models = [m.id for m in self.sdk.models.list()]
                except openai.OpenAIError as exc:
                    raise LLMFatalError(f"{self.endpoint.name}: no model configured and {self.endpoint.base_url}"
                                        f"/models failed ({exc.__class__.__name__}) — set LLM_MODEL.") from exc
                if not models:
                    raise LLMFatalError(f"{self.endpoint.name}: no model configured and the server lists none "
                                        "— set LLM_MODEL.")
                self._model = models[0]
            return self._model

    def _fatal(self, exc: openai.APIStatusError) -> LLMFatalError:
        e, status, code = self.endpoint, exc.status_code, _error_code(exc)
        if status == 401:
            if not e.api_key:
                return LLMFatalError(f"{e.name}: no API key (401) — set {e.api_key_env or 'the key variable'}.")
            return LLMFatalError(f"{e.name}: the API key was rejected (401) — check {e.api_key_env}.")
        if status == 402:
            return LLMFatalError(f"{e.name}: insufficient balance (402) — top up or switch provider.")
        if status == 403:
            return LLMFatalError(f"{e.name}: access denied (403) — check that the key in {e.api_key_env} "
                                 f"may use model {e.model!r}.")
        if status == 429:
            return LLMFatalError(f"{e.name}: quota exhausted (429 {code}) — raise the quota or switch provider.")
        if status == 404:
            return LLMFatalError(f"{e.name}: model {e.model!r} or URL {e.base_url} not found (404) — "
                                 "check the provider's model and base URL.")
        message = str(exc.message)[:300]
        hint = " — if the server does not support json_schema, untick it on the provider." if status == 400 else ""
        return LLMFatalError(f"{e.name}: request refused ({status}): {message}{hint}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_BACKOFF_SECONDS) + random.uniform(0, self.retry_base / 4)
        # Full jitter: spreads the retries of many threads and workers apart.
        return random.uniform(0, min(MAX_BACKOFF_SECONDS, self.retry_base * 2 ** attempt))

    def _create(self, usage: Usage | None, **request):
        """One HTTP call with transient-error retries. Returns the SDK response."""
        attempt = 0
        while True:
            try:
                if self.limiter is not None:
                    with self.limiter.slot():
                        return self.sdk.chat.completions.create(**request)
                return self.sdk.chat.completions.create(**request)
            except openai.APIStatusError as exc:
                quota = exc.status_code == 429 and _error_code(exc) in ("insufficient_quota", "quota_exceeded")
                if exc.status_code not in RETRYABLE_STATUSES or quota:
                    if usage is not None:
                        usage.add()
                    raise self._fatal(exc) from exc
                reason, retry_after = f"HTTP {exc.status_code}", _retry_after_seconds(exc)
            except openai.APITimeoutError:
                reason, retry_after = f"no answer within {self.endpoint.timeout_seconds:g}s", None
            except openai.APIConnectionError as exc:
                reason, retry_after = f"connection failed ({exc.__cause__ or exc})", None
            if usage is not None:
                usage.add()  # a failed attempt is a call too (some providers bill it)
            if attempt >= self.max_retries:
                raise LLMUnavailableError(f"{self.endpoint.name}: {reason}, still after {attempt + 1} attempts.")
            delay = self._backoff(attempt, retry_after)
            logger.info("%s: %s; retry %d in %.2fs", self.endpoint.name, reason, attempt + 1, delay)
            self.sleep(delay)
            attempt += 1

    def complete_json(self, *, messages: list[dict], schema: type[BaseModel], schema_name: str,
                      temperature: float = 0.8, max_tokens: int | None = None, usage: Usage | None = None):
        """Ask for one JSON object matching `schema`; return it validated.

        Invalid or truncated output is asked again up to `invalid_retries` times, then raises
        LLMOutputError. Raises LLMFatalError and LLMUnavailableError as documented on them.
        """
        messages = [dict(m) for m in messages]
        request = {"model": self.served_model(), "messages": messages, "temperature": temperature}
        if max_tokens:
            request["max_tokens"] = max_tokens
        json_schema = strict_schema(schema)
        if self.endpoint.supports_json_schema:
            request["response_format"] = {"type": "json_schema", "json_schema": {
                "name": schema_name, "schema": json_schema, "strict": True}}
        else:
            # json_object mode needs the word JSON and the shape in the prompt (DeepSeek, older servers).
            messages[0]["content"] += ("\n\nAnswer with one JSON object only, no prose, matching this JSON schema:\n"
                                       + json.dumps(json_schema, ensure_ascii=False))
            request["response_format"] = {"type": "json_object"}
        problem = ""
        for _ in range(self.invalid_retries + 1):
            response = self._create(usage, **request)
            tokens_in = getattr(response.usage, "prompt_tokens", 0) or 0
            tokens_out = getattr(response.usage, "completion_tokens", 0) or 0
            choice = response.choices[0] if response.choices else None
            content = (choice.message.content if choice and choice.message else "") or ""
            try:
                if choice is not None and choice.finish_reason == "length":
                    raise ValueError("the answer was cut off (finish_reason=length)")
                parsed = schema.model_validate(extract_json(content))
            except (ValueError, ValidationError) as exc:
                problem = str(exc).splitlines()[0][:200]
                if usage is not None:
                    usage.add(tokens_in=tokens_in, tokens_out=tokens_out, invalid=1)
                continue
            if usage is not None:
                usage.add(tokens_in=tokens_in, tokens_out=tokens_out)
            return parsed
        raise LLMOutputError(f"{self.endpoint.name}: invalid output {self.invalid_retries + 1} times "
                             f"(last: {problem}).")
