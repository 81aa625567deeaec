"""The LLM judge (mark, reject, refine), hard negatives and out-of-scope questions, on the engine, inline."""

import math
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from datasets.models import IntentNode, Question
from distiller.jobs import run_work
from distiller.models import DistillationRun, DistillationUnit, LLMCall, LLMProvider
from distiller.services import RunError, run_resume, run_start
from distiller.teacher.content import judge_disagrees
from tests.distiller.conftest import WORKERS, wait_for
from tests.distiller.test_runs_on_workers import is_stalled, teacher_stats

pytestmark = [WORKERS]

RATE, SEED = 0.3, 5


@pytest.fixture
def three_siblings(topic, make_intent):
    billing = make_intent(topic, "Billing", description="Money matters")
    return [make_intent(topic, name, parent=billing, description=f"Users asking about {name.lower()}")
            for name in ("Refunds", "Invoices", "Payment Methods")]


def finished(run) -> DistillationRun:
    run_work(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def start(topic, provider, teacher, **parameters):
    teacher.teacher.configure(judge_disagree_rate=RATE, seed=SEED)
    parameters = {"judge": "Teacher", **parameters}
    return run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10, questions_per_call=5,
                     workers=0, **parameters)


def test_a_judge_that_marks_a_share_as_another_intent_is_counted_exactly(topic, provider, teacher, three_siblings):
    run = finished(start(topic, provider, teacher))

    questions = list(Question.objects.filter(run=run))
    wrong = {q.pk for q in questions if judge_disagrees(q.text, SEED, RATE)}
    assert len(questions) == 30 and 0 < len(wrong) < 30
    assert run.questions_judged == 30 and run.judge_disagreed == len(wrong) and run.judge_low_score == 0
    assert {q.pk for q in questions if q.judge_verdict == "other_intent"} == wrong
    assert {q.judge_verdict for q in questions if q.pk not in wrong} == {"pass"}
    for q in questions:
        siblings = {s.pk for s in three_siblings} - {q.intent_id}
        assert q.judge_disagrees == (q.pk in wrong)
        assert (q.judge_intent_id in siblings) if q.pk in wrong else (q.judge_intent_id == q.intent_id)
        assert q.judge_score == (0.0 if q.pk in wrong else 0.75)
        assert q.judge_model == "teacher-1" and q.judge_prompt_version == "judge-v1" and q.judge_reason
        assert q.status == "pending"  # "mark" only marks
    # One judge call per intent (10 questions, batches of 10), counted in the run and its progress.
    assert LLMCall.objects.filter(run=run, kind="judge").count() == 3
    assert run.units_done == run.units_total == 3 + 3
    assert run.calls == LLMCall.objects.filter(run=run).count()


def test_reject_rejects_exactly_the_failed_share_and_keeps_the_reason(topic, provider, teacher, three_siblings):
    run = finished(start(topic, provider, teacher, judge_action="reject"))

    questions = list(Question.objects.filter(run=run))
    wrong = {q.pk for q in questions if judge_disagrees(q.text, SEED, RATE)}
    assert run.questions_rejected == run.judge_disagreed == len(wrong) > 0
    assert {q.pk for q in questions if q.status == "rejected"} == wrong  # kept, never deleted
    assert all(q.judge_reason.startswith("It asks about") for q in questions if q.pk in wrong)


def test_refine_rewrites_the_failed_share_with_the_reason_and_judges_it_again(topic, provider, teacher,
                                                                              three_siblings):
    run = finished(start(topic, provider, teacher, judge_action="refine", judge_refine_rounds=1))

    questions = list(Question.objects.filter(run=run))
    refined = [q for q in questions if q.text.endswith(", to be clear.")]
    assert run.judge_disagreed == run.questions_refined == len(refined) > 0
    assert run.questions_judged == 30  # first verdicts: a rewrite judged again is not counted twice
    # After the one round allowed, each rewrite passes or stays marked, as the judge said of its new text.
    for q in refined:
        expected = "other_intent" if judge_disagrees(q.text, SEED, RATE) else "pass"
        assert q.judge_verdict == expected and q.status == "pending"
    assert all(q.judge_verdict == "pass" for q in questions if q not in refined)
    # One refine call per intent and batch of questions_per_call (5) failing questions.
    per_intent = Counter(q.intent_id for q in refined)
    refine_calls = LLMCall.objects.filter(run=run, kind="refine", outcome="ok").count()
    assert refine_calls == sum(math.ceil(n / 5) for n in per_intent.values())
    assert run.warnings == []  # a judge unit's unused refinement rounds are no shortfall


