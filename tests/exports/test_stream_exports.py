"""export_stream (the streaming API's and the admin's export) reads the intents, the labels and the
rows in one snapshot: intents that appear while a download starts never break it half-way."""

import json
import threading

import pytest
from django.db import connection

import datasets.exports
from datasets.exports import export_stream
from datasets.models import IntentNode, Question
from datasets.services import intent_create


def exportable(topic):
    return Question.objects.filter(topic=topic, status__in=["approved", "relabeled"])


def rows_of(chunks) -> list[tuple[str, str, int]]:
    return [(r["question"], r["intent_full_name"], r["label"]) for r in map(json.loads, "".join(chunks).splitlines())]


KNOWN_ROWS = [
    ("I want my money back", "1.1 Refunds", 0),
    ("How do I get a refund for order #1234?", "1.1 Refunds", 0),
    ("Refund please, the item arrived broken", "1.1 Refunds", 0),
    ('Where is my "invoice" for March?', "1.2 Invoices", 1),
    ("Send me a copy of the bill, with VAT: 20%", "1.2 Invoices", 1),
    ("Rechnung für März bitte", "1.2 Invoices", 1),
    ("Delete my account | close it", "2 Account", 2),
    ("I forgot my password", "2.1 Reset Password", 3),
    ("reset password\nnow", "2.1 Reset Password", 3),
]


@pytest.mark.django_db
def test_intents_added_or_first_approved_after_the_call_are_in_the_stream(known_dataset, make_intent, make_question):
    chunks = export_stream(questions=exportable(known_dataset), format="jsonl")
    # Between the call and the first chunk (a streaming response reads it later): a new intent
    # with an approved question, and the first approved question of an intent that had none.
    make_question(make_intent(known_dataset, "Shipping"), "Where is my parcel", status="approved")
    make_question(IntentNode.objects.get(topic=known_dataset, name="Billing"), "Billing in general",
                  status="approved")
    assert rows_of(chunks) == [
        ("Billing in general", "1 Billing", 0),
        *[(text, name, label + 1) for text, name, label in KNOWN_ROWS],
        ("Where is my parcel", "3 Shipping", 5),
    ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_intent_committed_between_the_labels_and_the_cursor_is_not_half_seen(known_dataset, monkeypatch):
    """Another connection commits a new intent and its approved question after the labels were
    read and before the rows' cursor opens: the snapshot leaves both out, and the file is whole."""
    open_rows = datasets.exports._rows

    def commit_elsewhere():
        try:
            shipping = intent_create(topic=known_dataset, parent=None, name="Shipping")
            Question.objects.create(topic=known_dataset, intent=shipping, text="Where is my parcel",
                                    status="approved")
        finally:
            connection.close()

    def rows_after_a_concurrent_commit(questions):
        writer = threading.Thread(target=commit_elsewhere)
        writer.start()
        writer.join()
        return open_rows(questions)

    monkeypatch.setattr(datasets.exports, "_rows", rows_after_a_concurrent_commit)
    assert rows_of(export_stream(questions=exportable(known_dataset), format="jsonl")) == KNOWN_ROWS
    assert Question.objects.filter(text="Where is my parcel", intent__name="Shipping").exists()  # it did commit
