"""A small topic a baseline can learn: two parents, five leaf intents, 24 approved questions each.

`small_topic` builds it inside a test; `evaluated_small_topic` builds it once for a whole module,
with one finished evaluation, for the tests that only read an evaluation (training one takes
seconds, and the permission matrix reads it dozens of times).
"""

import itertools
from contextlib import contextmanager

import pytest
from django.test import override_settings

from datasets.models import Question, Topic
from datasets.services import intent_create
from tests.object_store import bucket, s3_server  # noqa: F401 - fixtures of the object-store tests

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
def fast_password_hasher(settings):
    """The personas' passwords hashed with MD5 here: the default PBKDF2 takes seconds per user on a busy
    machine, and the permission matrix creates three users per case. Only a test setting."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    return settings.EXPORT_ROOT


def small_topic_build(topic: Topic) -> dict:
    """5 leaves x 24 approved questions under `topic`; returns {leaf name: intent}."""
    parents, leaves = {}, {}
    for (parent, leaf), words in LEAVES.items():
        if parent not in parents:
            parents[parent] = intent_create(topic=topic, name=parent)
        leaves[leaf] = intent_create(topic=topic, parent=parents[parent], name=leaf)
        for word, frame in itertools.product(words, FRAMES):
            Question(topic=topic, intent=leaves[leaf], text=frame.format(word), status=Question.Status.APPROVED,
                     source=Question.Source.GENERATED).save()
    return leaves


@pytest.fixture
def small_topic(topic):
    """`topic` (Customer Support) with 5 leaves x 24 approved questions; returns {leaf name: intent}."""
    return small_topic_build(topic)


@contextmanager
def evaluated_small_topic(django_db_blocker, export_root, *, prepare=None, **options):
    """Yield (topic, leaves, evaluation): the small topic and one finished evaluation of it, committed
    outside any test's transaction (for a module-scoped fixture) and deleted afterwards.
    `prepare(topic, leaves)` changes the data before the evaluation runs; `options` go to evaluation_create."""
    from evaluation.services import evaluation_create, evaluation_run

    with django_db_blocker.unblock(), override_settings(EXPORT_ROOT=export_root):
        topic = Topic.objects.create(name="Customer Support")
        leaves = small_topic_build(topic)
        if prepare is not None:
            prepare(topic, leaves)
        evaluation = evaluation_create(topic=topic, enqueue=False, **options)
        evaluation_run(evaluation_id=evaluation.pk)
        evaluation.refresh_from_db()
    try:
        assert evaluation.status == "succeeded", evaluation.error
        yield topic, leaves, evaluation
    finally:
        with django_db_blocker.unblock():
            from evaluation.models import Evaluation

            Evaluation.objects.filter(topic=topic).delete()
            Question.objects.filter(topic=topic).delete()  # before the intents they PROTECT
            Topic.objects.filter(pk=topic.pk).delete()
