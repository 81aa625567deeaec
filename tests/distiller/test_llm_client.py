"""The LLM client against the teacher over HTTP with the real openai client."""

import json

import pytest

from distiller.llm import (
    Endpoint,
    LLMClient,
    LLMFatalError,
    LLMOutputError,
    LLMUnavailableError,
    Usage,
    extract_json,
    fit_schema,
)
from distiller.prompts import QUESTIONS, TAXONOMY


def endpoint(teacher, **overrides) -> Endpoint:
    values = dict(provider_id=1, name="DeepSeek", base_url=teacher.url, model="teacher-1", api_key="sk-test",
                  api_key_env="DEEPSEEK_API_KEY", supports_json_schema=True, timeout_seconds=1.0,
                  max_concurrency=4, requests_per_minute=0)
    return Endpoint(**{**values, **overrides})


def client(teacher, sleeps=None, max_retries=3, **overrides) -> LLMClient:
    return LLMClient(endpoint(teacher, **overrides), max_retries=max_retries, invalid_retries=2, retry_base_seconds=0.01,
                     sleep=(sleeps.append if sleeps is not None else lambda s: None))


def taxonomy_messages(**overrides):
    return TAXONOMY.messages(**{"topic": "Customer Support", "parent_path": ["Billing"], "count": 4,
                                "language": "en", "existing": ["Refunds"], **overrides})


@pytest.mark.parametrize("text", [
    '{"intents": []}',
    'Sure! ```json\n{"intents": []}\n``` hope it helps',
    '<think>maybe {"nope": 1 ... </think>\n{"intents": []}',
    'Here you go: {"intents": []} -- bye',
])
def test_it_finds_the_json_in_what_models_wrap_it_in(text):
    assert extract_json(text) == {"intents": []}


def test_it_rejects_an_answer_without_json():
    with pytest.raises(ValueError):
        extract_json("I cannot help with that.")


def test_it_returns_validated_intents_and_counts_tokens(teacher):
    usage = Usage()
    answer = client(teacher).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                           schema_name="taxonomy", usage=usage)
    assert len(answer.intents) == 4
    assert "Refunds" not in [i.name for i in answer.intents]
    assert usage.calls == 1 and usage.tokens_in > 0 and usage.tokens_out > 0


def test_json_object_mode_survives_fences_and_think_blocks(teacher):
    c = client(teacher, supports_json_schema=False)
    for count in range(2, 8):  # the teacher wraps some answers in prose, fences or <think>
        answer = c.complete_json(messages=taxonomy_messages(count=count), schema=TAXONOMY.Answer,
                                 schema_name="taxonomy")
        assert len(answer.intents) == count


def test_it_honours_retry_after_then_gives_up(teacher):
    teacher.teacher.configure(fault_rate=1.0, faults=["429"], retry_after=0.7)
    sleeps, usage = [], Usage()
    with pytest.raises(LLMUnavailableError, match=r"DeepSeek: HTTP 429, still after 4 attempts"):
        client(teacher, sleeps).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                              schema_name="taxonomy", usage=usage)
    assert len(sleeps) == 3 and all(0.7 <= s < 0.8 for s in sleeps)
    assert usage.calls == 4


def test_server_errors_and_hangs_are_retried(teacher):
    teacher.teacher.configure(fault_rate=0.4, faults=["500", "hang"], hang_seconds=1.5, seed=4)
    c = client(teacher, max_retries=8)
    for count in range(1, 9):
        assert len(c.complete_json(messages=taxonomy_messages(count=count), schema=TAXONOMY.Answer,
                                   schema_name="taxonomy").intents) == count
    assert teacher.teacher.stats.faults.get("500") and teacher.teacher.stats.faults.get("hang")


@pytest.mark.parametrize("status, message", [
    (402, "DeepSeek: insufficient balance (402) — top up or switch provider."),
    (401, "DeepSeek: the API key was rejected (401) — check DEEPSEEK_API_KEY."),
    (403, "DeepSeek: access denied (403) — check that the key in DEEPSEEK_API_KEY may use model 'teacher-1'."),
])
def test_refusals_stop_at_once_with_an_actionable_message(teacher, status, message):
    teacher.teacher.configure(fail_status=status)
    sleeps = []
    with pytest.raises(LLMFatalError) as error:
        client(teacher, sleeps).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                              schema_name="taxonomy")
    assert error.value.message == message
    assert sleeps == []


def test_a_missing_key_is_named(teacher):
    teacher.teacher.configure(fail_status=401)
    with pytest.raises(LLMFatalError, match=r"no API key \(401\) — set DEEPSEEK_API_KEY"):
        client(teacher, api_key="").complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                                  schema_name="taxonomy")


def test_malformed_and_truncated_output_is_asked_again_then_reported(teacher):
    teacher.teacher.configure(fault_rate=1.0, faults=["malformed", "truncated"])
    usage = Usage()
    with pytest.raises(LLMOutputError, match=r"DeepSeek: invalid output 3 times \(last: "):
        client(teacher).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer, schema_name="taxonomy",
                                      usage=usage)
    assert usage.calls == usage.invalid == 3


@pytest.mark.parametrize("language, sample", [("en", "Hi"), ("de", "Hallo"), ("fr", "Bonjour"), ("es", "Hola"),
                                              ("it", "Ciao"), ("zh", "你好")])
