"""A run's `languages`: defaulted from the topic's preset, checked, spread evenly over each intent
(one language per call), stored on every question, and read by the health report's coverage."""

import random
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from datasets.health.language import language_detect
from datasets.health.services import topic_health_report
from datasets.models import Question, TopicPreset
from distiller.jobs import run_work
from distiller.models import DistillationRun, LLMCall
from distiller.services import RunError, run_start
from distiller.services.runs import language_quotas, run_estimate_for, run_parameters
from tests.distiller.conftest import WORKERS


@pytest.fixture
def bilingual(db):
    return TopicPreset.objects.create(name="Bilingual bank", description="Banking questions.", languages=["en", "es"],
                                      styles={"request": 1}, audiences={"general": 1})


def test_a_run_takes_the_presets_languages_unless_it_asks_for_its_own(make_topic, bilingual):
    plain = make_topic("Plain")
    preset_topic = make_topic("Preset")
    preset_topic.preset = bilingual
    preset_topic.save()
    assert run_parameters(topic=plain, kind="taxonomy")["languages"] == ["en"]
    assert run_parameters(topic=preset_topic, kind="taxonomy")["languages"] == ["en", "es"]
    # A run that names one language keeps the one-language behaviour; one that lists languages gets them.
    assert run_parameters(topic=preset_topic, kind="taxonomy", language="de")["languages"] == ["de"]
    assert run_parameters(topic=plain, kind="taxonomy", languages="fr, en,fr")["languages"] == ["fr", "en"]


@pytest.mark.parametrize("languages, message", [
    (["en", "xx"], "Unsupported language 'xx' in languages; use one of en, zh, de, es, fr, it, ja, pt, ru, ko."),
    ([], None),  # empty: the default
    ([" "], "languages is empty: give at least one language code, e.g. [\"en\"]."),
    ([1], 'languages must be a list of language codes, e.g. ["en", "es"].'),
])
def test_an_unknown_or_malformed_language_list_is_a_run_error(make_topic, languages, message):
    topic = make_topic("Checked")
    if message is None:
        assert run_parameters(topic=topic, kind="taxonomy", languages=languages)["languages"] == ["en"]
        return
    with pytest.raises(RunError) as error:
        run_parameters(topic=topic, kind="taxonomy", languages=languages)
    assert error.value.message == message


def test_quotas_split_a_target_evenly_and_add_up_to_it():
    assert language_quotas(["en"], 7, random.Random(1)) == {"en": 7}
    assert language_quotas(["en", "es"], 6, random.Random(1)) == {"en": 3, "es": 3}
    quotas = [language_quotas(["en", "es", "fr"], 7, random.Random(seed)) for seed in range(30)]
    assert all(sum(q.values()) == 7 and sorted(q.values()) == [2, 2, 3] for q in quotas)
    assert {max(q, key=q.get) for q in quotas} == {"en", "es", "fr"}  # the extra one is not always the first's


def test_the_estimate_counts_one_call_per_language_and_batch(make_topic, make_intent):
    topic = make_topic("Estimate")
    make_intent(topic, "Refunds")
    from distiller.models import LLMProvider

    provider = LLMProvider.objects.create(name="Local", kind="custom", base_url="http://127.0.0.1:9/v1", model="m")
    one = run_estimate_for(topic=topic, provider=provider, kind="questions", questions_per_intent=10)
    two = run_estimate_for(topic=topic, provider=provider, kind="questions", questions_per_intent=10,
                           languages=["en", "es"])
    # 10 questions + 10% margin: 11 asked in 2 calls of 10; in two languages 5 + 1 each, one call each.
    assert (one["question_calls"], two["question_calls"]) == (2, 2)
    three = run_estimate_for(topic=topic, provider=provider, kind="questions", questions_per_intent=30,
                             questions_per_call=5, languages=["en", "es", "de"])
    assert three["question_calls"] == 3 * 3  # 10 + 1 asked per language: 3 calls of 5 each


