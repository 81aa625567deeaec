"""A small known dataset (the golden files are its exports) and an export folder per test."""

from datetime import UTC, datetime, timedelta

import pytest

from datasets.models import Question
from tests.object_store import bucket, s3_server  # noqa: F401 - fixtures of the object-store tests

# (intent path, text, status, source); ids are fixed so exact output is stable across runs.
KNOWN_QUESTIONS = [
    ("Billing -> Refunds", "I want my money back", "approved", "generated"),
    ("Billing -> Refunds", "How do I get a refund for order #1234?", "approved", "generated"),
    ("Billing -> Refunds", "Refund please, the item arrived broken", "relabeled", "captured"),
    ("Billing -> Refunds", "Can I return this?", "rejected", "generated"),
    ("Billing -> Invoices", 'Where is my "invoice" for March?', "approved", "imported"),
    ("Billing -> Invoices", "Send me a copy of the bill, with VAT: 20%", "approved", "manual"),
    ("Billing -> Invoices", "Rechnung für März bitte", "approved", "generated"),
    ("Account -> Reset Password", "I forgot my password", "approved", "generated"),
    ("Account -> Reset Password", "reset password\nnow", "approved", "generated"),
    ("Account -> Reset Password", "The login page says my password is wrong", "pending", "generated"),
    ("Account", "Delete my account | close it", "approved", "manual"),
]


@pytest.fixture
def known_dataset(db, make_topic, make_intent):
    """Customer Care: Billing (Refunds, Invoices), Account (Reset Password); 11 questions, 9 exportable (approved or relabeled)."""
    topic = make_topic("Customer Care")
    billing = make_intent(topic, "Billing")
    account = make_intent(topic, "Account")
    intents = {
        "Billing": billing,
        "Billing -> Refunds": make_intent(topic, "Refunds", parent=billing),
        "Billing -> Invoices": make_intent(topic, "Invoices", parent=billing),
        "Account": account,
        "Account -> Reset Password": make_intent(topic, "Reset Password", parent=account),
    }
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for number, (path, text, status, source) in enumerate(KNOWN_QUESTIONS):
        Question.objects.create(pk=900001 + number, topic=topic, intent=intents[path], text=text, status=status,
                                source=source, provider="local", model="teacher-1", temperature=0.7,
                                prompt_version="questions-v1")
    for number in range(len(KNOWN_QUESTIONS)):
        Question.objects.filter(pk=900001 + number).update(created_at=start + timedelta(minutes=number))
    return topic


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    return settings.EXPORT_ROOT
