"""Teacher pools: calls spread by weight, a member refused for good is taken out, the rest finish."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from datasets.models import Question
from distiller.jobs import run_work
from distiller.models import DistillationRun, LLMCall, LLMProvider
from distiller.services import RunError, run_start
from distiller.teacher.server import TeacherConfig, start_in_thread
from tests.distiller.conftest import WORKERS

pytestmark = [WORKERS]


@pytest.fixture
def second(db):
    server = start_in_thread(TeacherConfig(seed=9, model="teacher-2"))
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield LLMProvider.objects.create(name="Second", kind="custom", base_url=url, model="", api_key_env="",
                                     supports_json_schema=False, requests_per_minute=0, timeout_seconds=1.0)
    server.shutdown()
    server.server_close()


@pytest.fixture
def intents(topic, make_intent):
    return [make_intent(topic, name) for name in ("Refunds", "Invoices", "Payment Methods")]


def test_a_pool_member_that_answers_402_is_taken_out_and_the_other_finishes_exact(topic, provider, teacher, second,
                                                                                  intents):
    teacher.teacher.configure(fail_status=402, fail_after=2)
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10, questions_per_call=5,
                    pool=[{"provider": "Teacher", "weight": 3}, {"provider": "Second", "weight": 1}], workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    counts = dict(Question.objects.filter(run=run).values_list("intent_id").annotate(n=Count("id")))
    assert counts == {intent.pk: 10 for intent in intents} and run.questions_created == 30
    assert run.warnings == ["pool: Teacher failed (insufficient_balance) and was taken out; Second took over."]
    calls = LLMCall.objects.filter(run=run)
    assert run.calls == calls.count()
    assert calls.filter(provider=provider, outcome="ok").count() == 2  # its two answers before the 402s
    assert calls.filter(provider=provider, outcome="refused").exists()
    assert not calls.filter(provider=second, outcome="refused").exists()
    # Every question names the provider and model that wrote it.
    made_by = set(Question.objects.filter(run=run).values_list("provider", "model", "temperature", "prompt_version"))
    assert made_by <= {("Teacher", "teacher-1", 0.9, "questions-v3"), ("Second", "teacher-2", 0.9, "questions-v3")}
    assert ("Second", "teacher-2", 0.9, "questions-v3") in made_by


def test_a_pool_whose_members_all_fail_fails_the_run_naming_the_last(topic, provider, teacher, second, intents):
    teacher.teacher.configure(fail_status=402)
    second.base_url = provider.base_url  # the same failing teacher
    second.save()
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=3,
                    pool=[{"provider": "Teacher", "weight": 1}, {"provider": "Second", "weight": 1}], workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error in {"Teacher: insufficient balance (402) — top up or switch provider.",
                         "Second: insufficient balance (402) — top up or switch provider."}


@pytest.mark.parametrize("pool, message", [
    ([{"provider": "Teacher", "weight": 0}, {"provider": "Second", "weight": 0}],
     "The pool's weights sum to 0: give at least one provider a weight above 0."),
    ([{"provider": "Teacher", "weight": -1}], "The weight of 'Teacher' in the pool must be a number from 0 up; got -1."),
    ([{"provider": "Teacher", "weight": True}], "The weight of 'Teacher' in the pool must be a number from 0 up; "
                                                "got True."),
    ([{"provider": "Teacher"}, {"provider": "teacher"}], "Teacher is in the pool twice."),
    ([{"provider": "Nobody", "weight": 1}],
     "Unknown or inactive provider 'Nobody'; choose one of: Custom, DeepSeek, OpenAI, OpenRouter, Second, Teacher."),
])
def test_bad_pools_are_refused_before_anything_starts(topic, provider, second, intents, pool, message):
    with pytest.raises(RunError) as refused:
        run_start(topic=topic, provider=provider, kind="questions", pool=pool, workers=0)
    assert refused.value.message == message
    assert not DistillationRun.objects.exists()


def test_the_cli_takes_a_pool(topic, provider, second, intents, capsys):
    with pytest.raises(CommandError, match="The pool's weights sum to 0"):
        call_command("distill", "auto", "--topic", "New", "--pool", "Teacher=0,Second=0")
    call_command("distill", "questions", "--topic", topic.name, "--intent", "Refunds", "--intent-path", "Refunds",
                 "--count", "2", "--save", "--pool", "Teacher=1,Second")
    run = DistillationRun.objects.get()
    assert run.parameters["pool"] == [{"provider": "Teacher", "weight": 1.0}, {"provider": "Second", "weight": 1.0}]
    assert "on Teacher (weight 1) + Second (weight 1)" in capsys.readouterr().out


def test_calls_are_spread_by_weight(topic, provider, teacher, second, intents):
    import random

    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10, questions_per_call=5,
                    pool=[{"provider": "Teacher", "weight": 3}, {"provider": "Second", "weight": 1}], seed=4,
                    workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    calls = dict(LLMCall.objects.filter(run=run).values_list("provider__name").annotate(n=Count("id")))
    # One draw per call from the run's seed, whatever order the threads make them in.
    draws = random.Random(4).choices(["Teacher", "Second"], weights=[3, 1], k=run.calls)
    assert calls == {name: draws.count(name) for name in ("Teacher", "Second")} and calls["Teacher"] > calls["Second"]
