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
import socket
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import openai
from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, ValidationError

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_SECONDS = 30.0
# A provider's Retry-After is honoured up to this; asked to wait longer, the run stops with the
# wait in its message (resuming later is cheaper than a worker sleeping for an hour).
MAX_RETRY_AFTER_SECONDS = 300.0
# This many refused connections in a row, with no answer in between, and the endpoint is taken
# for dead: the run fails at once instead of retrying every call of every unit (21 attempts and
# 93 s for a 3-unit run before).
REFUSED_IN_A_ROW_LIMIT = 5
# Statuses with which a server refuses a request's shape: a parameter it does not take (OpenAI's
# reasoning models and max_tokens or temperature, llama.cpp and json_schema, a pydantic server and
# any field it does not know). Adapted once per parameter value and call, then remembered.
ADAPTABLE_STATUSES = {400, 422}
# Without one of these words (or OpenAI's unsupported_* codes, or pydantic's extra-field type) a
# message naming a parameter is about its value ("max_tokens must be <= 4096"), not about the
# server refusing the parameter itself: that is the user's to fix, so it still fails.
REFUSAL_WORDS = re.compile(
    r"unsupported|not supported|does not support|doesn't support|not allowed|not permitted|unrecognized|"
    r"unrecognised|unknown|unexpected|extra (?:fields|inputs)|only the default", re.IGNORECASE)
UNKNOWN_FIELD_WORDS = re.compile(r"unrecognized|unrecognised|unknown|unexpected|extra (?:fields|inputs)", re.IGNORECASE)
# Never adapted away: without them there is no request.
ESSENTIAL_FIELDS = ("model", "messages")


def connection_refused(exc: BaseException) -> bool:
    """Whether an openai connection error was a refused TCP connection (nothing listens there)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ConnectionRefusedError) or "connection refused" in str(exc).lower():
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class LLMError(Exception):
    """A call that did not give usable output; `message` says what happened and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LLMFatalError(LLMError):
    """The provider refuses us (key, balance, quota, model): retrying cannot help, stop the run."""


class LLMOutputError(LLMError):
    """The model answered, but not with valid output, even after the bounded retries."""


class LLMTruncatedError(LLMOutputError):
    """The answer was cut off at max_tokens: asking the same again would be cut off again."""


class LLMUnavailableError(LLMError):
    """Timeouts, 429s or 5xx outlasted the retries."""


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as distiller.models.LLMCall stores it."""

    kind: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    outcome: str  # LLMCall.Outcome: ok, invalid, transient, refused
    error_code: str
    started_at: datetime
    # The provider slot's token: its call stays listed in Redis until the record is in the database.
    token: str = ""
    provider_id: int | None = None  # the provider called (a run may call several: a pool, a judge)
    # What this refused attempt taught about the server: ((parameter, adaptation), ...), see
    # LLMClient._adaptations_for; the run stores it on the provider (request_adaptations).
    adapted: tuple[tuple[str, str], ...] = ()


@dataclass
class Usage:
    """Calls and tokens, summed across the threads of one unit, and each call's record."""

    unit_id: int | None = None  # whose calls these are, for the record of a call its process died in
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    invalid: int = 0
    records: list[CallRecord] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # What take() handed out whose transaction has not committed yet (committed() clears it): a
    # rollback (PostgreSQL restarted mid-write) must not lose calls already answered and paid for.
    _taken: list[tuple] = field(default_factory=list, repr=False)

    def add(self, *, tokens_in: int = 0, tokens_out: int = 0, invalid: int = 0,
            record: CallRecord | None = None) -> None:
        with self._lock:
            self.calls += 1
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
            self.invalid += invalid
            if record is not None:
                self.records.append(record)

    def take(self) -> tuple[int, int, int, int, list[CallRecord]]:
        """Return and reset (calls, tokens_in, tokens_out, invalid, records), all at one instant.
        They stay owed until committed(values): restore_uncommitted() puts them back."""
        with self._lock:
            values = (self.calls, self.tokens_in, self.tokens_out, self.invalid, self.records)
            self.calls = self.tokens_in = self.tokens_out = self.invalid = 0
            self.records = []
            self._taken.append(values)
            return values

    def committed(self, values: tuple) -> None:
        """The transaction that wrote what take() returned as `values` has committed."""
        with self._lock:
            self._taken = [taken for taken in self._taken if taken is not values]

    def restore_uncommitted(self) -> None:
        """Put back what was taken but never committed (its transaction rolled back), to be written again."""
        with self._lock:
            for calls, tokens_in, tokens_out, invalid, records in self._taken:
                self.calls += calls
                self.tokens_in += tokens_in
                self.tokens_out += tokens_out
                self.invalid += invalid
                self.records = records + self.records
            self._taken = []


