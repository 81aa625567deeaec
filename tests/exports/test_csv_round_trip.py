"""An exported CSV imports into another topic as the same intent tree: the source topic that
leads every intent_path is not taken for a root intent."""

import io

import pytest

from datasets.exports import export_stream
from datasets.imports import questions_import
from datasets.models import IntentNode, Question
from datasets.selectors import export_questions

pytestmark = pytest.mark.django_db


def tree(topic) -> list[tuple[str, str]]:
    return list(IntentNode.objects.filter(topic=topic).order_by("sort_key").values_list("number", "name"))


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_an_exported_file_imported_into_another_topic_rebuilds_the_same_tree(known_dataset, make_topic, format):
    exported = "".join(export_stream(questions=export_questions(topic=known_dataset), format=format))
    target = make_topic("Support Desk")
    report = questions_import(topic=target, stream=io.BytesIO(exported.encode()), format=format, create_intents=True)
    assert (report.created, report.error_count) == (9, 0)
    assert tree(target) == tree(known_dataset) == [
        ("1", "Billing"), ("1.1", "Refunds"), ("1.2", "Invoices"), ("2", "Account"), ("2.1", "Reset Password")]
    assert not IntentNode.objects.filter(topic=target, name="Customer Care").exists()
    moved = dict(Question.objects.filter(topic=target).values_list("text", "intent__number"))
    assert moved["Rechnung für März bitte"] == "1.2"
    assert moved["Delete my account | close it"] == "2"


def test_a_path_without_the_topic_keeps_every_level_even_with_a_number(make_topic):
    target = make_topic("Billing")  # named like the file's first level: the number says it is an intent
    data = b"text,intent_path,intent_number\nMoney back please,Billing -> Refunds,1.1\n"
    questions_import(topic=target, stream=io.BytesIO(data), format="csv", create_intents=True)
    assert tree(target) == [("1", "Billing"), ("1.1", "Refunds")]