@WORKERS
def test_a_bilingual_run_on_the_teacher_writes_exact_counts_per_language(provider, make_topic, make_intent, bilingual):
    topic = make_topic("Banca")
    topic.preset = bilingual
    topic.save()
    intents = [make_intent(topic, name) for name in ("Card payments", "Transfer money")]
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=6, workers=0)
    run_work(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.parameters["languages"] == ["en", "es"]
    counts = Counter(Question.objects.filter(run=run).values_list("intent__name", "language"))
    assert counts == {(intent.name, language): 3 for intent in intents for language in ("en", "es")}
    assert Question.objects.filter(run=run).count() == 12 == 2 * run.parameters["questions_per_intent"]
    # One language per call, and the teacher wrote each question in the language it was asked in.
    assert LLMCall.objects.filter(run=run, kind="questions").count() == 2 * 2
    detected = Counter((q.language, language_detect(q.text)) for q in Question.objects.filter(run=run))
    assert {asked for asked, found in detected if found and found != asked} == set()
    assert detected[("en", "en")] >= 4 and detected[("es", "es")] >= 4
    coverage = topic_health_report(topic=topic)["coverage"]["languages"]
    assert coverage["requested"] == ["en", "es"]
    assert set(coverage["found"]) <= {"en", "es", "unknown"} and coverage["found"]["es"] >= 4
    assert coverage["not_requested"] == {}


@WORKERS
def test_a_one_language_run_keeps_writing_its_language(provider, make_topic, make_intent):
    topic = make_topic("Bank")
    make_intent(topic, "Refunds")
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=5, language="de",
                    workers=0)
    run_work(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.parameters["languages"] == ["de"]
    assert list(Question.objects.filter(run=run).values_list("language", flat=True)) == ["de"] * 5


def test_the_health_report_requests_what_the_runs_asked_for(make_topic, provider):
    topic = make_topic("Requested")
    DistillationRun.objects.create(topic=topic, provider=provider, parameters={"language": "en",
                                                                               "languages": ["en", "fr"]})
    DistillationRun.objects.create(topic=topic, provider=provider, parameters={"language": "de"})  # before `languages`
    assert topic_health_report(topic=topic)["coverage"]["languages"]["requested"] == ["de", "en", "fr"]


def test_the_api_takes_languages_and_names_an_unknown_code(make_topic, make_intent, superuser):
    from distiller.models import LLMProvider

    LLMProvider.objects.create(name="Local", kind="custom", base_url="http://127.0.0.1:9/v1", model="m")
    topic = make_topic("Api")
    make_intent(topic, "Refunds")
    api = APIClient()
    api.force_authenticate(superuser)
    body = {"topic": topic.pk, "provider": "Local", "kind": "questions", "questions_per_intent": 4}
    bad = api.post("/api/v1/runs/", {**body, "languages": ["en", "klingon"]}, format="json")
    assert bad.status_code == 400
    assert bad.data["error"]["message"].startswith("Unsupported language 'klingon' in languages; use one of en, zh")
    good = api.post("/api/v1/runs/", {**body, "languages": ["es", "en"]}, format="json")
    assert good.status_code == 201, good.data
    assert DistillationRun.objects.get(pk=good.data["id"]).parameters["languages"] == ["es", "en"]


def test_the_cli_takes_languages_and_refuses_an_unknown_code(db, capsys):
    call_command("distill", "auto", "--topic", "Cli", "--levels", "1", "--tags-per-level", "2",
                 "--questions-per-tag", "10", "--languages", "en,es", "--estimate")
    assert capsys.readouterr().out.rstrip().endswith("Nothing was started.")
    assert not DistillationRun.objects.exists()
    with pytest.raises(CommandError, match="Unsupported language 'xx' in languages"):
        call_command("distill", "auto", "--topic", "Cli", "--languages", "en,xx", "--estimate")


def test_the_start_form_is_prefilled_from_the_topics_preset_and_passes_the_ticked_languages(
        make_topic, make_intent, superuser, bilingual, settings):
    from distiller.models import LLMProvider

    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "teacher-1"
    topic = make_topic("Form")
    topic.preset = bilingual
    topic.save()
    make_intent(topic, "Refunds")
    browser = Client()
    browser.force_login(superuser)
    page = browser.get(f"/admin/distiller/distillationrun/start/?topic={topic.pk}").content.decode()
    assert 'name="languages" value="en" id="id_languages_0" checked' in page
    assert 'name="languages" value="es" id="id_languages_3" checked' in page
    form = {"topic": topic.pk, "kind": "questions", "provider": LLMProvider.objects.get(name="Custom").pk,
            "levels": 1, "tags_per_level": 2, "questions_per_intent": 4, "questions_per_call": 10, "language": "en",
            "leaf_only": "on", "mix": "", "start": "Start run"}
    assert browser.post("/admin/distiller/distillationrun/start/", {**form, "languages": ["fr", "en"]}).status_code \
        == 302
    # Nothing ticked and the language left as the topic's: the preset's languages.
    assert browser.post("/admin/distiller/distillationrun/start/", form).status_code == 302
    assert [run.parameters["languages"] for run in DistillationRun.objects.order_by("pk")] == [
        ["fr", "en"], ["en", "es"]]


@pytest.mark.parametrize("language", ["en", "zh", "de", "es", "fr", "it", "ja", "pt", "ru", "ko"])
def test_the_teacher_answers_in_every_language_a_run_may_ask_for(language):
    from distiller.teacher.content import questions_answer

    request = {"task": "questions", "language": language, "intent_path": ["Billing", "Refunds"],
               "items": [{"n": n, "edge_case": "none"} for n in range(1, 21)], "existing": []}
    texts = [item["text"] for item in questions_answer(request, seed=3)["questions"]]
    assert texts == [item["text"] for item in questions_answer(request, seed=3)["questions"]]  # deterministic
    detected = Counter(language_detect(text) for text in texts)
    assert detected.most_common(1)[0][0] == language and set(detected) <= {language, ""}, detected


@WORKERS
def test_the_judge_of_a_bilingual_run_gets_one_language_per_batch(provider, make_topic, make_intent, bilingual,
                                                                 monkeypatch):
    from distiller import prompts

    asked = []
    real = prompts.JUDGE.messages

    def spy(**kwargs):
        asked.append((kwargs["language"], [q["text"] for q in kwargs["questions"]]))
        return real(**kwargs)

    monkeypatch.setattr(prompts.JUDGE, "messages", spy)
    topic = make_topic("Banca judged")
    topic.preset = bilingual
    topic.save()
    make_intent(topic, "Card payments")
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=6, judge="Teacher",
                    workers=0)
    run_work(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    language_of = dict(Question.objects.filter(run=run).values_list("text", "language"))
    # The naturalness is rated as a user of the questions' own language would write: never a mixed batch.
    assert sorted(language for language, _ in asked) == ["en", "es"]
    assert all({language_of[text] for text in texts} == {language} for language, texts in asked)
    assert run.questions_judged == 6
