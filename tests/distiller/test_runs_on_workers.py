"""Runs on real RQ worker processes, PostgreSQL, Redis and the teacher over HTTP."""

import json
import re
import urllib.request

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from datasets.models import IntentNode, Question
from distiller.dedup import jaccard, shingles
from distiller.models import DistillationRun, DistillationUnit, LLMCall
from distiller.selectors import run_progress
from distiller.services import RunError, run_cancel, run_resume, run_start
from tests.distiller.conftest import WORKERS, wait_for, wait_until_ended

pytestmark = [WORKERS, pytest.mark.workers]


def teacher_stats(teacher) -> dict:
    with urllib.request.urlopen(teacher.url.replace("/v1", "/teacher/stats")) as response:
        return json.loads(response.read())


def is_stalled(run) -> bool:
    run.refresh_from_db()
    return run_progress(run=run)["stalled"]


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

    # Which requests meet a fault depends on their content, which depends on how the workers
    # interleave; about 60 calls make a run with no fault at all unlikely (0.9^60, 0.2%).
    run = wait_until_ended(run_start(topic=topic, provider=provider, levels=2, tags_per_level=3,
                                     questions_per_intent=12, questions_per_call=2))

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
    # One LLMCall row per HTTP attempt, summing to the run's totals.
    calls = LLMCall.objects.filter(run=run)
    totals = calls.aggregate(tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost"))
    assert calls.count() == run.calls
    assert (totals["tokens_in"], totals["tokens_out"]) == (run.tokens_in, run.tokens_out)
    assert totals["cost"] == run.cost
    # Which faults the teacher drew depends on how the two workers interleave; each one is a
    # call of its kind: 429, 500 and hangs (past the 1 s timeout) are transient, broken or cut
    # JSON is invalid.
    faults = stats["faults"]
    assert {outcome: calls.filter(outcome=outcome).count() for outcome in ("transient", "invalid")} == {
        "transient": faults.get("429", 0) + faults.get("500", 0) + faults.get("hang", 0),
        "invalid": faults.get("malformed", 0) + faults.get("truncated", 0)}
    assert not calls.filter(unit__isnull=True).exists()
    assert set(calls.values_list("kind", flat=True)) == {"taxonomy", "questions"}
    assert set(IntentNode.objects.filter(topic=topic).values_list("run_id", "prompt_version")) == {
        (run.pk, "taxonomy-v2")}


def test_a_worker_killed_mid_run_shows_stalled_then_resumed_ends_exact_without_duplicates(
        topic, provider, teacher, workers, settings, capsys):
    settings.DISTILL_UNIT_LEASE_SECONDS = 3  # as the workers' (conftest): the stall threshold
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
    with pytest.raises(RunError, match="is running: a worker holds its units"):
        run_resume(run=run)  # the dead worker's leases have not run out yet

    wait_for(lambda: is_stalled(run), timeout=30, what="the run to show as stalled")
    assert run_progress(run=run)["eta_seconds"] is None
    call_command("distill", "status", str(run.pk))
    assert (f"STALLED: no worker is working on it. Start a worker (manage.py rqworker distill) and run "
            f"`manage.py distill resume {run.pk}`.") in capsys.readouterr().out

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
    assert LLMCall.objects.filter(run=run, outcome="refused", error_code="insufficient_balance").exists()
    assert LLMCall.objects.filter(run=run).count() == run.calls
    assert IntentNode.objects.filter(topic=topic).count() == run.intents_created == 6
    assert Question.objects.filter(run=run).count() == run.questions_created > 0
    assert run.units.filter(status="pending", error__contains="402").exists()


def test_malformed_output_is_retried_then_reported(topic, provider, teacher, workers, make_intent):
    leaf = make_intent(topic, "Refunds")
    workers.start(1)
    teacher.teacher.configure(malformed_rate=0.5, seed=1)
    # Small calls: enough requests that some are malformed whatever the prompt's wording.
    run = wait_until_ended(run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10,
                                     questions_per_call=2))
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
    assert all(cjk.search(q.text) and q.language == "zh" and q.prompt_version == "questions-v3" for q in questions)
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


def test_a_work_job_that_times_out_is_recorded_and_the_run_shows_stalled(topic, provider, teacher, workers, settings):
    settings.DISTILL_UNIT_LEASE_SECONDS = 3
    settings.DISTILL_JOB_TIMEOUT = 2  # the RQ job timeout of the work jobs this test queues
    teacher.teacher.configure(latency=0.5)
    provider.max_concurrency = 1
    provider.save()
    workers.start(1)

    run = run_start(topic=topic, provider=provider, levels=2, tags_per_level=3, questions_per_intent=20,
                    questions_per_call=2)

    wait_for(lambda: is_stalled(run), timeout=60, what="the run to stall")
    run.refresh_from_db()
    assert run.status == "running"
    assert re.fullmatch(rf"Work job {run.job_ids[0]} failed: JobTimeoutException: .*", run.error)
    assert not run.units.filter(status="running").exists()  # given back by the job or its failure callback


def test_a_teacher_repeating_itself_leaves_a_shortfall_in_the_warnings(topic, provider, teacher, workers,
                                                                         make_intent):
    make_intent(topic, "Refunds")
    teacher.teacher.configure(repeat_questions=True)
    workers.start(1)

    run = wait_until_ended(run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10,
                                     questions_per_call=5))

    assert run.status == "succeeded", run.error
    made = Question.objects.filter(run=run).count()
    assert 0 < made < 10 and run.questions_created == made
    assert run.warnings == [f"1 Refunds: {made} of 10 questions"]
    assert run.duplicates_dropped + run.near_duplicates_dropped > 0
    assert run.units.get().produced == made


def test_a_custom_mix_and_a_run_level_near_duplicate_threshold_are_honoured(topic, provider, workers, make_intent):
    leaf = make_intent(topic, "Refunds")
    workers.start(1)

    mix = {"complexity": {"complex": 1}, "audience": {"expert": 1}, "edge_case": {"none": 1}}
    strict = wait_until_ended(run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=12,
                                        questions_per_call=4, mix=mix, near_duplicate_threshold=0.3))
    assert strict.status == "succeeded", strict.error
    assert strict.parameters["near_duplicate_threshold"] == 0.3
    questions = list(Question.objects.filter(run=strict))
    assert {(q.complexity, q.audience, q.edge_case) for q in questions} == {("complex", "expert", "")}
    assert strict.near_duplicates_dropped > 0
    grams = [shingles(q.text) for q in Question.objects.filter(intent=leaf)]
    assert max(jaccard(a, b) for i, a in enumerate(grams) for b in grams[i + 1:]) < 0.3
