"""A small topic a baseline can learn: two parents, five leaf intents, 24 approved questions each."""

import itertools

import pytest

from datasets.models import Question

# Each leaf: its own words; every question is one of them in one of the frames, so the word bags differ.
LEAVES = {
    ("Billing", "Refunds"): ["refund", "money back", "reimbursement"],
    ("Billing", "Invoices"): ["invoice", "receipt", "bill copy"],
    ("Billing", "Card Declined"): ["card declined", "payment rejected", "card refused"],
    ("Account", "Reset Password"): ["reset password", "forgot password", "new password"],
    ("Account", "Delete Account"): ["delete account", "close account", "remove profile"],
}
FRAMES = ["I need a {}", "how do I get a {}", "please help with {} today", "can you sort out {} for me",
          "question about {} again", "where is my {} now", "help me with {} quickly", "{} is what I want"]


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    return settings.EXPORT_ROOT


@pytest.fixture
def small_topic(topic, make_intent):
    """`topic` (Customer Support) with 5 leaves x 24 approved questions; returns {leaf name: intent}."""
    parents, leaves = {}, {}
    rows = []
    for (parent, leaf), words in LEAVES.items():
        if parent not in parents:
            parents[parent] = make_intent(topic, parent)
        leaves[leaf] = make_intent(topic, leaf, parent=parents[parent])
        for word, frame in itertools.product(words, FRAMES):
            rows.append(Question(topic=topic, intent=leaves[leaf], text=frame.format(word),
                                 status=Question.Status.APPROVED, source=Question.Source.GENERATED))
    for row in rows:
        row.save()
    return leaves
