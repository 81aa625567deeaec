"""The import endpoint end to end: a bad file answers 400 in the error shape, every problem with its
line number, and the database is left as it was."""

import io
import json

import pytest

from datasets.models import IntentNode, Question
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


def post_import(user, topic, data: bytes, format="jsonl", **fields):
    upload = io.BytesIO(data)
    upload.name = f"questions.{format}"
    return api_as(user).post("/api/v1/imports/", {"topic": topic.pk, "format": format, "file": upload, **fields},
                             format="multipart")


def refused(user, topic, data: bytes, format="jsonl", **fields) -> dict:
    before = Question.objects.count(), IntentNode.objects.count()
    response = post_import(user, topic, data, format, **fields)
    assert response.status_code == 400, response.content[:500]
    assert (Question.objects.count(), IntentNode.objects.count()) == before, "a refused import wrote something"
    error = response.json()["error"]
    assert error["code"] == "invalid_file"
    return error


def nul(field):
    return f"field {field!r} contains a NUL character (U+0000) at character 2, which cannot be stored; remove it"


@pytest.mark.parametrize("format, data, line, field", [
    ("jsonl", b'{"question": "fine one", "intent_number": "1.1"}\n'
              b'{"question": "a\\u0000b", "intent_number": "1.1"}\n', 2, "question"),
    ("csv", b"question,intent_number\nfine one,1.1\na\x00b,1.1\n", 3, "question"),
    ("alpaca", b'[\n  {"instruction": "Classify", "input": "fine one", "output": "1.1 Refunds"},\n'
               b'  {"instruction": "Classify", "input": "a\\u0000b", "output": "1.1 Refunds"}\n]\n', 3, "input"),
])
def test_a_nul_character_is_a_problem_of_its_line_in_every_format(dataset_admin, known_dataset, format, data, line,
                                                                  field):
    error = refused(dataset_admin, known_dataset, data, format)
    assert error["details"] == {"error_count": 1, "errors": [{"line": line, "message": nul(field)}]}
    assert error["message"] == f"Nothing was imported: line {line}: {nul(field)}."


def test_a_lone_surrogate_or_a_nul_in_an_intent_path_is_refused_too(dataset_admin, known_dataset):
    data = (b'{"question": "half an emoji \\ud83d", "intent_number": "1.1"}\n'
            b'{"question": "new intent", "intent_path": "Billing -> Re\\u0000funds 2"}\n')
    error = refused(dataset_admin, known_dataset, data, create_intents="true")
    assert error["details"]["errors"] == [
        {"line": 1, "message": "field 'question' contains a lone surrogate (U+D83D) at character 15, which cannot "
                               "be stored; remove it"},
        {"line": 2, "message": "field 'intent' contains a NUL character (U+0000) at character 14, which cannot "
                               "be stored; remove it"},
    ]


def test_a_file_in_another_encoding_is_refused_with_the_lines_to_fix(dataset_admin, known_dataset):
    rows = ["Remboursement de ma commande", "Où est ma facture ?", "Je veux être remboursé"]
    data = "".join(json.dumps({"question": r, "intent_number": "1.1"}, ensure_ascii=False) + "\n"
                   for r in rows).encode("latin-1")
    error = refused(dataset_admin, known_dataset, data)
    assert error["details"] == {"error_count": 2, "errors": [
        {"line": 2, "message": "not UTF-8 (byte 0xf9 at column 16); save the file as UTF-8"},
        {"line": 3, "message": "not UTF-8 (byte 0xea at column 23); save the file as UTF-8"},
    ]}
    assert error["message"] == ("Nothing was imported: line 2: not UTF-8 (byte 0xf9 at column 16); save the file "
                                "as UTF-8 (and 1 more problem).")


@pytest.mark.parametrize("data", [b"", b"\n \n\n"])
def test_an_empty_file_is_refused_without_a_line_number(dataset_admin, known_dataset, data):
    error = refused(dataset_admin, known_dataset, data)
    assert error == {"code": "invalid_file",
                     "message": "Nothing was imported: the file is empty: it has no rows to import.",
                     "details": {"error_count": 1,
                                 "errors": [{"line": None, "message": "the file is empty: it has no rows to import"}]}}
