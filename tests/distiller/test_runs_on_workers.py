"""Runs on real RQ worker processes, PostgreSQL, Redis and the teacher over HTTP."""

import json
import re
import urllib.request

import pytest
from django.db.models import Count

from datasets.models import IntentNode, Question
from distiller.models import DistillationRun, DistillationUnit
from distiller.services import run_cancel, run_resume, run_start
from tests.distiller.conftest import WORKERS, wait_for, wait_until_ended

pytestmark = [WORKERS, pytest.mark.workers]


def teacher_stats(teacher) -> dict:
    with urllib.request.urlopen(teacher.url.replace("/v1", "/teacher/stats")) as response:
        return json.loads(response.read())


def assert_exact(run, *, intents: int, per_intent: int):
    run.refresh_from_db()
    counts = dict(Question.objects.filter(run=run).values_list("intent_id").annotate(n=Count("id")))
    leaves = IntentNode.objects.filter(topic=run.topic, children__isnull=True)
    assert run.intents_created == IntentNode.objects.filter(topic=run.topic).count() == intents
    assert {leaf.pk: counts.get(leaf.pk, 0) for leaf in leaves} == {leaf.pk: per_intent for leaf in leaves}
    assert run.questions_created == Question.objects.filter(run=run).count() == len(leaves) * per_intent
    texts = Question.objects.filter(topic=run.topic).values_list("text_hash", flat=True)
    assert len(texts) == len(set(texts))


def test_a_run_under_ten_percent_faults_ends_with_exact_counts_and_numbering(topic, provider, teacher, workers):
    teacher.teacher.configure(fault_rate=0.1, seed=3)
    workers.start(2)

    run = wait_until_ended(run_start(topic=topic, provider=provider, levels=2, tags_per_level=3,
                                     questions_per_intent=12, questions_per_call=5))

    assert run.status == "succeeded", run.error
    assert_exact(run, intents=3 + 9, per_intent=12)
    numbers = set(IntentNode.objects.filter(topic=topic).values_list("number", flat=True))
    assert numbers == {"1", "2", "3"} | {f"{a}.{b}" for a in (1, 2, 3) for b in (1, 2, 3)}
    assert run.units_done == run.units_total == 1 + 3 + 9
    stats = teacher_stats(teacher)
    assert sum(stats["faults"].values()) > 0
    assert run.calls == stats["requests"]
    assert run.tokens_in > 0 and run.tokens_out > 0
    assert run.stage == "done" and run.warnings == []


def test_a_worker_killed_mid_run_then_resumed_ends_exact_without_duplicates(topic, provider, teacher, workers):
    teacher.teacher.configure(latency=0.3)
    provider.max_concurrency = 2
    provider.save()
    (victim,) = workers.start(1)
    run = run_start(topic=topic, provider=provider, levels=2, tags_per_level=2, questions_per_intent=12,
                    questions_per_call=3)

    def halfway():
        run.refresh_from_db()
        return 0 < run.questions_created < 24

    wait_for(halfway, what="some questions")
    workers.kill(victim)
    run.refresh_from_db()
    assert run.status == "running"  # nobody told it: the worker just vanished
    assert run.units.filter(status="running").exists()

    workers.start(1)
    run = wait_until_ended(run_resume(run=run))

    assert run.status == "succeeded", run.error
    assert_exact(run, intents=2 + 4, per_intent=12)
    assert run.units.filter(attempts__gt=1).exists()  # the dead worker's unit was taken over


def test_insufficient_balance_stops_the_run_with_its_message_and_keeps_partial_data(topic, provider, teacher, workers):
    teacher.teacher.configure(fail_status=402, fail_after=6)
    workers.start(1)

    run = wait_until_ended(run_start(topic=topic, provider=provider, levels=2, tags_per_level=2,
                                     questions_per_intent=20, questions_per_call=5))

    assert run.status == "failed"
    # Answers already received are still written; a unit is given back once its writes are done.
    wait_for(lambda: not run.units.filter(status="running").exists(), what="units released")
    run.refresh_from_db()
    assert run.error == "Teacher: insufficient balance (402) — top up or switch provider."
    assert IntentNode.objects.filter(topic=topic).count() == run.intents_created == 6
    assert Question.objects.filter(run=run).count() == run.questions_created > 0
    assert run.units.filter(status="pending", error__contains="402").exists()


def test_malformed_output_is_retried_then_reported(topic, provider, teacher, workers, make_intent):
    leaf = make_intent(topic, "Refunds")
    workers.start(1)
    teacher.teacher.configure(malformed_rate=0.5, seed=1)
    run = wait_until_ended(run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10,
                                     questions_per_call=5))
    assert run.status == "succeeded", run.error
    assert run.invalid_dropped > 0
    assert Question.objects.filter(run=run, intent=leaf).count() == 10

    teacher.teacher.configure(malformed_rate=1.0)
    run = wait_until_ended(run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=15,
                                     questions_per_call=5))
    assert run.status == "failed"
    unit = run.units.get()
    assert unit.status == "failed"
    assert re.search(r"invalid output 3 times \(last: .*\)", unit.error)
    assert run.error.startswith("1 unit(s) failed; first, questions for 1 Refunds: ")


def test_cancel_stops_the_workers_and_keeps_what_was_written(topic, provider, teacher, workers):
    teacher.teacher.configure(latency=0.3)
    provider.max_concurrency = 2
    provider.save()
    workers.start(1)
    run = run_start(topic=topic, provider=provider, levels=2, tags_per_level=3, questions_per_intent=30,
                    questions_per_call=5)
    wait_for(lambda: Question.objects.filter(run=run).exists(), what="first questions")

    run_cancel(run=run)

    # The worker notices within a second, gives its units back and its job ends.
    wait_for(lambda: not run.units.filter(status="running").exists(), what="units released")
    wait_for(lambda: workers.count() and all(w.get_state() == "idle" for w in
             __import__("rq").Worker.all(queue=__import__("django_rq").get_queue("distill"))), what="idle worker")
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.questions_created == Question.objects.filter(run=run).count() < 9 * 30
    assert run.units.filter(status="pending").exists()


def test_a_chinese_run_writes_chinese_intents_and_questions(topic, provider, workers):
    workers.start(1)
    run = wait_until_ended(run_start(topic=topic, provider=provider, levels=1, tags_per_level=2,
                                     questions_per_intent=6, language="zh"))
    assert run.status == "succeeded", run.error
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert all(cjk.search(name) for name in IntentNode.objects.filter(topic=topic).values_list("name", flat=True))
    questions = Question.objects.filter(run=run)
    assert questions.count() == 12
    assert all(cjk.search(q.text) and q.language == "zh" and q.prompt_version == "questions-v1" for q in questions)
    assert {q.complexity for q in questions} <= {"simple", "moderate", "complex"}


def test_the_provider_concurrency_limit_holds_across_two_workers(topic, provider, teacher, workers):
    teacher.teacher.configure(latency=0.15)
    provider.max_concurrency = 3
    provider.save()
    workers.start(2, DISTILL_WORKER_CONCURRENCY=3)  # 6 threads want to call; the provider allows 3

    run = wait_until_ended(run_start(topic=topic, provider=provider, levels=1, tags_per_level=6,
                                     questions_per_intent=12, questions_per_call=3))

    assert run.status == "succeeded", run.error
    assert len({job for job in run.job_ids}) == 2
    assert teacher_stats(teacher)["max_in_flight"] == 3
    assert DistillationUnit.objects.filter(run=run).exclude(lease_owner="").count() == 0
    assert DistillationRun.objects.get(pk=run.pk).questions_created == 72
