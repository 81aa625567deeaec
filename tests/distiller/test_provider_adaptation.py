"""A server that refuses a request parameter (400/422 naming it) gets the adapted request, once, and
every later call sends it adapted the first time; a 400 about anything else still fails the run."""

import httpx2
import openai
import pytest

from distiller import llm
from distiller.jobs import run_work
from distiller.llm import Endpoint, LLMClient
from distiller.models import LLMCall, LLMProvider
from distiller.prompts import QUESTIONS
from distiller.services import run_start
from tests.distiller.conftest import WORKERS

pytestmark = [WORKERS]

OPENAI_MAX_TOKENS = {"error": {
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
               "instead.", "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}

# (teacher behaviour, what the provider row learns, refused calls, the warning's adaptation text)
REFUSALS = {
    "max_tokens": ({"refuse_max_tokens": True}, {"max_tokens": "max_completion_tokens"}, 1,
                   "max_tokens sent as max_completion_tokens"),
    "temperature": ({"refuse_temperature": True}, {"temperature": "dropped"}, 1, "temperature not sent"),
    "json_schema": ({"refuse_response_format": "json_schema"}, {"response_format": "json_object"}, 1,
                    "response_format json_object instead of json_schema"),
    # json_schema refused, then json_object too: two steps, then no response_format at all.
    "response_format": ({"refuse_response_format": "any"}, {"response_format": "none"}, 2,
                        "response_format not sent (the prompt carries the shape)"),
    # A pydantic server (extra=forbid) that knows no temperature: 422, the field dropped.
    "unknown field": ({"accepted_fields": ["model", "messages", "max_tokens", "response_format"]},
                      {"temperature": "dropped"}, 1, "temperature not sent"),
    # ... and one that knows no response_format: straight to none (every type would be refused).
    "unknown response_format": ({"accepted_fields": ["model", "messages", "max_tokens", "temperature"]},
                                {"response_format": "none"}, 1,
                                "response_format not sent (the prompt carries the shape)"),
}


@pytest.fixture(autouse=True)
def _forget_learned():
    llm._learned.clear()
    yield
    llm._learned.clear()


def sent(request: dict) -> dict:
    """What matters of a request the teacher received: its parameters, response_format by type."""
    shown = {name: value for name, value in request.items() if name not in ("model", "response_format")}
    if "response_format" in request:
        shown["response_format"] = request["response_format"]["type"]
    return shown


def adapted(request: dict, learned: dict) -> dict:
    """`request` (as `sent` shows it) with the adaptations applied."""
    request = dict(request)
    for name, adaptation in learned.items():
        value = request.pop(name)
        if adaptation == "max_completion_tokens":
            request["max_completion_tokens"] = value
        elif adaptation == "json_object":
            request["response_format"] = "json_object"
    return request


def questions_run(topic, provider):
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=3, workers=0)
    run_work(run.pk)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_run_adapts_to_a_refused_parameter_and_the_next_run_sends_the_adapted_request_first(
        topic, provider, teacher, make_topic, make_intent, refusal):
    behaviour, learned, refused_calls, text = REFUSALS[refusal]
    teacher.teacher.configure(**behaviour)
    make_intent(topic, "Refunds")

    run = questions_run(topic, provider)

    assert run.status == "succeeded", run.error
    assert run.questions_created == 3 and run.calls == refused_calls + 1
    calls = list(LLMCall.objects.filter(run=run).values_list("outcome", "error_code"))
    refused_code = f"unsupported_{next(iter(learned))}"
    assert calls == [("transient", refused_code)] * refused_calls + [("ok", "")]
    provider.refresh_from_db()
    assert provider.request_adaptations == learned
    assert run.warnings == [f"Teacher: the server refuses some request parameters; calls adapted: {text}."]
    received = [sent(r) for r in teacher.teacher.received]
    assert len(received) == refused_calls + 1
    assert received[0] == {"temperature": 0.9, "max_tokens": received[0]["max_tokens"], "response_format": "json_schema"}
    assert received[-1] == adapted(received[0], learned)

    # Another worker (nothing learned in its process) starts from the provider row: no refusal.
    llm._learned.clear()
    teacher.teacher.reset()
    other = make_topic("Shop")
    make_intent(other, "Returns")
    second = questions_run(other, provider)

    assert second.status == "succeeded", second.error
    assert second.questions_created == 3 and second.calls == 1
    assert [sent(r) for r in teacher.teacher.received] == [adapted(received[0], learned)]
    assert teacher.teacher.stats.faults == {}


def test_the_process_remembers_what_a_server_refused_without_a_run(topic, provider, teacher):
    # The CLI's one-off calls: nothing is stored on the row, yet the next client of this process knows.
    teacher.teacher.configure(refuse_max_tokens=True, refuse_temperature=True)
    messages = QUESTIONS.messages(topic="Shop", intent_path=["Refunds"], description="", language="en",
                                  items=[{"n": 1, "style": "question", "complexity": "simple", "audience": "general",
                                          "edge_case": "none"}], existing=[])

    def ask():
        client = LLMClient(Endpoint.from_provider(provider), retry_base_seconds=0.001)
        return client.complete_json(messages=messages, schema=QUESTIONS.Answer, schema_name="questions",
                                    max_tokens=500, example=QUESTIONS.EXAMPLE)

    assert len(ask().questions) == 1
    assert [sent(r) for r in teacher.teacher.received] == [
        {"temperature": 0.8, "max_tokens": 500, "response_format": "json_schema"},
        {"temperature": 0.8, "max_completion_tokens": 500, "response_format": "json_schema"},
        {"max_completion_tokens": 500, "response_format": "json_schema"},
    ]
    teacher.teacher.reset()
    assert len(ask().questions) == 1
    assert [sent(r) for r in teacher.teacher.received] == [{"max_completion_tokens": 500,
                                                           "response_format": "json_schema"}]
    provider.refresh_from_db()
    assert provider.request_adaptations == {}


def test_a_400_about_something_else_still_fails_the_run_with_the_servers_message(topic, provider, teacher,
                                                                                 make_intent):
    teacher.teacher.configure(fail_status=400)
    make_intent(topic, "Refunds")

    run = questions_run(topic, provider)

    assert run.status == "failed"
    assert run.error == ("Teacher: request refused (400): Error code: 400 - Your request was rejected by the content "
                         "policy. — if the server does not support json_schema, untick it on the provider.")
    assert list(LLMCall.objects.filter(run=run).values_list("outcome", "error_code")) == [
        ("refused", "invalid_request_error")]
    assert len(teacher.teacher.received) == 1
    provider.refresh_from_db()
    assert provider.request_adaptations == {}


def test_a_server_that_refuses_the_messages_themselves_fails_after_adapting_what_it_could(topic, provider, teacher,
                                                                                          make_intent):
    # Every field but model is "extra": the rest is adapted in two steps, then messages cannot be.
    teacher.teacher.configure(accepted_fields=["model"])
    make_intent(topic, "Refunds")

    run = questions_run(topic, provider)

    assert run.status == "failed"
    assert run.error == "Teacher: request refused (422): Error code: 422 - messages: extra fields not permitted"
    assert [sorted(r) for r in teacher.teacher.received] == [
        ["max_tokens", "model", "response_format", "temperature"],
        ["max_completion_tokens", "model"],
        ["model"],
    ]
    provider.refresh_from_db()
    assert provider.request_adaptations == {"max_tokens": "max_completion_tokens", "max_completion_tokens": "dropped",
                                            "response_format": "none", "temperature": "dropped"}


def refusal(status: int, body) -> openai.APIStatusError:
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://server/v1/chat/completions"), json=body)
    error = body.get("error", body) if isinstance(body, dict) else body
    return openai.APIStatusError(f"Error code: {status} - {body}", response=response, body=error)


REQUEST = {"model": "m", "messages": [], "temperature": 0.9, "max_tokens": 500, "seed": 7,
           "response_format": {"type": "json_schema"}}


@pytest.mark.parametrize(("status", "body", "named"), [
    (400, OPENAI_MAX_TOKENS, (["max_tokens"], False)),
    # About the value, not the parameter: the user's to fix, so no adaptation.
    (400, {"error": {"message": "max_tokens must be less than or equal to 4096", "param": "max_tokens"}}, ([], False)),
    (400, {"error": {"message": "json_schema is not supported", "code": 400}}, (["response_format"], False)),
    (422, {"detail": [{"type": "extra_forbidden", "loc": ["body", "seed"], "msg": "Extra inputs are not permitted",
                       "input": 7}]}, (["seed"], True)),
    (400, {"error": {"message": "Unrecognized request argument supplied: seed"}}, (["seed"], True)),
    (400, {"error": {"message": "The prompt is too long for this model."}}, ([], False)),
    (400, "unsupported request", ([], False)),
])
def test_which_parameters_a_refusal_names(status, body, named):
    assert llm._refused_parameters(refusal(status, body), REQUEST) == named


def test_the_admin_shows_what_the_server_refuses(client, superuser, provider):
    provider.request_adaptations = {"temperature": "dropped", "max_tokens": "max_completion_tokens"}
    provider.save()
    client.force_login(superuser)

    page = client.get(f"/admin/distiller/llmprovider/{provider.pk}/change/").content.decode()
    assert "max_tokens sent as max_completion_tokens; temperature not sent" in page

    response = client.post("/admin/distiller/llmprovider/", {
        "action": "forget_refused_parameters", "_selected_action": [provider.pk]})
    assert response.status_code == 302
    assert LLMProvider.objects.get(pk=provider.pk).request_adaptations == {}
