"""Imports: every problem reported with its line number, and nothing written unless all is well."""

import io
import json

import pytest

from datasets.formats.readers import MAX_LINE_BYTES
from datasets.imports import ImportRejected, questions_import
from datasets.models import IntentNode, Question
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def seed_row(text, path="Customer Care -> Billing -> Refunds", **extra):
    return {"question": text, "intent_path": path, **extra}


def rejected(known_dataset, data: bytes, format="jsonl", **options) -> list[dict]:
    before = Question.objects.count(), IntentNode.objects.count()
    with pytest.raises(ImportRejected) as caught:
        questions_import(topic=known_dataset, stream=io.BytesIO(data), format=format, **options)
    assert (Question.objects.count(), IntentNode.objects.count()) == before, "a rejected import wrote something"
    return caught.value.details["errors"]


def test_a_good_jsonl_file_is_imported_with_duplicates_skipped(known_dataset):
    data = jsonl(seed_row("Money back for my shoes"), seed_row("money back for my SHOES!"),
                 seed_row("I want my money back"), seed_row("Invoice for April", path="Billing -> Invoices"),
                 {"question": "Forgot password again", "intent_number": "2.1", "status": "approved"})
    result = questions_import(topic=known_dataset, stream=io.BytesIO(data), format="jsonl")
    assert (result.rows, result.created, result.duplicates, result.intents_created) == (5, 3, 2, 0)
    shoes = Question.objects.get(text="Money back for my shoes")
    assert (shoes.intent.number, shoes.status, shoes.source) == ("1.1", "pending", "imported")
    assert (shoes.version, shoes.occurrences, shoes.language, shoes.provider) == (1, 1, "en", "")
    assert shoes.created_at is not None and shoes.created_at == shoes.updated_at
    assert Question.objects.get(text="Forgot password again").status == "approved"


@pytest.mark.parametrize("batch", [2, 3, 5000])
def test_repeats_within_a_batch_across_batches_and_of_the_topic_are_skipped(known_dataset, monkeypatch, batch):
    monkeypatch.setattr("datasets.imports.COPY_BATCH", batch)
    texts = ["Parcel lost", "parcel LOST!", "Parcel late", "Parcel lost", "I want my money back", "parcel late",
             "Parcel damaged"]
    data = jsonl(*(seed_row(text) for text in texts))
    result = questions_import(topic=known_dataset, stream=io.BytesIO(data), format="jsonl")
    assert (result.rows, result.created, result.duplicates) == (7, 3, 4)
    refunds = Question.objects.filter(topic=known_dataset, intent__name="Refunds")
    assert sorted(refunds.filter(source="imported").values_list("text", flat=True)) == [
        "Parcel damaged", "Parcel late", "Parcel lost"]
    assert all(q.near_key for q in refunds.filter(source="imported"))


def test_our_own_jsonl_export_imports_back_into_a_new_topic(known_dataset, make_topic, settings, tmp_path):
    from datasets.jobs import export_run
    from datasets.models import Export

    export = Export.objects.create(topic=known_dataset, format="jsonl", filters={"statuses": ["approved"]})
    export_run(export.pk)
    exported = (settings.EXPORT_ROOT / str(export.pk) / "questions.jsonl").read_bytes()
    copy = make_topic("Customer Care copy")
    result = questions_import(topic=copy, stream=io.BytesIO(exported), format="jsonl", create_intents=True)
    assert (result.created, result.intents_created) == (8, 5)
    assert sorted(IntentNode.objects.filter(topic=copy).values_list("number", "name")) == [
        ("1", "Billing"), ("1.1", "Refunds"), ("1.2", "Invoices"), ("2", "Account"), ("2.1", "Reset Password")]
    assert set(Question.objects.filter(topic=copy).values_list("status", flat=True)) == {"approved"}


def test_invalid_json_on_line_7_is_reported_on_line_7(known_dataset):
    lines = [seed_row(f"Refund number {word}") for word in "abcdef"] + [b'{"question": "broken",']
    errors = rejected(known_dataset, jsonl(*lines, seed_row("fine")))
    assert errors == [{"line": 7, "message": "invalid JSON (Expecting property name enclosed in double quotes "
                                             "at column 23)"}]


def test_every_problem_is_listed_with_its_line(known_dataset):
    data = jsonl(
        seed_row("fine"),
        {"intent_path": "Billing -> Refunds"},
        seed_row("nowhere", path="Billing -> Lost"),
        b"\xff\xfebad bytes",
        b"[1, 2]",
        seed_row("   "),
        seed_row("odd status", status="maybe"),
    )
    assert rejected(known_dataset, data) == [
        {"line": 2, "message": "no question text: found 'intent_path'; accepted: 'question' or 'text' (or name yours "
                               "with text_column)"},
        {"line": 3, "message": "unknown intent 'Billing -> Lost' in topic 'Customer Care': create it first, "
                               "or import with create_intents (API), --create-intents (manage.py import) or "
                               "Create intents (admin)"},
        {"line": 4, "message": "not UTF-8 (byte 0xff at column 1); save the file as UTF-8"},
        {"line": 5, "message": "expected a JSON object, got list"},
        {"line": 6, "message": "field 'question' must be a non-empty string"},
        {"line": 7, "message": "unknown status 'maybe'"},
    ]


