"""The teacher's HTTP side: /v1/chat/completions and /v1/models, plus /teacher/stats,
/teacher/reset and /teacher/config for tests. Latency and faults are injected here.

A development tool (see __init__.py). Stdlib only: a ThreadingHTTPServer serves each request
on its own thread, so latency overlaps the way a real provider's does.
"""

import hashlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from distiller.teacher.content import answer_payload, render, stable_rng

logger = logging.getLogger(__name__)

TRANSIENT_FAULTS = ("429", "500", "malformed", "truncated", "hang")
# Not in the default mix: 408 and 409 are rare, and a quota 429 (insufficient_quota) stops a run.
ALL_FAULTS = (*TRANSIENT_FAULTS, "408", "409", "quota")
# Above the providers' default timeout (LLMProvider.timeout_seconds, 120 s), so that by default
# a "hang" is what it imitates: a call the client gives up on.
DEFAULT_HANG_SECONDS = 150.0


@dataclass
class TeacherConfig:
    seed: int = 0
    latency: float = 0.0  # seconds per completion
    fault_rate: float = 0.0  # share of completions that get one of `faults`
    faults: tuple[str, ...] = TRANSIENT_FAULTS
    malformed_rate: float = 0.0  # share of completions answered with broken JSON, on top of fault_rate
    retry_after: float = 1.0  # seconds, sent with 429
    hang_seconds: float = DEFAULT_HANG_SECONDS  # how long a "hang" fault sleeps before answering
    fail_status: int = 0  # 400, 401, 402 or 403: answer every completion after `fail_after` with it
    fail_after: int = 0
    model: str = "teacher-1"
    # Answer every questions request with the same few sentences, whatever was asked or already
    # exists: a unit can then never reach its target (the shortfall path).
    repeat_questions: bool = False
    # The judge puts this share of questions (chosen by a hash of their text, see
    # content.judge_disagrees) under a neighbouring intent.
    judge_disagree_rate: float = 0.0
    # A model that answers json_object requests with the JSON schema itself: "always", or
    # "without_example" (it follows an example answer when the prompt has one).
    echo_schema: str = ""
    # Answer every request with finish_reason "length" when it asks for more than this many items
    # (0: never): a batch too large for max_tokens, which only smaller batches get through.
    truncate_above_items: int = 0
    # Servers that refuse request parameters (see LLMClient._adaptations_for): OpenAI's reasoning
    # models refuse max_tokens and any temperature but 1; "json_schema" refuses that
    # response_format (older llama.cpp), "any" every response_format; `accepted_fields`, when set,
    # makes every other top-level field a 422 with a pydantic body (a FastAPI server, extra=forbid).
    refuse_max_tokens: bool = False
    refuse_temperature: bool = False
    refuse_response_format: str = ""
    accepted_fields: tuple[str, ...] = ()


@dataclass
class TeacherStats:
    requests: int = 0
    completions: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults: dict = field(default_factory=dict)