def test_the_judge_is_a_separate_provider_with_its_own_calls(topic, provider, teacher, three_siblings):
    judge = LLMProvider.objects.create(name="Judge", kind="custom", base_url=teacher.url, model="judge-9",
                                       supports_json_schema=True, requests_per_minute=0, timeout_seconds=1.0,
                                       price_input_per_mtok=1, price_output_per_mtok=1)
    run = finished(start(topic, provider, teacher, judge="Judge"))

    assert run.judge_provider == judge
    calls = LLMCall.objects.filter(run=run)
    assert set(calls.filter(kind="judge").values_list("provider__name", "model")) == {("Judge", "judge-9")}
    assert set(calls.filter(kind="questions").values_list("provider__name", flat=True)) == {"Teacher"}
    assert set(Question.objects.filter(run=run).values_list("judge_model", flat=True)) == {"judge-9"}
    assert run.cost == sum(c.cost for c in calls) > 0


def test_hard_negatives_are_written_per_neighbour_pair_and_judged(topic, provider, teacher, three_siblings):
    run = finished(start(topic, provider, teacher, hard_negatives=2))

    negatives = Question.objects.filter(run=run, contrastive_of__isnull=False)
    pairs = {(q.intent_id, q.contrastive_of_id) for q in negatives}
    ids = {s.pk for s in three_siblings}
    assert pairs == {(a, b) for a in ids for b in ids if a != b}
    assert negatives.count() == run.hard_negatives_created == 6 * 2
    assert run.questions_created == 30 + 12 and run.questions_judged == 42
    assert DistillationUnit.objects.filter(run=run, kind="contrast", status="done").count() == 6
    refunds = negatives.filter(intent=three_siblings[0]).first()
    assert refunds.text.endswith(("Not invoices, though.", "Not payment methods, though."))


def test_out_of_scope_questions_go_to_an_out_of_scope_intent(topic, provider, teacher, three_siblings):
    run = finished(run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=2,
                             out_of_scope=7, workers=0))

    oos = IntentNode.objects.get(topic=topic, out_of_scope=True)
    assert oos.name == "Out of scope" and oos.parent is None
    assert Question.objects.filter(run=run, intent=oos).count() == run.out_of_scope_created == 7
    assert run.questions_created == 3 * 2 + 7


def test_distill_judge_judges_existing_questions_once(topic, provider, teacher, three_siblings, make_question,
                                                      capsys):
    teacher.teacher.configure(judge_disagree_rate=RATE, seed=SEED)
    refunds, invoices, _ = three_siblings
    for i in range(4):
        make_question(refunds, f"I want my money back for order {i}", source="imported")
        make_question(invoices, f"Send me the invoice for order {i}", source="captured")

    call_command("distill", "judge", "--topic", topic.name, "--intent", "Billing -> Refunds", "--judge", "Teacher",
                 "--wait")

    run = DistillationRun.objects.get(kind="judge")
    judged = Question.objects.exclude(judge_verdict="")
    assert set(judged.values_list("intent_id", flat=True)) == {refunds.pk} and judged.count() == 4
    wrong = sum(judge_disagrees(q.text, SEED, RATE) for q in judged)
    assert run.questions_judged == 4 and run.judge_disagreed == wrong
    out = capsys.readouterr().out
    assert f"judge: 4 questions judged by Teacher: {wrong} under another intent or none" in out

    with pytest.raises(CommandError, match="has no questions without a verdict to judge under that intent"):
        call_command("distill", "judge", "--topic", topic.name, "--intent", "Refunds", "--judge", "Teacher")


