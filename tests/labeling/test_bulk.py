"""Bulk review from the list: what changes, what is left alone, what is refused."""

import contextlib
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.urls import reverse

from datasets.models import Question, ReviewEvent
from labeling import services
from labeling.selectors import QuestionFilter, questions_filtered
from labeling.services import question_review, questions_review_matching


@pytest.fixture
def decided_meanwhile(monkeypatch):
    """Make `decide()` happen after the bulk listed its questions and before it locked them.

    The bulk lists ids before its transaction opens; the call runs at that moment, as another
    reviewer's request committing in between would.
    """

    def install(decide):
        real_atomic = transaction.atomic
        pending = [decide]

        @contextlib.contextmanager
        def atomic_after_someone_decided(*args, **kwargs):
            if pending:
                pending.pop()()  # once: the decision itself opens transactions too
            with real_atomic(*args, **kwargs):
                yield

        # Only labeling.services sees the patched module; everything else keeps Django's.
        monkeypatch.setattr(services, "transaction", SimpleNamespace(atomic=atomic_after_someone_decided))

    return install


def test_a_bulk_of_pending_questions_skips_one_decided_meanwhile(
        reviewer, dataset_admin, topic, taxonomy, make_question, decided_meanwhile):
    questions = [make_question(taxonomy["refunds"], f"refund {n}") for n in range(3)]
    pending = questions_filtered(topic=topic, question_filter=QuestionFilter.from_params({"status": "pending"}))
    decided_meanwhile(lambda: question_review(question_id=questions[1].pk, actor=dataset_admin, action="approve"))

    result = questions_review_matching(queryset=pending, actor=reviewer, action="reject")

    assert (result.changed, result.skipped) == (2, 1)
    assert [Question.objects.get(pk=q.pk).status for q in questions] == ["rejected", "approved", "rejected"]
    assert Question.objects.get(pk=questions[1].pk).reviewed_by == dataset_admin
    assert list(ReviewEvent.objects.filter(question=questions[1]).values_list("action", flat=True)) == ["approve"]


def test_a_bulk_without_a_status_filter_skips_a_question_whose_version_moved_on(
        reviewer, dataset_admin, topic, taxonomy, make_question, decided_meanwhile):
    first = make_question(taxonomy["refunds"], "refund one")
    second = make_question(taxonomy["refunds"], "refund two")
    everything = Question.objects.filter(pk__in=[first.pk, second.pk])
    decided_meanwhile(lambda: question_review(question_id=second.pk, actor=dataset_admin, action="flag"))

    result = questions_review_matching(queryset=everything, actor=reviewer, action="approve")

    assert (result.changed, result.skipped) == (1, 1)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.version) == ("approved", 2)
    assert (second.status, second.reviewed_by, second.version) == ("flagged", dataset_admin, 2)


def test_the_list_says_how_many_questions_were_left_alone(
        client, reviewer, dataset_admin, topic, taxonomy, make_question, decided_meanwhile):
    first = make_question(taxonomy["refunds"], "refund one")
    second = make_question(taxonomy["refunds"], "refund two")
    decided_meanwhile(lambda: question_review(question_id=first.pk, actor=dataset_admin, action="approve"))
    client.force_login(reviewer)
    response = client.post(reverse("labeling:questions", args=[topic.pk]),
                            {"status": "pending", "action": "reject", "scope": "selected",
                             "ids": [first.pk, second.pk]}, follow=True)
    page = response.content.decode()
    assert "Reject: 1 question(s)." in page
    assert "1 question(s) were left alone: someone else changed them meanwhile" in page
    assert list(Question.objects.order_by("pk").values_list("status", flat=True)) == ["approved", "rejected"]


def test_bulk_ids_of_another_topic_are_refused_and_nothing_changes(
        client, reviewer, topic, taxonomy, make_question, make_topic, make_intent):
    mine = make_question(taxonomy["refunds"], "refund me")
    elsewhere = make_question(make_intent(make_topic("Elsewhere"), "Travel"), "Book me a flight")
    client.force_login(reviewer)
    response = client.post(reverse("labeling:questions", args=[topic.pk]),
                           {"action": "approve", "scope": "selected", "ids": [mine.pk, elsewhere.pk]}, follow=True)
    assert f"Question(s) {elsewhere.pk} are not in topic {topic.name}; nothing was changed." in response.content.decode()
    assert Question.objects.get(pk=mine.pk).status == "pending"
    assert Question.objects.get(pk=elsewhere.pk).status == "pending"
    assert not ReviewEvent.objects.exists()
