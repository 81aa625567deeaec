"""Likely label errors in the review tools: sent back to review, served first, shown, filtered."""

import pytest
from django.test import Client
from django.urls import reverse

from datasets.models import Question, ReviewEvent
from evaluation.models import LabelIssue
from evaluation.services import evaluation_create, evaluation_run, label_issues_send_to_review
from tests.api.clients import api_as


@pytest.fixture
def flipped(topic, small_topic):
    """Two refund questions labelled Reset Password, and an evaluation that found them."""
    texts = ["I need a refund", "how do I get a money back"]
    Question.objects.filter(topic=topic, text__in=texts).update(intent=small_topic["Reset Password"])
    evaluation = evaluation_create(topic=topic, enqueue=False, learning_curve=False)
    evaluation_run(evaluation_id=evaluation.pk)
    ranked = list(LabelIssue.objects.filter(evaluation=evaluation).order_by("rank").values_list("question__text", flat=True))
    assert set(ranked[:2]) == set(texts)
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
