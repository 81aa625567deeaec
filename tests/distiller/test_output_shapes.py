"""What a run does with answers of the wrong shape: a model that echoes the schema, a batch cut off at max_tokens."""

import pytest

from distiller.jobs import run_work
from distiller.llm import Endpoint, LLMClient, LLMOutputError
from distiller.models import LLMCall
from distiller.prompts import QUESTIONS
from distiller.services import run_start
from distiller.services.questions import max_tokens_for
from tests.distiller.conftest import WORKERS

pytestmark = [WORKERS]

ECHO_ADVICE = ("Teacher: invalid output 3 times: model 'teacher-1' answered with the JSON schema itself instead of an "
               "answer (json_object mode). Choose a model that follows instructions (a chat model, not a reasoning or "
               "base model), or tick 'supports json_schema' on the provider if its server supports it.")


@pytest.fixture
def json_object_provider(provider):
    provider.supports_json_schema = False  # DeepSeek's mode: the schema goes in the prompt
    provider.save()
    return provider


def test_a_model_that_echoes_the_schema_fails_the_run_saying_what_to_change(topic, json_object_provider, teacher,
                                                                            make_intent):
    teacher.teacher.configure(echo_schema="always")
    refunds = make_intent(topic, "Refunds")
    run = run_start(topic=topic, provider=json_object_provider, kind="questions", questions_per_intent=3, workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == f"1 unit(s) failed; first, questions for {refunds.intent_full_name}: {ECHO_ADVICE} " \
                        "Fix the cause and resume the run."
    assert set(LLMCall.objects.filter(run=run).values_list("outcome", "error_code")) == {("invalid", "schema_echo")}


def test_a_model_that_follows_the_example_answer_succeeds(topic, json_object_provider, teacher, make_intent):
    teacher.teacher.configure(echo_schema="without_example")
    make_intent(topic, "Refunds")
    client = LLMClient(Endpoint.from_provider(json_object_provider), retry_base_seconds=0.001)
    messages = QUESTIONS.messages(topic="Shop", intent_path=["Refunds"], description="", language="en",
                                  items=[{"n": 1, "style": "question", "complexity": "simple", "audience": "general",
                                          "edge_case": "none"}], existing=[])
    with pytest.raises(LLMOutputError, match="answered with the JSON schema itself"):
        client.complete_json(messages=messages, schema=QUESTIONS.Answer, schema_name="questions")  # no example

    run = run_start(topic=topic, provider=json_object_provider, kind="questions", questions_per_intent=3, workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.questions_created == 3 and not LLMCall.objects.filter(run=run, outcome="invalid").exists()
    assert "an example of the shape (not of the content):\n" + '{"questions": [{"n": 1' in \
        teacher.teacher.last_messages[0]["content"]


def test_a_batch_cut_off_at_max_tokens_is_asked_again_in_halves(topic, provider, teacher, make_intent):
    teacher.teacher.configure(truncate_above_items=3)
    make_intent(topic, "Refunds")
    # 6 questions (+1 margin): a batch of 6 (cut off, then 3 + 3) and a batch of 1.
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=6, questions_per_call=6,
                    workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.questions_created == 6
    calls = LLMCall.objects.filter(run=run)
    assert list(calls.filter(outcome="invalid").values_list("error_code", flat=True)) == ["truncated"]
    assert calls.filter(outcome="ok").count() == 3 and run.calls == 4
    assert max_tokens_for(6) == 200 + 2 * QUESTIONS.EST_TOKENS_OUT_PER_ITEM * 6 * 2
