"""Likely label errors in the review tools: sent back to review, served first, shown, filtered.

The flipped labels and the evaluation that found them are made once for the module
(evaluated_small_topic); what each test changes is rolled back with its transaction.
"""

import pytest
from django.test import Client
from django.urls import reverse

from datasets.models import Question, ReviewEvent
from evaluation.models import LabelIssue
from evaluation.services import label_issues_send_to_review
from tests.api.clients import api_as
from tests.evaluation.conftest import evaluated_small_topic

FLIPPED_TEXTS = ["I need a refund", "how do I get a money back"]


def flip_two_refunds(topic, leaves):
    Question.objects.filter(topic=topic, text__in=FLIPPED_TEXTS).update(intent=leaves["Reset Password"])


@pytest.fixture(scope="module")
def trained(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two refund questions labelled Reset Password, and an evaluation that found them (made once)."""
    with evaluated_small_topic(django_db_blocker, tmp_path_factory.mktemp("exports"), prepare=flip_two_refunds,
                               learning_curve=False) as made:
        yield made


@pytest.fixture
def topic(trained, db):
    return trained[0]


@pytest.fixture
def small_topic(trained):
    return trained[1]


@pytest.fixture
def flipped(topic, trained):
    """The two flipped questions, the most likely label error first."""
    ranked = list(LabelIssue.objects.filter(evaluation=trained[2]).order_by("rank").values_list("question__text", flat=True))
    assert set(ranked[:2]) == set(FLIPPED_TEXTS)
    return [Question.objects.get(topic=topic, text=t) for t in ranked[:2]]


def test_the_top_ones_go_back_to_review_audited(topic, flipped, reviewer):
    result = label_issues_send_to_review(topic=topic, actor=reviewer, top=2)
    assert (result.changed, result.skipped) == (2, 0)
    assert set(Question.objects.filter(status="pending").values_list("pk", flat=True)) == {q.pk for q in flipped}
    events = ReviewEvent.objects.filter(action="reset").values_list("question_id", "actor__username", "from_status")
    assert sorted(events) == sorted((q.pk, "rita", "approved") for q in flipped)


def test_the_queue_serves_likely_label_errors_first_with_the_suggestion(topic, flipped, reviewer, small_topic):
    label_issues_send_to_review(topic=topic, actor=reviewer, top=2)
    Question.objects.filter(topic=topic, text="I need a invoice").update(status="pending")  # not a label issue
    api = api_as(reviewer)
    served = api.get(reverse("api-review-next"), {"topic": topic.pk, "label_issues": "1"}).json()
    question = served["question"]
    assert question["id"] == flipped[0].pk and served["remaining"] == 2
    assert question["label_issue"]["rank"] == 1
    assert question["label_issue"]["suggested_intent"]["id"] == small_topic["Refunds"].pk
    plain = api.get(reverse("api-review-next"), {"topic": topic.pk}).json()
    assert plain["remaining"] == 3


def test_the_list_filters_on_likely_label_errors(topic, flipped, reviewer):
    client = Client()
    client.force_login(reviewer)
    page = client.get(reverse("labeling:questions", args=[topic.pk]), {"label_issues": "1"})
    listed = {q.pk for q in page.context["page"].object_list}
    assert listed == set(LabelIssue.objects.values_list("question_id", flat=True)) and listed >= {q.pk for q in flipped}
