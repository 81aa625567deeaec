"""Imports a data scientist can run on the file as it is: a split per row or per file, their own
column names, a dry run that reports everything, label conflicts by line, limits named per line."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from datasets.imports import ImportRejected, questions_import
from datasets.models import QUESTION_TEXT_MAX_CHARS, IntentNode, Question
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


def jsonl(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run(topic, data: bytes, format="jsonl", **options):
    return questions_import(topic=topic, stream=io.BytesIO(data), format=format, **options)


def problems(topic, data: bytes, format="jsonl", **options) -> list[dict]:
    before = Question.objects.count(), IntentNode.objects.count()
    with pytest.raises(ImportRejected) as caught:
        run(topic, data, format, **options)
    assert (Question.objects.count(), IntentNode.objects.count()) == before
    return caught.value.details["errors"]


def imported(topic):
    """The questions this test imported (known_dataset has an imported question of its own)."""
    return Question.objects.filter(topic=topic, source="imported").exclude(pk__range=(900001, 900011))


def splits_of(topic) -> dict[str, str]:
    return dict(imported(topic).values_list("text", "split"))


@pytest.mark.parametrize("format, data", [
    ("jsonl", jsonl({"question": "Refund one", "intent_number": "1.1", "split": "train"},
                    {"question": "Refund two", "intent_number": "1.1", "split": "VAL"},
                    {"question": "Refund three", "intent_number": "1.1", "split": "dev"},
                    {"question": "Refund four", "intent_number": "1.1", "split": "test"},
                    {"question": "Refund five", "intent_number": "1.1"})),
    ("csv", b"text,intent_number,split\nRefund one,1.1,train\nRefund two,1.1,VAL\nRefund three,1.1,dev\n"
            b"Refund four,1.1, test \nRefund five,1.1,\n"),
    ("alpaca", json.dumps([{"input": "Refund one", "output": "1.1 Refunds", "split": "train"},
                           {"input": "Refund two", "output": "1.1 Refunds", "split": "VAL"},
                           {"input": "Refund three", "output": "1.1 Refunds", "split": "dev"},
                           {"input": "Refund four", "output": "1.1 Refunds", "split": "test"},
                           {"input": "Refund five", "output": "1.1 Refunds"}]).encode()),
])
def test_a_rows_own_split_is_kept_in_every_format(known_dataset, format, data):
    report = run(known_dataset, data, format)
    assert (report.created, report.splits) == (5, {"train": 1, "validation": 2, "test": 1, "none": 1})
    assert splits_of(known_dataset) == {"Refund one": "train", "Refund two": "validation",
                                        "Refund three": "validation", "Refund four": "test", "Refund five": ""}


def test_an_unknown_split_is_a_problem_of_its_line_naming_the_accepted_values(known_dataset):
    data = b"text,intent_number,split\nRefund one,1.1,train\nRefund two,1.1,holdout\n"
    assert problems(known_dataset, data, "csv") == [
        {"line": 3, "message": "unknown split 'holdout': use train, validation or test (val, valid and dev mean "
                               "validation)"}]


def test_a_file_wide_split_overrides_the_rows_own_and_says_how_many(known_dataset):
    data = jsonl({"question": "Refund one", "intent_number": "1.1", "split": "train"},
                 {"question": "Refund two", "intent_number": "1.1", "split": "test"},
                 {"question": "Refund three", "intent_number": "1.1"})
    report = run(known_dataset, data, split="valid")
    assert (report.splits, report.split_overridden) == ({"validation": 3}, 2)
    assert set(splits_of(known_dataset).values()) == {"validation"}


def test_a_text_category_csv_imports_as_it_is_with_its_columns_named(topic):
    data = b"text,category\nWhere is my parcel?,shipping\nCancel my order,orders\nParcel is late,Shipping\n"
    report = run(topic, data, "csv", text_column="Text", intent_column="category", create_intents=True)
    assert (report.created, report.intents_created) == (3, 2)
    assert list(IntentNode.objects.filter(topic=topic).values_list("number", "name", "parent")) == [
        ("1", "shipping", None), ("2", "orders", None)]
    assert dict(Question.objects.filter(topic=topic).values_list("text", "intent__name")) == {
        "Where is my parcel?": "shipping", "Cancel my order": "orders", "Parcel is late": "shipping"}


def test_a_label_column_of_plain_names_creates_root_intents_and_matches_existing_ones(known_dataset):
    data = b"text,label\nMy parcel is late,Shipping\nI need a refund now,Refunds\nParcel lost,shipping\n"
    report = run(known_dataset, data, "csv", create_intents=True)
    assert (report.created, report.intents_created, report.intents_to_create) == (3, 1, ["Shipping"])
    shipping = IntentNode.objects.get(topic=known_dataset, name="Shipping")
    assert (shipping.number, shipping.parent) == ("3", None)
    assert Question.objects.get(text="I need a refund now").intent.number == "1.1"


def test_columns_that_are_not_recognised_are_named_with_the_accepted_ones(known_dataset):
    assert problems(known_dataset, b"sentence,category\nhello,greeting\n", "csv") == [
        {"line": 1, "message": "the header has no question text column: found 'sentence', 'category'; accepted: "
                               "'text' or 'question' (or name yours with text_column)"}]
    assert problems(known_dataset, b"text,category\nhello,greeting\n", "csv") == [
        {"line": 1, "message": "the header has no intent column: found 'text', 'category'; accepted: intent_path, "
                               "intent_full_name, intent_number, intent, label (or name yours with intent_column)"}]
    assert problems(known_dataset, b"text,category\nhello,greeting\n", "csv", intent_column="topic") == [
        {"line": 1, "message": "the header has no intent column: found 'text', 'category'; accepted: 'topic' "
                               "(the intent_column)"}]
    assert problems(known_dataset, jsonl({"sentence": "hello", "category": "greeting"})) == [
        {"line": 1, "message": "no question text: found 'sentence', 'category'; accepted: 'question' or 'text' "
                               "(or name yours with text_column)"}]
    assert problems(known_dataset, jsonl({"text": "hello", "category": "greeting"})) == [
        {"line": 1, "message": "no intent: found 'text', 'category'; accepted: intent_path, intent_hierarchy, "
                               "intent_full_name, intent_number, intent, label (or name yours with intent_column)"}]


def test_an_intent_name_too_long_or_a_path_too_deep_is_a_problem_of_its_line_not_a_500(known_dataset):
    deep = " -> ".join(f"Level {i}" for i in range(50))
    data = jsonl({"question": "Fine row", "intent_path": "Billing -> New One"},
                 {"question": "Long name", "intent": "n" * 201},
                 {"question": "Deep path", "intent_path": deep},
                 {"question": "Empty level", "intent_path": "Billing ->  -> Refunds 2"})
    assert problems(known_dataset, data, create_intents=True) == [
        {"line": 2, "message": f"the intent name {'n' * 40 + '...'!r} is 201 characters long, over the limit of 200"},
        {"line": 3, "message": "the intent path is 50 levels deep, over the limit of 6 (a taxonomy has at most 6 "
                               "levels)"},
        {"line": 4, "message": "the intent path has a level without a name"},
    ]
    ok = jsonl({"question": "Six deep", "intent_path": " -> ".join(f"L{i}" for i in range(6))},
               {"question": "Long but fine", "intent": "n" * 200})
    assert run(known_dataset, ok, create_intents=True).intents_created == 7


def test_a_question_over_the_text_limit_is_a_problem_of_its_line(known_dataset):
    long_text = "a" * (QUESTION_TEXT_MAX_CHARS + 1)
    data = b"text,intent_number\nfine,1.1\n" + long_text.encode() + b",1.1\n"
    assert problems(known_dataset, data, "csv") == [
        {"line": 3, "message": "the question is 5,001 characters long, over the limit of 5,000"}]
    assert run(known_dataset, b"text,intent_number\n" + b"b" * QUESTION_TEXT_MAX_CHARS + b",1.1\n", "csv").created == 1


CONFLICTS = jsonl(
    {"question": "What are the fees for top ups?", "intent_path": "Billing -> Refunds"},   # 1: first
    {"question": "what are the fees for top-ups", "intent_path": "Billing -> Invoices"},  # 2: conflict with 1
    {"question": "What are the fees for top ups", "intent_path": "Billing -> Refunds"},   # 3: duplicate of 1
    {"question": "I forgot my password", "intent_path": "Billing -> Refunds"},            # 4: topic has it (2.1)
    {"question": "I want my money back", "intent_path": "Billing -> Refunds"},            # 5: topic has it (1.1)
    {"question": "Brand new question", "intent_path": "Billing -> Invoices"},             # 6: new
)


@pytest.mark.parametrize("on_conflict, kept", [
    ("keep_first", {"What are the fees for top ups?": ("1.1", "pending"), "Brand new question": ("1.2", "pending")}),
    ("flag", {"What are the fees for top ups?": ("1.1", "flagged"), "Brand new question": ("1.2", "pending")}),
    ("skip", {"Brand new question": ("1.2", "pending")}),
])
def test_label_conflicts_are_reported_by_line_and_resolved_as_asked(known_dataset, on_conflict, kept):
    report = run(known_dataset, CONFLICTS, on_conflict=on_conflict)
    assert (report.rows, report.created, report.duplicates, report.conflicts, report.conflict_texts,
            report.flagged) == (6, len(kept), 2, 2, 2, 1 if on_conflict == "flag" else 0)
    assert report.conflict_details == [
        {"line": 2, "text": "what are the fees for top-ups", "intent": "1.2 Invoices", "other_intent": "1.1 Refunds",
         "other_line": 1},
        {"line": 4, "text": "I forgot my password", "intent": "1.1 Refunds", "other_intent": "2.1 Reset Password",
         "other_line": None},
    ]
    assert {q.text: (q.intent.number, q.status) for q in imported(known_dataset)} == kept
    # The question already in the topic is left as it was, whatever on_conflict says.
    forgot = Question.objects.get(text="I forgot my password")
    assert (forgot.intent.number, forgot.status, forgot.source) == ("2.1", "approved", "generated")
    if on_conflict == "flag":
        assert imported(known_dataset).get(status="flagged").reviewed_by is None


def test_a_dry_run_reports_everything_and_writes_nothing(known_dataset):
    data = CONFLICTS + jsonl({"question": "New intent please", "intent_path": "Shipping -> Tracking",
                              "split": "test"},
                             {"question": "Broken split", "intent_number": "1.1", "split": "holdout"})
    before = Question.objects.count(), IntentNode.objects.count()
    report = run(known_dataset, data, dry_run=True, create_intents=True)
    assert (Question.objects.count(), IntentNode.objects.count()) == before
    assert report.as_dict() == {
        "rows": 7, "created": 3, "duplicates": 2, "conflicts": 2, "conflict_texts": 2, "flagged": 0,
        "intents_created": 2, "splits": {"none": 2, "test": 1}, "split_overridden": 0, "on_conflict": "keep_first",
        "dry_run": True, "error_count": 1,
        "errors": [{"line": 8, "message": "unknown split 'holdout': use train, validation or test (val, valid and "
                                          "dev mean validation)"}],
        "conflict_details": [
            {"line": 2, "text": "what are the fees for top-ups", "intent": "1.2 Invoices",
             "other_intent": "1.1 Refunds", "other_line": 1},
            {"line": 4, "text": "I forgot my password", "intent": "1.1 Refunds", "other_intent": "2.1 Reset Password",
             "other_line": None}],
        "intents_to_create": ["Shipping", "Shipping -> Tracking"],
    }


def post_import(user, topic, data: bytes, format="jsonl", **fields):
    upload = io.BytesIO(data)
    upload.name = f"questions.{format}"
    return api_as(user).post("/api/v1/imports/", {"topic": topic.pk, "format": format, "file": upload, **fields},
                             format="multipart")


def test_the_api_dry_run_answers_200_with_the_report_and_the_import_201_with_the_same_counts(dataset_admin,
                                                                                            known_dataset):
    options = {"text_column": "sentence", "intent_column": "category", "split": "test", "on_conflict": "flag"}
    data = b"sentence,category\nFees for top ups?,1.1\nfees for top-ups,1.2\nTotally new,Billing -> Invoices\n"
    dry = post_import(dataset_admin, known_dataset, data, "csv", dry_run="true", **options)
    assert dry.status_code == 200, dry.content
    assert not Question.objects.filter(text="Totally new").exists()
    done = post_import(dataset_admin, known_dataset, data, "csv", **options)
    assert done.status_code == 201, done.content
    assert {**dry.json(), "dry_run": False} == done.json()
    assert {k: done.json()[k] for k in ("rows", "created", "conflicts", "flagged", "splits")} == {
        "rows": 3, "created": 2, "conflicts": 1, "flagged": 1, "splits": {"test": 2}}
    assert dict(imported(known_dataset).values_list("text", "status")) == {
        "Fees for top ups?": "flagged", "Totally new": "pending"}


def test_the_api_refuses_an_unknown_on_conflict_or_split(dataset_admin, known_dataset):
    data = jsonl({"question": "x", "intent_number": "1.1"})
    for field, value in (("on_conflict", "merge"), ("split", "holdout")):
        response = post_import(dataset_admin, known_dataset, data, **{field: value})
        assert response.status_code == 400 and field in response.json()["error"]["details"]


def test_the_cli_prints_the_report_and_imports(known_dataset, tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(b"text,category\nFees for top ups?,Billing -> Refunds\nfees for top-ups,Billing -> Invoices\n"
                     b"Where is my parcel,Shipping\n")
    call_command("import", str(path), topic="Customer Care", intent_column="category", create_intents=True,
                 split="test", dry_run=True)
    assert capsys.readouterr().out.splitlines() == [
        "Dry run: nothing was written.",
        "3 rows: 2 would be created, 0 duplicates skipped (same text, same intent), 1 label conflict, 1 intent "
        "would be created.",
        "Created rows by split: test 2.",
        "Label conflicts: 1 text under two intents; on_conflict=keep_first: keep the first row of a text, drop the "
        "others under another intent.",
        "line 3: conflict: 'fees for top-ups' is under '1.2 Invoices' here and under '1.1 Refunds' on line 2",
        "Intents to create: Shipping.",
    ]
    assert not Question.objects.filter(text="Where is my parcel").exists()
    call_command("import", str(path), topic=str(known_dataset.pk), intent_column="category", create_intents=True,
                 split="test", json=True)
    report = json.loads(capsys.readouterr().out)
    assert (report["created"], report["intents_created"], report["dry_run"]) == (2, 1, False)
    assert Question.objects.get(text="Where is my parcel").split == "test"


def test_the_cli_exits_non_zero_naming_every_problem_and_writes_nothing(known_dataset, tmp_path, capsys):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl({"question": "fine", "intent_number": "1.1"}, {"question": "lost", "intent": "Nowhere"}))
    before = Question.objects.count()
    with pytest.raises(CommandError, match=r"^Nothing was imported: line 2: unknown intent 'Nowhere'"):
        call_command("import", str(path), topic="Customer Care")
    assert "line 2: unknown intent 'Nowhere' in topic 'Customer Care'" in capsys.readouterr().err
    with pytest.raises(CommandError, match="1 problem"):
        call_command("import", str(path), topic="Customer Care", dry_run=True)
    with pytest.raises(CommandError, match="No topic named 'Nope'"):
        call_command("import", str(path), topic="Nope")
    with pytest.raises(CommandError, match="Cannot tell the format"):
        call_command("import", str(tmp_path / "x.txt"), topic="Customer Care")
    assert Question.objects.count() == before
