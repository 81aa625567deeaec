"""The health report names every injected fault of a CLINC150 file with exact counts, through the
CLI, the API and the page; the file report writes nothing and refuses bad input clearly."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from datasets.health.report import gini
from datasets.imports import questions_import
from datasets.models import Question, QuestionBand
from tests.api.clients import api_as
from tests.health.faults import CONFLICTS, GERMAN, PARAPHRASES, SMALL_INTENT, fault_jsonl


def assert_names_every_fault(report: dict, *, ref_word: str):
    dup = report["duplicates"]
    # 5 intents of 20, the small intent's 2, the paraphrases' 4, the German 3, and in the file the
    # 2 exact copies and 3 conflicting rows (an import drops those).
    assert report["subject"]["questions"] == 5 * 20 + 2 + 4 + 3 + (2 + 3 if ref_word == "line" else 0)
    assert dup["label_conflicts"]["count"] == (3 if ref_word == "line" else 0)
    assert dup["exact"]["count"] == (2 if ref_word == "line" else 0)
    small = SMALL_INTENT if ref_word == "line" else f"6 {SMALL_INTENT}"  # a topic's intents have their numbers
    assert [r["intent"] for r in report["balance"]["under_10"]] == [small]
    assert report["balance"]["under_10"][0]["count"] == 2
    across = dup["paraphrases"]["across_intents"]
    assert across["count"] == len(PARAPHRASES)
    assert sorted((p["a"]["text"], p["b"]["text"]) for p in across["listed"]) == sorted(
        (a, b) for a, _, b, _ in PARAPHRASES)
    german = report["coverage"]["languages"]["not_requested"]
    assert list(german) == ["de"] and german["de"]["count"] == len(GERMAN)
    assert sorted(r["text"] for r in german["de"]["listed"]) == sorted(t for t, _ in GERMAN)
    assert report["coverage"]["languages"]["requested"] == ["en"]


def test_the_file_report_names_every_injected_fault(dataset_admin, tmp_path, capsys):
    path = tmp_path / "faults.jsonl"
    path.write_bytes(fault_jsonl())
    call_command("health", "--file", str(path), "--json")
    report = json.loads(capsys.readouterr().out)
    assert_names_every_fault(report, ref_word="line")
    conflicts = report["duplicates"]["label_conflicts"]["listed"]
    assert sorted(tuple(c["intents"]) for c in conflicts) == sorted(
        tuple(sorted((intent, other))) for intent, _, other in CONFLICTS)
    assert [v["severity"] for v in report["verdicts"]][:1] == ["error"]
    assert report["verdicts"][0]["message"] == "3 texts under two or more intents (label conflicts): keep one intent each."
    call_command("health", "--file", str(path))
    text = capsys.readouterr().out
    assert "Label conflicts (same text, two intents): 3" in text
    assert "fewer than 10: goodbye (2)" in text
    assert "de (not requested): 3" in text
    assert Question.objects.count() == 0 and QuestionBand.objects.count() == 0


def test_the_api_file_report_is_validate_only_and_for_dataset_admins(dataset_admin, reviewer):
    def upload():
        return {"file": SimpleUploadedFile("faults.jsonl", fault_jsonl()), "languages": "en"}

    response = api_as(dataset_admin).post("/api/v1/health/", upload(), format="multipart")
    assert response.status_code == 200, response.content
    assert_names_every_fault(response.json(), ref_word="line")
    assert Question.objects.count() == 0 and QuestionBand.objects.count() == 0
    assert api_as(reviewer).post("/api/v1/health/", upload(), format="multipart").status_code == 403
    unknown = api_as(dataset_admin).post("/api/v1/health/", {**upload(), "dry_run": "true"}, format="multipart")
    assert unknown.status_code == 400 and "dry_run" in unknown.json()["error"]["message"]


@pytest.fixture
def fault_topic(topic):
    questions_import(topic=topic, stream=io.BytesIO(fault_jsonl()), format="jsonl", create_intents=True,
                     on_conflict="keep_first")
    return topic


def test_the_topic_report_through_the_cli_the_api_and_the_page(fault_topic, reviewer, other_reviewer, dataset_admin,
                                                                capsys):
    # Imported, the exact duplicates are dropped and the conflicts keep their first intent: the
    # topic still has the paraphrases, the small intent and the German questions.
    call_command("health", "--topic", fault_topic.name, "--json")
    report = json.loads(capsys.readouterr().out)
    assert_names_every_fault(report, ref_word="question")
    assert report["subject"]["questions"] == Question.objects.filter(topic=fault_topic).count() == 109
    for user in (reviewer, dataset_admin):
        response = api_as(user).get(f"/api/v1/topics/{fault_topic.pk}/health/")
        assert response.status_code == 200
        assert response.json()["duplicates"] == report["duplicates"]
    assert api_as(other_reviewer).get(f"/api/v1/topics/{fault_topic.pk}/health/").status_code == 404
    browser = Client()
    browser.force_login(reviewer)
    page = browser.get(f"/topics/{fault_topic.pk}/health/").content.decode()
    assert "Paraphrase pairs across intents: 2" in page
    assert "how much money is left in my savings account this month" in page
    assert "<span class=\"intent\">6 goodbye</span> (2)" in page
    assert "3 questions in <strong>de</strong>, not requested" in page
    assert "<svg" in page and "cdn" not in page.lower()
    assert f'href="/topics/{fault_topic.pk}/health/"' in browser.get(f"/topics/{fault_topic.pk}/").content.decode()
    browser.force_login(other_reviewer)
    assert browser.get(f"/topics/{fault_topic.pk}/health/").status_code == 404


def test_the_topic_report_finds_paraphrases_on_both_sides_of_the_split(topic, make_intent, make_question):
    balance = make_intent(topic, "Balance")
    a = make_question(balance, "how much money is left in my checking account this month", split="train",
                      status="approved")
    b = make_question(balance, "how much money is left in my savings account this month", split="test",
                      status="approved")
    from datasets.health.services import topic_health_report

    leakage = topic_health_report(topic=topic)["leakage"]
    assert leakage["checked"] is True and leakage["near"]["count"] == 0
    assert [(p["a"]["ref"], p["b"]["ref"]) for p in leakage["paraphrases"]["listed"]] == [(a.pk, b.pk)]


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\x01\x02binary\x00", "is a binary file (it has NUL bytes)"),
    ('{"question": "caf\xe9", "intent": "x"}\n'.encode("latin-1"), "line 1: not UTF-8 (byte 0xe9"),
    (b'{"words": "hello", "category": "x"}\n', "line 1: no question text: found 'words', 'category'"),
    (b"", "has no questions"),
])
def test_the_file_report_refuses_bad_input_clearly(db, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(CommandError) as error:
        call_command("health", "--file", str(path))
    assert message in str(error.value)
    assert Question.objects.count() == 0


def test_a_file_over_the_limit_is_refused_before_it_is_read(dataset_admin, tmp_path):
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:  # a sparse 1 GB file: no disk, and the report must not read it
        f.truncate(1024**3)
    with pytest.raises(CommandError, match=r"big.jsonl is 1,073,741,824 bytes, over the report's limit of 20,971,520"):
        call_command("health", "--file", str(big))
    response = api_as(dataset_admin).post("/api/v1/health/", b"x", content_type="multipart/form-data; boundary=b",
                                          HTTP_CONTENT_LENGTH=str(1024**3), CONTENT_LENGTH=str(1024**3))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"


def test_gini():
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 10]) == 0.6667


def test_a_leaf_only_topics_empty_inner_intents_are_not_intents_of_the_report(make_topic, make_intent, make_question):
    # CLINC150's ten domains hold no questions by design: the demo's report called them ten intents
    # "with fewer than 10 questions" (its first error) and counted 161 intents where the dashboard has 151.
    from datasets.health.services import topic_health_report
    from labeling.selectors import topic_progress

    topic = make_topic("Banking support", target_per_intent=10)
    banking = make_intent(topic, "Banking")
    for name in ("Freeze account", "Routing number"):
        leaf = make_intent(topic, name, parent=banking)
        for i in range(10):
            make_question(leaf, f"{name} question number {i} about my account", status="approved")
    cards = make_intent(topic, "Cards")  # an inner intent that does hold a question stays in the report
    lost_card = make_intent(topic, "Lost card", parent=cards)
    make_question(cards, "something about my cards", status="approved")
    for i in range(10):
        make_question(lost_card, f"I lost my card number {i}", status="approved")

    report = topic_health_report(topic=topic)

    assert report["subject"]["intents"] == 4 == len(topic_progress(topic=topic))
    assert [row["intent"] for row in report["balance"]["per_intent"]] == [
        "1.1 Freeze account", "1.2 Routing number", "2 Cards", "2.1 Lost card"]
    assert [row["intent"] for row in report["balance"]["under_10"]] == ["2 Cards"]
    assert report["balance"]["min"] == 1


@pytest.mark.parametrize(("text", "language"), [
    # CLINC150 questions the demo's report counted as Portuguese ("me", "a", "as" are Portuguese
    # function words too): 61 of them, a warning "61 questions in pt, a language not requested".
    ("tell me a fact", ""),
    ("give me a 10 minute countdown", ""),
    ("help me find a new position as a programmer", ""),
    ("speak as a british male", ""),
    ("can you tell me a joke about the weather", "en"),
    ("vocês podem me explicar a fatura? Me avisem.", "pt"),
])
def test_short_english_questions_are_not_read_as_portuguese(text, language):
    from datasets.health.language import language_detect

    assert language_detect(text) == language
