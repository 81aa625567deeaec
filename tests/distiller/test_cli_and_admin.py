"""`manage.py distill` and the admin's start form."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from datasets.models import IntentNode, Question, Topic
from distiller.jobs import run_work
from distiller.models import DistillationRun, LLMCall
from distiller.services import run_start
from tests.distiller.conftest import WORKERS


@WORKERS
def test_distill_auto_waits_and_writes_the_seed_files(provider, tmp_path, capsys):
    output, taxonomy = tmp_path / "dataset.jsonl", tmp_path / "taxonomy.json"
    call_command("distill", "auto", "--topic", "Customer Support", "--levels", "2", "--tags-per-level", "2",
                 "--questions-per-tag", "5", "--provider", "Teacher", "--language", "de", "--wait",
                 "--output", str(output), "--export-taxonomy", str(taxonomy))

    run = DistillationRun.objects.get()
    assert run.status == "succeeded"
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == Question.objects.count() == 4 * 5
    first = lines[0]
    assert first["intent_number"] == "1.1" and first["question_index"] == 1 and first["source"] == "generated"
    assert first["intent_numbered_path"].startswith("Customer Support -> 1 ")
    assert set(Question.objects.values_list("language", flat=True)) == {"de"}
    tree = json.loads(taxonomy.read_text())
    assert [n["number"] for n in tree["intents"]] == ["1", "2"]
    assert [c["number"] for c in tree["intents"][1]["children"]] == ["2.1", "2.2"]
    out = capsys.readouterr().out
    assert "No distill worker is running: working in this process." in out
    assert "Wrote 20 questions" in out and IntentNode.objects.count() == 6


@WORKERS
def test_distill_status_cancel_and_resume_a_run_by_id(provider, capsys):
    call_command("distill", "auto", "--topic", "Support", "--levels", "1", "--tags-per-level", "3",
                 "--questions-per-tag", "4", "--provider", "Teacher")
    run = DistillationRun.objects.get()
    call_command("distill", "cancel", str(run.pk))
    run.refresh_from_db()
    assert run.status == "cancelled"
    with pytest.raises(CommandError, match="only queued or running runs can be cancelled"):
        call_command("distill", "cancel", str(run.pk))

    call_command("distill", "resume", str(run.pk), "--wait")  # no worker runs: it works here
    run.refresh_from_db()
    assert run.status == "succeeded" and Question.objects.filter(run=run).count() == 3 * 4
    capsys.readouterr()
    call_command("distill", "status", str(run.pk))
    out = capsys.readouterr().out
    assert f"Run #{run.pk} (auto) of 'Support' on Teacher: succeeded, 100%" in out
    assert "12/12 questions" in out
    with pytest.raises(CommandError, match="No run #999999"):
        call_command("distill", "status", "999999")


def test_distill_tags_prints_new_siblings(provider, capsys):
    call_command("distill", "tags", "--parent", "Support -> Billing", "--count", "3", "--existing", "Refunds",
                 "--provider", "Teacher")
    tags = json.loads(capsys.readouterr().out)
    assert len(tags) == 3 and "Refunds" not in [t["name"] for t in tags]


def test_distill_questions_prints_questions(provider, capsys):
    call_command("distill", "questions", "--intent", "Refunds", "--intent-path", "Support -> Billing -> Refunds",
                 "--count", "12", "--provider", "Teacher")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(set(lines)) == 12


def test_distill_reports_a_refusal_as_a_command_error(provider, teacher):
    teacher.teacher.configure(fail_status=402)
    with pytest.raises(CommandError, match=r"Teacher: insufficient balance \(402\)"):
        call_command("distill", "tags", "--parent", "Billing", "--provider", "Teacher")


def test_the_admin_estimates_then_starts_a_run(client, superuser, topic, provider):
    client.force_login(superuser)
    url = "/admin/distiller/distillationrun/start/"
    assert client.get(url, {"topic": topic.pk}).status_code == 200
    form = {"topic": topic.pk, "kind": "auto", "provider": provider.pk, "levels": 2, "tags_per_level": 2,
            "questions_per_intent": 10, "questions_per_call": 10, "language": "en", "leaf_only": "on", "mix": ""}

    estimate = client.post(url, {**form, "estimate": "Estimate"})
    assert estimate.status_code == 200
    assert "about <strong>11 calls</strong>" in estimate.content.decode()
    assert not DistillationRun.objects.exists()

    started = client.post(url, {**form, "start": "Start run"})
    run = DistillationRun.objects.get()
    assert started.status_code == 302 and started.url.endswith(f"/{run.pk}/change/")
    page = client.get(started.url).content.decode()
    assert "Cancel run" in page and "taxonomy:1" in page

    client.post(f"/admin/distiller/distillationrun/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == "cancelled"
    client.post(f"/admin/distiller/distillationrun/{run.pk}/resume/")
    run.refresh_from_db()
    assert run.status == "running"


def test_reviewers_cannot_start_runs_from_the_admin(client, reviewer, topic, provider):
    client.force_login(reviewer)
    response = client.get("/admin/distiller/distillationrun/start/")
    assert response.status_code == 302
    assert not DistillationRun.objects.exists()


@WORKERS
def test_distill_tags_and_questions_save_into_a_topic(provider, topic, make_intent, capsys):
    billing = make_intent(topic, "Billing")
    make_intent(topic, "Refunds", parent=billing)
    call_command("distill", "tags", "--topic", topic.name, "--parent", "Customer Support -> Billing", "--count", "3",
                 "--provider", "Teacher", "--save")
    assert list(billing.children.values_list("number", flat=True)) == ["1.1", "1.2", "1.3", "1.4"]

    call_command("distill", "questions", "--topic", topic.name, "--intent", "Refunds", "--intent-path",
                 "Billing -> Refunds", "--count", "7", "--provider", "Teacher", "--save")
    refunds = billing.children.get(name="Refunds")
    assert Question.objects.filter(intent=refunds).count() == 7
    assert Question.objects.count() == 7
    assert "succeeded" in capsys.readouterr().out

    # --languages spreads the saved questions over languages, each question in the one it was asked in.
    call_command("distill", "questions", "--topic", topic.name, "--intent", "Refunds", "--intent-path",
                 "Billing -> Refunds", "--count", "6", "--languages", "en,es", "--provider", "Teacher", "--save")
    run = DistillationRun.objects.latest("pk")
    assert run.parameters["languages"] == ["en", "es"]
    assert sorted(Question.objects.filter(run=run).values_list("language", flat=True)) == ["en"] * 3 + ["es"] * 3
    with pytest.raises(CommandError, match="add --topic and --save"):
        call_command("distill", "questions", "--intent", "Refunds", "--languages", "en,es", "--provider", "Teacher")


def test_distill_auto_estimate_prints_and_starts_nothing(provider, capsys):
    call_command("distill", "auto", "--topic", "Brand New", "--levels", "2", "--tags-per-level", "3",
                 "--questions-per-tag", "10", "--provider", "Teacher", "--estimate")
    out = capsys.readouterr().out
    assert out.startswith("Estimate on Teacher (teacher-1): 22 calls (4 taxonomy, 18 questions), 12 intents, "
                          "90 questions, ")
    assert out.rstrip().endswith("$0.0000. Nothing was started.")
    assert not DistillationRun.objects.exists() and not Topic.objects.filter(name="Brand New").exists()


@WORKERS
def test_distill_auto_output_without_wait_waits_for_the_file(provider, tmp_path, capsys):
    output = tmp_path / "dataset.jsonl"
    call_command("distill", "auto", "--topic", "Support", "--levels", "1", "--tags-per-level", "2",
                 "--questions-per-tag", "3", "--provider", "Teacher", "--output", str(output))
    assert len(output.read_text().splitlines()) == 6
    assert "Wrote 6 questions" in capsys.readouterr().out
    assert DistillationRun.objects.get().job_ids == []  # worked here: no job left behind on the queue


@WORKERS
def test_questions_of_a_provider_without_a_model_store_the_model_the_server_reported(provider, topic, make_intent,
                                                                                       settings):
    settings.LLM_MODEL = ""
    provider.model = ""
    provider.save()
    make_intent(topic, "Refunds")
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=4, workers=0)
    run_work(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert set(Question.objects.filter(run=run).values_list("model", flat=True)) == {"teacher-1"}
    assert set(LLMCall.objects.filter(run=run).values_list("model", flat=True)) == {"teacher-1"}


def test_the_admin_lists_a_runs_calls_read_only(client, superuser, topic, provider):
    run = DistillationRun.objects.create(topic=topic, provider=provider, status="running", calls=1)
    other = DistillationRun.objects.create(topic=topic, provider=provider)
    for r, code in ((run, "http_429"), (other, "http_500")):
        LLMCall.objects.create(run=r, provider=provider, model="teacher-1", kind="questions", outcome="transient",
                               error_code=code, created_at=timezone.now())
    client.force_login(superuser)
    page = client.get(f"/admin/distiller/distillationrun/{run.pk}/change/").content.decode()
    assert f'href="/admin/distiller/llmcall/?run__id__exact={run.pk}"' in page

    listing = client.get("/admin/distiller/llmcall/", {"run__id__exact": run.pk})
    assert listing.status_code == 200
    cells = listing.content.decode().count('<td class="field-error_code">')
    assert cells == 1 and '<td class="field-error_code">http_429</td>' in listing.content.decode()
    assert client.get("/admin/distiller/llmcall/add/").status_code == 403


def test_the_admin_starts_a_judge_run_over_existing_questions(client, superuser, topic, provider, make_intent,
                                                               make_question):
    refunds = make_intent(topic, "Refunds")
    make_intent(topic, "Invoices")
    make_question(refunds, "Where is my refund?", source="imported")
    client.force_login(superuser)
    url = "/admin/distiller/distillationrun/start/"
    form = {"topic": topic.pk, "kind": "judge", "provider": provider.pk, "levels": 1, "tags_per_level": 2,
            "questions_per_intent": 10, "questions_per_call": 10, "language": "en", "mix": "", "judge": provider.pk,
            "judge_threshold": 0.6, "judge_action": "reject", "judge_refine_rounds": 2, "hard_negatives": 0,
            "out_of_scope": 0}

    estimate = client.post(url, {**form, "estimate": "Estimate"}).content.decode()
    assert "about <strong>1 calls</strong>" in estimate and "1 for the judge (Teacher)" in estimate

    client.post(url, {**form, "start": "Start run"})
    run = DistillationRun.objects.get()
    assert (run.kind, run.judge_provider, run.parameters["judge_action"], run.parameters["judge_threshold"]) == (
        "judge", provider, "reject", 0.6)
    assert list(run.units.values_list("key", flat=True)) == [f"judge:{refunds.pk}"]