class Teacher:
    """The state shared by the server's threads."""

    def __init__(self, config: TeacherConfig | None = None):
        self.config = config or TeacherConfig()
        self.stats = TeacherStats()
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        # The messages of the latest completion request: tests read what a prompt really said.
        self.last_messages: list[dict] = []
        # Every completion request's fields but its messages, refused ones too, in arrival order:
        # tests read what the client really sent.
        self.received: list[dict] = []

    def reset(self) -> None:
        with self.lock:
            self.stats = TeacherStats()
            self.seen = {}
            self.received = []

    def configure(self, **changes) -> None:
        with self.lock:
            for name, value in changes.items():
                if not hasattr(self.config, name):
                    raise ValueError(f"unknown teacher setting {name!r}")
                setattr(self.config, name, tuple(value) if name in ("faults", "accepted_fields") else value)

    def fault_for(self, body_key: str) -> str:
        """Deterministic for a seed: the n-th identical request always meets the same fate."""
        with self.lock:
            config = self.config
            self.stats.completions += 1
            if config.fail_status and self.stats.completions > config.fail_after:
                return str(config.fail_status)
            attempt = self.seen.get(body_key, 0)
            self.seen[body_key] = attempt + 1
        rng = stable_rng(config.seed, "fault", body_key, attempt)
        if config.fault_rate and rng.random() < config.fault_rate and config.faults:
            return rng.choice(list(config.faults))
        if config.malformed_rate and rng.random() < config.malformed_rate:
            return "malformed"
        return ""

    def refusal(self, request: dict) -> tuple[int, dict] | None:
        """The (status, body) with which this server refuses the request's parameters, if it does.

        The bodies are the real servers' shapes: OpenAI's error object, FastAPI's 422 detail list."""
        config = self.config
        if config.accepted_fields:
            extra = [name for name in request if name not in config.accepted_fields]
            if extra:
                return 422, {"detail": [{"loc": ["body", name], "msg": "extra fields not permitted",
                                         "type": "value_error.extra"} for name in extra]}
        if config.refuse_max_tokens and "max_tokens" in request:
            return 400, {"error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                           "'max_completion_tokens' instead.",
                "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}
        if config.refuse_temperature and request.get("temperature", 1) != 1:
            return 400, {"error": {
                "message": f"Unsupported value: 'temperature' does not support {request['temperature']} with this "
                           "model. Only the default (1) value is supported.",
                "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}
        response_format = (request.get("response_format") or {}).get("type")
        if response_format and config.refuse_response_format in (response_format, "any"):
            # llama.cpp's shape: no param, the name only in the message.
            return 400, {"error": {"message": f"response_format type {response_format} is not supported by this "
                                              "server", "type": "invalid_request_error", "code": 400}}
        return None

    def count_fault(self, fault: str) -> None:
        with self.lock:
            self.stats.faults[fault] = self.stats.faults.get(fault, 0) + 1


ERRORS = {
    "401": (401, "invalid_api_key", "Incorrect API key provided."),
    "402": (402, "insufficient_balance", "Insufficient Balance"),
    "400": (400, "invalid_request_error", "Your request was rejected by the content policy."),
    "403": (403, "permission_denied", "This key may not use this model."),
    "408": (408, "request_timeout", "The request timed out."),
    "409": (409, "conflict", "Another request is being processed; try again."),
    "429": (429, "rate_limit_exceeded", "Rate limit reached, slow down."),
    "quota": (429, "insufficient_quota", "You exceeded your current quota."),
    "500": (500, "server_error", "The server had an error while processing your request."),
}


class TeacherHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
    teacher: Teacher  # set by make_server

    def log_message(self, format, *args):  # the default writes every request to stderr
        logger.debug("teacher: " + format, *args)

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            model = self.teacher.config.model
            return self._send(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "teacher"}]})
        if self.path.rstrip("/") == "/teacher/stats":
            with self.teacher.lock:
                return self._send(200, {**asdict(self.teacher.stats), "config": asdict(self.teacher.config)})
        self._send(404, {"error": {"message": "not found", "code": "not_found"}})

    def do_POST(self):
        raw = self._body()
        path = self.path.rstrip("/")
        if path == "/teacher/reset":
            self.teacher.reset()
            return self._send(200, {"ok": True})
        if path == "/teacher/config":
            try:
                self.teacher.configure(**json.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                return self._send(400, {"error": {"message": str(exc), "code": "invalid"}})
            return self._send(200, asdict(self.teacher.config))
        if path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found", "code": "not_found"}})
        teacher = self.teacher
        with teacher.lock:
            teacher.stats.requests += 1
            teacher.stats.in_flight += 1
            teacher.stats.max_in_flight = max(teacher.stats.max_in_flight, teacher.stats.in_flight)
        try:
            self._complete(raw)
        finally:
            with teacher.lock:
                teacher.stats.in_flight -= 1

    def _complete(self, raw: bytes) -> None:
        teacher, config = self.teacher, self.teacher.config
        try:
            request = json.loads(raw)
            messages = request["messages"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return self._send(400, {"error": {"message": "expected a chat completion request", "code": "invalid"}})
        body_key = hashlib.sha1(raw).hexdigest()
        with teacher.lock:
            teacher.last_messages = messages
            teacher.received.append({name: value for name, value in request.items() if name != "messages"})
        refusal = teacher.refusal(request)
        if refusal:
            teacher.count_fault(f"refused_{refusal[0]}")
            return self._send(*refusal)
        fault = teacher.fault_for(body_key)
        if fault:
            teacher.count_fault(fault)
        if config.latency:
            time.sleep(config.latency)
        if fault == "hang":
            time.sleep(config.hang_seconds)
        if fault in ERRORS:
            status, code, message = ERRORS[fault]
            headers = {"Retry-After": f"{config.retry_after:g}"} if status == 429 else {}
            return self._send(status, {"error": {"message": message, "type": code, "code": code}}, headers)
        response_format = (request.get("response_format") or {}).get("type")
        payload = answer_payload(messages, config.seed, config.judge_disagree_rate)
        if config.repeat_questions and "questions" in payload:
            payload["questions"] = [{"n": item["n"], "text": f"The same question number {i % 3} again?"}
                                    for i, item in enumerate(payload["questions"])]
        content = render(payload, strict_json=response_format == "json_schema",
                         seed=config.seed, body_key=body_key)
        finish = "stop"
        system = str(messages[0].get("content", "")) if messages else ""
        if response_format == "json_object" and (
                config.echo_schema == "always"
                or (config.echo_schema == "without_example" and "an example of the shape" not in system)):
            at = system.find("matching this JSON schema:")
            content = system[at:].split("\n", 1)[1].split("\n", 1)[0] if at >= 0 else '{"type": "object"}'
        items = len(payload.get("questions") or payload.get("verdicts") or [])
        if config.truncate_above_items and items > config.truncate_above_items:
            content, finish = content[: max(1, len(content) // 2)], "length"
        if fault == "malformed":
            content = "{'questions': [oops, this is not JSON" if "questions" in content else "{intents: nope"
        elif fault == "truncated":
            content, finish = content[: max(1, len(content) // 2)], "length"
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        self._send(200, {
            "id": f"chatcmpl-{body_key[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model") or config.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


class TeacherServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a benchmark opens many connections at once

    def handle_error(self, request, client_address):
        # Clients that gave up on a "hang" fault close the socket under us: expected, not news.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(host: str = "127.0.0.1", port: int = 0, config: TeacherConfig | None = None) -> TeacherServer:
    """A teacher server bound to host:port (0 picks a free port); call serve_forever() to run it."""
    teacher = Teacher(config)
    handler = type("BoundTeacherHandler", (TeacherHandler,), {"teacher": teacher})
    server = TeacherServer((host, port), handler)
    server.teacher = teacher
    return server


def start_in_thread(config: TeacherConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> TeacherServer:
    """Start a teacher on a background thread (tests, benchmarks). Stop it with server.shutdown()."""
    server = make_server(host, port, config)
    threading.Thread(target=server.serve_forever, name="teacher", daemon=True).start()
    return server