def test_the_teacher_writes_distinct_questions_in_each_language(teacher, language, sample):
    items = [{"n": n, "style": "request", "complexity": "simple", "audience": "general", "edge_case": "none"}
             for n in range(1, 11)]
    messages = QUESTIONS.messages(topic="Support", intent_path=["Billing", "Refunds"], description="",
                                  language=language, items=items, existing=[])
    c = client(teacher)
    answer = c.complete_json(messages=messages, schema=QUESTIONS.Answer, schema_name="questions")
    again = c.complete_json(messages=messages, schema=QUESTIONS.Answer, schema_name="questions")
    texts = [q.text for q in answer.questions]
    assert [q.n for q in answer.questions] == list(range(1, 11))
    assert len(set(texts)) == 10
    assert texts == [q.text for q in again.questions]  # deterministic for a seed
    assert any(t.startswith(sample) for t in texts) or language == "zh"


@pytest.mark.parametrize("fault, code", [("408", "http_408"), ("409", "http_409")])
def test_408_and_409_are_retried_then_reported(teacher, fault, code):
    teacher.teacher.configure(fault_rate=1.0, faults=[fault])
    sleeps, usage = [], Usage()
    with pytest.raises(LLMUnavailableError, match=rf"DeepSeek: HTTP {fault}, still after 4 attempts\."):
        client(teacher, sleeps).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                              schema_name="taxonomy", usage=usage)
    assert len(sleeps) == 3
    records = usage.take()[4]
    assert [(r.outcome, r.error_code, r.kind) for r in records] == [("transient", code, "taxonomy")] * 4


def test_a_connection_error_is_retried_then_reported():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = type("Dead", (), {"url": f"http://127.0.0.1:{port}/v1"})()
    sleeps, usage = [], Usage()
    with pytest.raises(LLMUnavailableError, match=r"DeepSeek: connection failed \(.*\), still after 3 attempts\."):
        client(dead, sleeps, max_retries=2).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                                          schema_name="taxonomy", usage=usage)
    assert len(sleeps) == 2 and usage.calls == 3


def test_a_quota_429_stops_at_once(teacher):
    teacher.teacher.configure(fault_rate=1.0, faults=["quota"])
    sleeps, usage = [], Usage()
    with pytest.raises(LLMFatalError) as error:
        client(teacher, sleeps).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                              schema_name="taxonomy", usage=usage)
    assert error.value.message == ("DeepSeek: quota exhausted (429 insufficient_quota) — raise the quota or switch "
                                   "provider.")
    assert sleeps == []
    (record,) = usage.take()[4]
    assert (record.outcome, record.error_code) == ("refused", "insufficient_quota")


def test_retry_after_is_honoured_up_to_five_minutes(teacher):
    teacher.teacher.configure(fault_rate=1.0, faults=["429"], retry_after=120)
    sleeps = []
    with pytest.raises(LLMUnavailableError):
        client(teacher, sleeps, max_retries=1).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                                             schema_name="taxonomy")
    assert len(sleeps) == 1 and 120 <= sleeps[0] < 121  # no longer cut to 30 s


def test_a_longer_retry_after_stops_with_the_wait_named(teacher):
    teacher.teacher.configure(fault_rate=1.0, faults=["429"], retry_after=3600)
    sleeps = []
    with pytest.raises(LLMFatalError) as error:
        client(teacher, sleeps).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer,
                                              schema_name="taxonomy")
    assert error.value.message == ("DeepSeek: the provider asked to wait 3600 s (HTTP 429) — more than 300 s; resume "
                                   "the run later.")
    assert sleeps == []


def test_a_bare_list_answer_fills_the_schemas_one_list():
    items = [{"n": 1, "text": "Where is my refund?"}]
    assert fit_schema(extract_json(f"Here: {json.dumps(items)}"), QUESTIONS.Answer) == {"questions": items}
    assert QUESTIONS.Answer.model_validate(fit_schema(items, QUESTIONS.Answer)).questions[0].text == "Where is my refund?"
    assert fit_schema({"questions": items}, QUESTIONS.Answer) == {"questions": items}


def test_each_call_is_recorded_with_its_outcome(teacher):
    teacher.teacher.configure(fault_rate=1.0, faults=["malformed"])
    usage = Usage()
    with pytest.raises(LLMOutputError):
        client(teacher).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer, schema_name="taxonomy",
                                      usage=usage)
    teacher.teacher.configure(fault_rate=0.0)
    client(teacher).complete_json(messages=taxonomy_messages(), schema=TAXONOMY.Answer, schema_name="taxonomy",
                                  usage=usage)
    calls, tokens_in, tokens_out, invalid, records = usage.take()
    assert [r.outcome for r in records] == ["invalid"] * 3 + ["ok"]
    assert {r.error_code for r in records[:3]} == {"invalid_json"} and records[3].error_code == ""
    assert calls == 4 and invalid == 3
    assert sum(r.tokens_in for r in records) == tokens_in and sum(r.tokens_out for r in records) == tokens_out
    assert all(r.model == "teacher-1" and r.latency_ms >= 0 for r in records)


def test_the_teachers_default_hang_outlasts_the_providers_default_timeout():
    from distiller.models import LLMProvider
    from distiller.teacher.server import TeacherConfig

    assert TeacherConfig().hang_seconds > LLMProvider._meta.get_field("timeout_seconds").default


def test_the_mixed_language_hint_names_another_language():
    item = {"n": 1, "style": "request", "complexity": "simple", "audience": "general", "edge_case": "mixed_language"}

    def prompt(language):
        return QUESTIONS.messages(topic="Support", intent_path=["Refunds"], description="", language=language,
                                  items=[item], existing=[])[1]["content"]

    assert "mixing in a few Spanish words" in prompt("en")
    assert "mixing in a few English words" in prompt("de")
    assert QUESTIONS.VERSION == "questions-v3"