@pytest.mark.parametrize("parameters, message", [
    ({"judge": "Nobody"}, "Unknown or inactive provider 'Nobody'; choose one of: Custom, DeepSeek, OpenAI, OpenRouter, Teacher."),
    ({"judge": "Teacher", "judge_threshold": 1.5}, "judge_threshold must be between 0.0 and 1.0."),
    ({"judge": "Teacher", "judge_threshold": -0.1}, "judge_threshold must be between 0.0 and 1.0."),
    ({"judge": "Teacher", "judge_action": "delete"},
     "judge_action must be one of mark, reject, refine, not 'delete'."),
])
def test_bad_judge_options_are_refused_before_anything_starts(topic, provider, three_siblings, parameters, message):
    with pytest.raises(RunError) as refused:
        run_start(topic=topic, provider=provider, kind="questions", workers=0, **parameters)
    assert refused.value.message == message
    assert not DistillationRun.objects.exists()


def test_hard_negatives_on_an_intent_without_neighbours_are_refused(topic, provider, make_intent):
    alone = make_intent(topic, "Everything")

    with pytest.raises(RunError) as refused:
        run_start(topic=topic, provider=provider, kind="questions", intent_id=alone.pk, hard_negatives=3, workers=0)
    assert refused.value.message == ("hard_negatives need neighbouring intents, and Everything has none (no siblings, "
                                     "no confusions in an evaluation); write questions without hard negatives.")
    with pytest.raises(CommandError, match="with 1 tag per level no intent has a sibling"):
        call_command("distill", "auto", "--topic", "Another", "--tags-per-level", "1", "--hard-negatives", "2",
                     "--provider", "Teacher")
    assert not DistillationRun.objects.exists()


@pytest.mark.workers
def test_a_judged_refined_run_with_hard_negatives_survives_a_sigkill_mid_judging(topic, provider, teacher, workers,
                                                                                 three_siblings, settings):
    settings.DISTILL_UNIT_LEASE_SECONDS = 3  # as the workers' (conftest)
    teacher.teacher.configure(judge_disagree_rate=RATE, seed=SEED, latency=0.4)
    (victim,) = workers.start(1)
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=10, questions_per_call=5,
                    hard_negatives=2, judge="Teacher", judge_action="refine", judge_refine_rounds=1)
    wait_for(lambda: DistillationUnit.objects.filter(run=run, kind="judge", status="running").exists()
             and teacher_stats(teacher)["in_flight"] > 0, what="a judge call in flight")

    workers.kill(victim)
    wait_for(lambda: is_stalled(run), timeout=30, what="the run to stall")
    teacher.teacher.configure(latency=0)
    run_work(run_resume(run=run, workers=0).pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    questions = list(Question.objects.filter(run=run))
    refined = [q for q in questions if q.text.endswith(", to be clear.")]
    assert len(questions) == run.questions_created == 3 * 10 + 6 * 2 and run.hard_negatives_created == 12
    # Every question judged, each counted once, whatever the kill interrupted.
    assert run.questions_judged == 42 and all(q.judge_verdict for q in questions)
    assert run.judge_disagreed == run.questions_refined == len(refined) > 0
    assert not any(judge_disagrees(q.text, SEED, RATE) for q in questions if q not in refined)
    assert all(q.judge_verdict == ("other_intent" if judge_disagrees(q.text, SEED, RATE) else "pass")
               for q in refined)
    assert run.calls == LLMCall.objects.filter(run=run).count()
    assert run.units_done == run.units_total == 3 + 6 + 3


def test_distill_judge_takes_the_topic_by_id_as_the_other_commands_do(topic, provider, teacher, three_siblings):
    # export, import, health, augment and evaluate take --topic NAME_OR_ID; judge answered "No topic named '3'".
    with pytest.raises(CommandError, match="has no questions without a verdict to judge"):
        call_command("distill", "judge", "--topic", str(topic.pk), "--judge", "Teacher")
