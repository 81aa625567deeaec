"""`manage.py distill`: bad input is refused with a message and creates nothing; status and files speak plainly."""

import json
import re

import pytest
from django.core.management import CommandError, call_command

from datasets.exports import export_stream
from datasets.models import IntentNode, Question, Topic
from distiller.models import DistillationRun, DistillationUnit
from distiller.services import run_cancel, run_start
from tests.distiller.conftest import WORKERS
from tests.distiller.test_runs_on_workers import teacher_stats

AUTO = ["distill", "auto", "--levels", "1", "--tags-per-level", "2", "--questions-per-tag", "3", "--provider",
        "Teacher"]


@pytest.mark.parametrize("estimate", [[], ["--estimate"]])
@pytest.mark.parametrize(("name", "message"), [
    ("x" * 10_000, "The topic name is 10,000 characters long; at most 200 are allowed."),
    ("", "The topic name is empty: give the topic a name."),
    ("   ", "The topic name is empty: give the topic a name."),
    ("Sup\x00port", "The topic name holds control characters (a NUL, a tab or a line break); remove them."),
])
def test_auto_refuses_a_topic_name_it_cannot_store(provider, name, message, estimate):
    with pytest.raises(CommandError) as refused:
        call_command(*AUTO, "--topic", name, *estimate)
    assert str(refused.value) == message
    assert not Topic.objects.exists() and not DistillationRun.objects.exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--levels", "-1"], "levels must be between 1 and 6."),
    (["--questions-per-call", "0"], "questions_per_call must be between 1 and 50."),
    (["--provider", "nosuch"], "Unknown or inactive provider 'nosuch'; choose one of: "),
])
def test_a_refused_auto_run_leaves_no_topic_behind(provider, arguments, message):
    with pytest.raises(CommandError) as refused:
        call_command(*AUTO, "--topic", "Brand New", *arguments)
    assert str(refused.value).startswith(message)
    assert not Topic.objects.filter(name="Brand New").exists() and not DistillationRun.objects.exists()


def test_a_provider_without_a_base_url_is_refused_before_the_topic_is_created(provider, settings):
    settings.LLM_BASE_URL = ""
    provider.base_url = ""
    provider.save()
    with pytest.raises(CommandError, match=r"^Teacher has no base URL: set it on the provider"):
        call_command(*AUTO, "--topic", "Brand New")
    assert not Topic.objects.filter(name="Brand New").exists()


def test_auto_on_a_topic_with_a_taxonomy_is_refused_without_extend(provider, topic, make_intent, capsys):
    make_intent(topic, "Billing")
    make_intent(topic, "Shipping")
    for estimate in ([], ["--estimate"]):
        with pytest.raises(CommandError) as refused:
            call_command(*AUTO, "--topic", topic.name, *estimate)
        assert str(refused.value) == (
            "'Customer Support' already has 2 intents: `distill auto` would grow a second taxonomy beside them. "
            "Pass --extend to add one anyway, or write questions for the existing intents with "
            "`manage.py distill questions --topic 'Customer Support' --intent-path ... --save`.")
    assert not DistillationRun.objects.exists()

    call_command(*AUTO, "--topic", topic.name, "--extend", "--estimate")
    assert capsys.readouterr().out.startswith("Estimate on Teacher (teacher-1): 3 calls (1 taxonomy, 2 questions)")


@pytest.mark.parametrize(("action", "count", "message"), [
    (["questions", "--intent", "Refunds"], "-3", "--count must be between 1 and 10000 (got -3)."),
    (["questions", "--intent", "Refunds"], "0", "--count must be between 1 and 10000 (got 0)."),
    (["tags", "--parent", "Billing"], "0", "--count must be between 1 and 50 (got 0)."),
    (["tags", "--parent", "Billing"], "51", "--count must be between 1 and 50 (got 51)."),
])
def test_one_off_calls_refuse_a_count_out_of_range_without_calling(provider, teacher, action, count, message):
    with pytest.raises(CommandError) as refused:
        call_command("distill", *action, "--count", count, "--provider", "Teacher")
    assert str(refused.value) == message
    assert teacher_stats(teacher)["requests"] == 0


def test_one_off_questions_show_the_model_the_intents_questions(provider, teacher, topic, make_intent, make_question,
                                                                 capsys):
    billing = make_intent(topic, "Billing")
    refunds = make_intent(topic, "Refunds", parent=billing, description="Money back for an order")
    make_question(refunds, "Can I get my money back for a broken kettle?")
    make_question(refunds, "How long does a refund take?")

    call_command("distill", "questions", "--topic", topic.name, "--intent", "Refunds", "--intent-path",
                 "Billing -> Refunds", "--count", "3", "--provider", "Teacher")

    prompt = "\n".join(m["content"] for m in teacher.teacher.last_messages)
    # Sent once each, in the request the instructions refer to.
    assert '"existing": ["Can I get my money back for a broken kettle?", "How long does a refund take?"]' in prompt
    assert prompt.count("How long does a refund take?") == 1 and prompt.count("Money back for an order") == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert Question.objects.count() == 2  # printed, not saved


def test_status_names_problem_units_by_intent_number_and_name(provider, topic, make_intent, capsys):
    refunds = make_intent(topic, "Refunds")
    run = DistillationRun.objects.create(topic=topic, provider=provider, kind="auto", status="failed",
                                         error="1 unit(s) failed", stage="failed")
    DistillationUnit.objects.create(run=run, kind="questions", stage="questions", key=f"questions:{refunds.pk}",
                                    node=refunds, status="failed", target=10, produced=3, error="boom")
    DistillationUnit.objects.create(run=run, kind="taxonomy", stage="taxonomy:1", key="taxonomy:root",
                                    status="failed", target=5, produced=1, error="refused")

    call_command("distill", "status", str(run.pk))

    out = capsys.readouterr().out
    assert "  failed questions of 1 Refunds: boom (3/10 questions)\n" in out
    assert "  failed taxonomy of the top level of 'Customer Support': refused (1/5 intents)\n" in out
    assert "questions:" not in out and "taxonomy:root" not in out
    assert f"Run #{run.pk} (auto) of 'Customer Support' on Teacher: failed, 0% (failed)" in out


@WORKERS
def test_auto_output_is_the_export_apis_seed_jsonl(provider, tmp_path):
    output = tmp_path / "dataset.jsonl"
    call_command(*AUTO, "--topic", "Support", "--output", str(output))

    run = DistillationRun.objects.get()
    text = output.read_text()
    assert text == "".join(export_stream(questions=Question.objects.filter(run=run), format="jsonl"))
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["intent_number"], line["question_index"]) for line in lines] == [
        ("1", 1), ("1", 2), ("1", 3), ("2", 1), ("2", 2), ("2", 3)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", line["timestamp"]) for line in lines)
    assert {line["source"] for line in lines} == {"generated"}


@WORKERS
def test_resume_writes_the_output_of_the_whole_run(provider, topic, make_intent, tmp_path, capsys):
    make_intent(topic, "Refunds")
    make_intent(topic, "Invoices")
    run = run_cancel(run=run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=4,
                                   workers=0))
    output = tmp_path / "resumed.jsonl"

    call_command("distill", "resume", str(run.pk), "--output", str(output))  # --output implies --wait

    run.refresh_from_db()
    assert run.status == "succeeded" and run.stage == "done"
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(line["intent"], line["question_index"]) for line in lines] == [
        (name, i) for name in ("Refunds", "Invoices") for i in (1, 2, 3, 4)]
    assert f"Wrote 8 questions to {output}." in capsys.readouterr().out
    assert IntentNode.objects.count() == 2