@dataclass(frozen=True)
class Endpoint:
    """What the client needs from an LLMProvider row (a plain value, safe to share across threads)."""

    provider_id: int
    name: str
    base_url: str
    model: str
    # Out of the repr: dataclass reprs end up in DEBUG tracebacks and logs.
    api_key: str = field(repr=False)
    api_key_env: str
    supports_json_schema: bool
    timeout_seconds: float
    max_concurrency: int
    requests_per_minute: int
    # What the provider row remembers the server refuses ({parameter: adaptation} as items).
    adaptations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_provider(cls, provider, *, resolved: dict | None = None) -> "Endpoint":
        """The provider's endpoint; LLMFatalError when its key variable is not one a provider key may live in.

        `resolved` is what a run stored at its start ({"base_url", "model"}, see
        distiller.services.runs.run_endpoints_resolve): a worker then calls that, not what its own
        environment would resolve. A provider that needs a key and finds none in this process's
        environment is refused naming the variable and this host."""
        from distiller.models import LLMProvider, key_variable_problem

        problem = key_variable_problem(provider.api_key_env)
        if problem:
            raise LLMFatalError(f"{provider.name}: refusing to send {provider.api_key_env} as its API key. {problem}")
        key = provider.api_key()
        if provider.api_key_env and not key and provider.kind != LLMProvider.Kind.CUSTOM:
            raise LLMFatalError(f"{provider.name}: {provider.api_key_env} is not set in the environment of the "
                                f"worker on {socket.gethostname()}; set it there (keys are never stored).")
        resolved = resolved or {}
        return cls(
            provider_id=provider.pk, name=provider.name, base_url=resolved.get("base_url") or provider.resolved_base_url,
            model=resolved.get("model", provider.resolved_model), api_key=key, api_key_env=provider.api_key_env,
            supports_json_schema=provider.supports_json_schema, timeout_seconds=provider.timeout_seconds,
            max_concurrency=provider.max_concurrency, requests_per_minute=provider.requests_per_minute,
            adaptations=tuple(sorted((provider.request_adaptations or {}).items())),
        )

    def check(self) -> None:
        """Raise LLMFatalError when the endpoint cannot work at all (before any call)."""
        if not self.base_url:
            raise LLMFatalError(f"{self.name}: no base URL — set the provider's base URL or LLM_BASE_URL.")


# --- Parsing -----------------------------------------------------------------------------------

THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
CODE_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str):
    """The first JSON object (or bare list) in a model's answer, ignoring <think> blocks, code fences and prose.

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
            if isinstance(value, dict | list):
                return value
    raise ValueError("no JSON object in the answer")


def fit_schema(value, schema: type[BaseModel]):
    """Some models answer with the bare list: make it the schema's one list field ({"questions": [...]})."""
    if not isinstance(value, list):
        return value
    lists = [name for name, info in schema.model_fields.items() if typing.get_origin(info.annotation) is list]
    if len(lists) != 1:
        raise ValueError("a bare JSON list, but the answer must be an object")
    return {lists[0]: value}