def test_an_empty_file_is_refused(known_dataset):
    assert rejected(known_dataset, b"") == [{"line": None, "message": "the file is empty: it has no rows to import"}]
    assert rejected(known_dataset, b"\n  \n")[0]["message"].startswith("the file is empty")


def test_an_overlong_line_is_reported_without_reading_it_into_memory(known_dataset):
    huge = b'{"question": "' + b"x" * (3 * MAX_LINE_BYTES) + b'"}'
    errors = rejected(known_dataset, jsonl(seed_row("fine"), huge, seed_row("also fine")))
    assert errors == [{"line": 2, "message": f"the line is {len(huge) + 1:,} bytes long, over the limit of "
                                             f"{MAX_LINE_BYTES:,}; is this really one question?"}]


def test_one_bad_row_among_many_leaves_the_database_unchanged(known_dataset):
    rows = [seed_row(f"Refund request {i} for {'abcdefghij'[i % 10]}{i}") for i in range(5000)]
    rows.append(seed_row("Where does this go", path="Nowhere"))
    errors = rejected(known_dataset, jsonl(*rows))
    assert [e["line"] for e in errors] == [5001]


def test_missing_intents_are_created_from_their_path_when_asked(known_dataset):
    data = jsonl(seed_row("Where is my parcel", path="Customer Care -> Shipping -> Tracking"),
                 {"question": "Parcel lost", "intent_hierarchy": ["Customer Care", "Shipping", "Lost Parcel"]})
    result = questions_import(topic=known_dataset, stream=io.BytesIO(data), format="jsonl", create_intents=True)
    assert (result.created, result.intents_created) == (2, 3)
    tracking = IntentNode.objects.get(topic=known_dataset, name="Tracking")
    assert tracking.intent_numbered_path == "Customer Care -> 3 Shipping -> 3.1 Tracking"


def test_a_csv_file_reports_lines_and_imports_when_clean(known_dataset):
    bad = b'text,intent_path\n"ok, quoted",Billing -> Refunds\n"multi\nline",Billing -> Nowhere\nno intent\n'
    assert rejected(known_dataset, bad, format="csv") == [
        {"line": 4, "message": "unknown intent 'Billing -> Nowhere' in topic 'Customer Care': create it first, "
                               "or import with create_intents (API), --create-intents (manage.py import) or "
                               "Create intents (admin)"},
        {"line": 5, "message": "expected 2 columns as in the header, got 1"},
    ]
    good = "\ufefftext,label,intent_number\nRückerstattung bitte,0,1.1\n".encode()
    result = questions_import(topic=known_dataset, stream=io.BytesIO(good), format="csv")
    assert result.created == 1 and Question.objects.get(text="Rückerstattung bitte").intent.number == "1.1"


def test_an_alpaca_array_reports_the_line_of_each_record(known_dataset):
    records = [{"instruction": "Classify", "input": "Refund my order", "output": "1.1 Refunds"},
               {"instruction": "Classify", "input": "What now", "output": "9.9 Unknown"},
               {"instruction": "Classify", "output": "1.2 Invoices"}]
    data = json.dumps(records, indent=2).encode()
    errors = rejected(known_dataset, data, format="alpaca")
    assert errors == [
        {"line": 7, "message": "unknown intent '9.9 Unknown' in topic 'Customer Care': create it first, or "
                               "import with create_intents (API), --create-intents (manage.py import) or "
                               "Create intents (admin)"},
        {"line": 12, "message": "missing field 'input' (the question): found 'instruction', 'output'; accepted: "
                                "'input' (or name yours with text_column)"},
    ]
    good = json.dumps(records[:1]).encode()
    assert questions_import(topic=known_dataset, stream=io.BytesIO(good), format="alpaca").created == 1


def test_the_import_api_rejects_a_malformed_file_with_line_numbers(dataset_admin, known_dataset):
    upload = io.BytesIO(jsonl(seed_row("fine"), b"not json"))
    upload.name = "questions.jsonl"
    response = api_as(dataset_admin).post("/api/v1/imports/", {"topic": known_dataset.pk, "format": "jsonl",
                                                               "file": upload}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_file"
    assert error["message"].startswith("Nothing was imported: line 2: invalid JSON")
    assert error["details"] == {"error_count": 1, "errors": [
        {"line": 2, "message": "invalid JSON (Expecting value at column 1)"}]}


def test_the_import_api_imports_a_clean_file_for_a_dataset_admin_only(dataset_admin, reviewer, known_dataset):
    def post(user):
        upload = io.BytesIO(jsonl(seed_row("Refund for the blue shoes")))
        upload.name = "questions.jsonl"
        return api_as(user).post("/api/v1/imports/", {"topic": known_dataset.pk, "format": "jsonl", "file": upload,
                                                      "status": "approved"}, format="multipart")

    assert post(reviewer).status_code == 403
    assert post(None).status_code == 401
    response = post(dataset_admin)
    assert response.status_code == 201
    assert response.json() == {
        "rows": 1, "created": 1, "duplicates": 0, "conflicts": 0, "conflict_texts": 0, "flagged": 0,
        "intents_created": 0, "splits": {"none": 1}, "split_overridden": 0, "on_conflict": "keep_first",
        "dry_run": False, "error_count": 0, "errors": [], "conflict_details": [], "intents_to_create": []}
    assert Question.objects.get(text="Refund for the blue shoes").reviewed_by == dataset_admin