def _echoes_schema(value) -> bool:
    """Whether a model sent back a JSON schema (as some do in json_object mode) instead of an answer."""
    return isinstance(value, dict) and ("properties" in value or "$defs" in value
                                        or value.get("type") == "object" or "json_schema" in value)


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


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own words: the SDK's message, or a FastAPI/pydantic 422's detail list, which
    the SDK reduces to "Error code: 422"."""
    detail = exc.body.get("detail") if isinstance(exc.body, dict) else None
    if isinstance(detail, list) and detail:
        parts = [f"{'.'.join(str(p) for p in (item.get('loc') or [])[1:]) or 'request'}: {item.get('msg', '')}"
                 for item in detail if isinstance(item, dict)]
        return f"{exc.message} - " + "; ".join(parts)
    return str(exc.message)


# What each server refuses, learned this process's lifetime: {(provider id, base URL, model):
# {parameter: adaptation}}. Keyed by URL and model too: another model behind the same provider row
# (o3 after gpt-4o) may take what this one refuses. The run also stores it on the provider row,
# so other workers start from it (Endpoint.adaptations).
_learned: dict[tuple, dict[str, str]] = {}
_learned_lock = threading.Lock()

# Adaptations, as stored: max_tokens -> "max_completion_tokens"; response_format -> "json_object"
# or "none"; any other parameter -> "dropped".
ADAPTATION_TEXT = {"max_completion_tokens": "sent as max_completion_tokens", "json_object": "json_object instead of "
                   "json_schema", "none": "not sent (the prompt carries the shape)", "dropped": "not sent"}


def adaptation_describe(parameter: str, adaptation: str) -> str:
    """'max_tokens sent as max_completion_tokens': what the client does about a refused parameter."""
    if parameter == "response_format" and adaptation == "json_object":
        return "response_format json_object instead of json_schema"
    return f"{parameter} {ADAPTATION_TEXT.get(adaptation, adaptation)}"


def _refused_parameters(exc: openai.APIStatusError, request: dict) -> tuple[list[str], bool]:
    """The top-level fields of `request` the server refused, and whether it called them unknown fields.

    Structured answers first (OpenAI's `param`, pydantic's `detail[].loc`), then the message text:
    a field we sent named in it, with words saying it is refused (REFUSAL_WORDS).
    """
    sent = [name for name in request if name not in ESSENTIAL_FIELDS]
    body = exc.body if isinstance(exc.body, dict) else {}
    if isinstance(body.get("error"), dict):
        body = body["error"]
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI / pydantic: [{"loc": ["body", "seed"], "msg": ..., "type": ...}]
        named = []
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = [str(part) for part in item.get("loc") or []]
            field_name = loc[1] if len(loc) > 1 and loc[0] == "body" else (loc[0] if loc else "")
            words = f"{item.get('type', '')} {item.get('msg', '')}"
            extra = "extra" in words or bool(UNKNOWN_FIELD_WORDS.search(words))
            if field_name in sent and field_name not in named and (extra or REFUSAL_WORDS.search(words)):
                named.append(field_name)
        if named:
            return named, True
    message = str(body.get("message") or body.get("detail") or body.get("error") or exc.message or "")
    code = str(body.get("code") or "")
    param = str(body.get("param") or "")
    refused = code.startswith("unsupported") or bool(REFUSAL_WORDS.search(message))
    if not refused:
        return [], False
    unknown = bool(UNKNOWN_FIELD_WORDS.search(message)) or code in ("unknown_parameter", "unrecognized_parameter")
    top = re.split(r"[.\[]", param, maxsplit=1)[0]
    if top in sent:
        return [top], unknown
    named = [name for name in sent if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message)]
    response_format = (request.get("response_format") or {}).get("type")
    if not named and response_format and re.search(rf"\b{response_format}\b", message):
        named = ["response_format"]  # llama.cpp: "json_schema is not supported"
    return named, unknown


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
        # Shared by every thread of a run's work job: refused connections in a row, reset by any answer.
        self._refused, self._refused_lock = 0, threading.Lock()

    def _adaptation_key(self) -> tuple:
        return (self.endpoint.provider_id, self.endpoint.base_url, self._model or self.endpoint.model)

    def adaptations(self) -> dict[str, str]:
        """What this server is known to refuse, {parameter: adaptation}: the provider row's, then this process's."""
        with _learned_lock:
            return {**dict(self.endpoint.adaptations), **_learned.get(self._adaptation_key(), {})}

    def _learn(self, changes: list[tuple[str, str]]) -> None:
        with _learned_lock:
            _learned.setdefault(self._adaptation_key(), {}).update(changes)

    def _adaptations_for(self, exc: openai.APIStatusError, request: dict, tried: set) -> list[tuple[str, str]]:
        """How to change `request` so the server takes it ([(parameter, adaptation)]); [] when it
        names no parameter we sent, or only steps this call already took (so it never loops)."""
        if exc.status_code not in ADAPTABLE_STATUSES:
            return []
        names, unknown = _refused_parameters(exc, request)
        changes = []
        for name in names:
            if name == "max_tokens":
                adaptation = "max_completion_tokens"
            elif name == "response_format":
                sent = (request.get("response_format") or {}).get("type")
                # An unknown field is refused in every mode: straight to none.
                adaptation = "json_object" if sent == "json_schema" and not unknown else "none"
            else:
                adaptation = "dropped"
            step = (name, str(request.get(name))[:100])
            if step not in tried:
                tried.add(step)
                changes.append((name, adaptation))
        return changes

    def _note_refused(self, refused: bool) -> int:
        with self._refused_lock:
            self._refused = self._refused + 1 if refused else 0
            return self._refused

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
        message = _server_message(exc)[:300]
        hint = " — if the server does not support json_schema, untick it on the provider." if status == 400 else ""
        return LLMFatalError(f"{e.name}: request refused ({status}): {message}{hint}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, self.retry_base / 4)
        # Full jitter: spreads the retries of many threads and workers apart.
        return random.uniform(0, min(MAX_BACKOFF_SECONDS, self.retry_base * 2 ** attempt))

    def _record(self, usage: Usage | None, kind: str, started: tuple[datetime, float, str], outcome: str,
                error_code: str = "", tokens_in: int = 0, tokens_out: int = 0,
                adapted: tuple[tuple[str, str], ...] = ()) -> None:
        if usage is None:
            return
        at, clock, token = started
        usage.add(tokens_in=tokens_in, tokens_out=tokens_out, invalid=int(outcome == "invalid"), record=CallRecord(
            kind=kind, model=self._model or self.endpoint.model, tokens_in=tokens_in, tokens_out=tokens_out,
            latency_ms=round((time.monotonic() - clock) * 1000), outcome=outcome, error_code=error_code[:64],
            started_at=at, token=token, provider_id=self.endpoint.provider_id, adapted=adapted))

    def _call_note(self, usage: Usage | None, kind: str) -> str:
        """What the limiter keeps about a run's call until it is recorded (JSON; '' outside runs)."""
        run_id = getattr(self.limiter, "run_id", None)
        if usage is None or not run_id:
            return ""
        return json.dumps({"run": run_id, "unit": usage.unit_id, "kind": kind,
                           "model": self._model or self.endpoint.model, "at": timezone.now().isoformat()})

    def _create(self, usage: Usage | None, kind: str, build: Callable[[], dict]):
        """One HTTP call with transient-error retries. Returns the SDK response and when it started.

        `build()` makes the request from what the server is known to refuse (self.adaptations()):
        a 400/422 naming a parameter we sent teaches one more adaptation and the call is made again
        at once, not counted against the retries. The refused attempt is recorded (outcome transient,
        error code unsupported_<parameter>) with what it taught (CallRecord.adapted)."""
        attempt, tried = 0, set()
        request = build()
        while True:
            started = (timezone.now(), time.monotonic(), "")
            try:
                if self.limiter is not None:
                    with self.limiter.slot(self._call_note(usage, kind)) as token:
                        started = (timezone.now(), time.monotonic(), token)  # the wait for a slot is not latency
                        response = self.sdk.chat.completions.create(**request)
                else:
                    response = self.sdk.chat.completions.create(**request)
                self._note_refused(False)
                return response, started
            except openai.APIStatusError as exc:
                self._note_refused(False)
                code = _error_code(exc)
                quota = exc.status_code == 429 and code in ("insufficient_quota", "quota_exceeded")
                changes = self._adaptations_for(exc, request, tried)
                if changes:
                    self._record(usage, kind, started, "transient", f"unsupported_{changes[0][0]}",
                                 adapted=tuple(changes))
                    self._learn(changes)
                    logger.warning("%s refused %s (%s): %s; asking again without it", self.endpoint.name,
                                   ", ".join(name for name, _ in changes), exc.status_code,
                                   "; ".join(adaptation_describe(*change) for change in changes))
                    request = build()
                    continue
                if exc.status_code not in RETRYABLE_STATUSES or quota:
                    self._record(usage, kind, started, "refused", code or f"http_{exc.status_code}")
                    raise self._fatal(exc) from exc
                reason, retry_after = f"HTTP {exc.status_code}", _retry_after_seconds(exc)
                error_code = f"http_{exc.status_code}"
            except openai.APITimeoutError:
                self._note_refused(False)  # something listens there
                reason, retry_after = f"no answer within {self.endpoint.timeout_seconds:g}s", None
                error_code = "timeout"
            except openai.APIConnectionError as exc:
                reason, retry_after = f"connection failed ({exc.__cause__ or exc})", None
                error_code = "connection"
                refused = connection_refused(exc)
                in_a_row = self._note_refused(refused)
                if refused and in_a_row >= REFUSED_IN_A_ROW_LIMIT:
                    self._record(usage, kind, started, "transient", "connection_refused")
                    raise LLMFatalError(
                        f"{self.endpoint.name}: cannot connect to {self.endpoint.base_url}: connection refused "
                        f"({in_a_row} attempts in a row, none answered) — start the server or fix the provider's "
                        "base URL, then resume the run.") from exc
                if refused:
                    error_code = "connection_refused"
            # A failed attempt is a call too (some providers bill it).
            self._record(usage, kind, started, "transient", error_code)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
                raise LLMFatalError(f"{self.endpoint.name}: the provider asked to wait {retry_after:.0f} s ({reason}) "
                                    f"— more than {MAX_RETRY_AFTER_SECONDS:.0f} s; resume the run later.")
            if attempt >= self.max_retries:
                raise LLMUnavailableError(f"{self.endpoint.name}: {reason}, still after {attempt + 1} attempts.")
            delay = self._backoff(attempt, retry_after)
            logger.info("%s: %s; retry %d in %.2fs", self.endpoint.name, reason, attempt + 1, delay)
            self.sleep(delay)
            attempt += 1

    def complete_json(self, *, messages: list[dict], schema: type[BaseModel], schema_name: str,
                      temperature: float = 0.8, max_tokens: int | None = None, usage: Usage | None = None,
                      example: dict | None = None, split_truncated: bool = False):
        """Ask for one JSON object matching `schema`; return it validated.

        Invalid output is asked again up to `invalid_retries` times, then raises LLMOutputError
        saying what the model did wrong and what to change. `example` (an answer of the right
        shape) is shown in json_object mode. With `split_truncated`, an answer cut off at
        max_tokens raises LLMTruncatedError at once (the caller asks for less); otherwise it is
        retried like invalid output. Raises LLMFatalError and LLMUnavailableError as documented on them.
        """
        json_schema = strict_schema(schema)
        mode = ""

        def build() -> dict:
            nonlocal mode
            model = self.served_model()  # first: what the server refuses is known per model
            adaptations = self.adaptations()
            mode = "json_schema" if self.endpoint.supports_json_schema else "json_object"
            if adaptations.get("response_format") == "none" or (
                    mode == "json_schema" and adaptations.get("response_format") == "json_object"):
                mode = adaptations["response_format"]
            asked = [dict(m) for m in messages]
            request = {"model": model, "messages": asked, "temperature": temperature}
            if max_tokens:
                renamed = adaptations.get("max_tokens") == "max_completion_tokens"
                request["max_completion_tokens" if renamed else "max_tokens"] = max_tokens
            if mode == "json_schema":
                request["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": schema_name, "schema": json_schema, "strict": True}}
            else:
                # json_object mode (and no mode at all) needs the word JSON and the shape in the
                # prompt (DeepSeek, older servers).
                asked[0]["content"] += ("\n\nAnswer with one JSON object only, no prose, matching this JSON "
                                        "schema:\n" + json.dumps(json_schema, ensure_ascii=False))
                if example is not None:
                    # Without one, some models answer with the schema itself.
                    asked[0]["content"] += ("\nFill it with your own answer; an example of the shape (not of "
                                            "the content):\n" + json.dumps(example, ensure_ascii=False))
                if mode == "json_object":
                    request["response_format"] = {"type": "json_object"}
            for name, adaptation in adaptations.items():
                if adaptation == "dropped" and name not in ESSENTIAL_FIELDS:
                    request.pop(name, None)
            return request

        problem, codes = "", []
        for _ in range(self.invalid_retries + 1):
            response, started = self._create(usage, schema_name, build)
            tokens_in = getattr(response.usage, "prompt_tokens", 0) or 0
            tokens_out = getattr(response.usage, "completion_tokens", 0) or 0
            choice = response.choices[0] if response.choices else None
            content = (choice.message.content if choice and choice.message else "") or ""
            try:
                if choice is not None and choice.finish_reason == "length":
                    code = "truncated"
                    raise ValueError("the answer was cut off (finish_reason=length)")
                code = "invalid_json"
                value = fit_schema(extract_json(content), schema)
                code = "schema_echo" if _echoes_schema(value) else "schema_mismatch"
                parsed = schema.model_validate(value)
            except (ValueError, ValidationError) as exc:
                problem = str(exc).splitlines()[0][:200]
                self._record(usage, schema_name, started, "invalid", code, tokens_in, tokens_out)
                if code == "truncated" and split_truncated:
                    raise LLMTruncatedError(f"{self.endpoint.name}: the answer was cut off at {max_tokens} "
                                            "tokens.") from None
                codes.append((code, value if code != "invalid_json" and code != "truncated" else None))
                continue
            self._record(usage, schema_name, started, "ok", "", tokens_in, tokens_out)
            return parsed
        raise LLMOutputError(self._output_advice(codes, problem, schema, mode))

    def complete_json_sourced(self, **request):
        """complete_json, and who answered: (answer, provider name, model) — the shape of TeacherPool's."""
        return self.complete_json(**request), self.endpoint.name, self.served_model()

    def _output_advice(self, codes: list[tuple[str, object]], problem: str, schema: type[BaseModel],
                       mode: str) -> str:
        """Why the answers were unusable, and what to change."""
        name, times = self.endpoint.name, self.invalid_retries + 1
        mode = "no response_format" if mode in ("", "none") else mode
        last, value = codes[-1] if codes else ("", None)
        if last == "schema_echo":
            return (f"{name}: invalid output {times} times: model {self._model or self.endpoint.model!r} answered "
                    f"with the JSON schema itself instead of an answer ({mode} mode). Choose a model that follows "
                    "instructions (a chat model, not a reasoning or base model), or tick 'supports json_schema' "
                    "on the provider if its server supports it.")
        if last == "schema_mismatch":
            got = sorted(value)[:6] if isinstance(value, dict) else type(value).__name__
            want = sorted(schema.model_fields)
            return (f"{name}: invalid output {times} times: the answers had the wrong shape (keys {got}, "
                    f"expected {want}; last: {problem}) in {mode} mode. Choose a model that follows the "
                    "example answer, or tick 'supports json_schema' on the provider if its server supports it.")
        return f"{name}: invalid output {times} times (last: {problem})."
