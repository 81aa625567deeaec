"""A topic set to leaf intents only refuses a relabel to an intent with sub-intents, everywhere."""

import pytest
from django.urls import reverse

from datasets.models import Question, ReviewEvent
from datasets.services import DatasetError
from labeling.services import question_review, questions_review_matching

MESSAGE = ("Intent 1 Billing has sub-intents and Customer Support labels questions with leaf intents only: "
           "choose one of its sub-intents.")


def test_a_single_relabel_to_a_parent_intent_is_refused(reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    with pytest.raises(DatasetError) as refused:
        question_review(question_id=question.pk, actor=reviewer, action="relabel", intent_id=taxonomy["billing"].pk)
    assert refused.value.message == MESSAGE
    question.refresh_from_db()
    assert (question.intent, question.version) == (taxonomy["refunds"], 1)
    assert not ReviewEvent.objects.exists()


def test_a_bulk_relabel_to_a_parent_intent_is_refused(reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    with pytest.raises(DatasetError) as refused:
        questions_review_matching(queryset=Question.objects.filter(pk=question.pk), actor=reviewer,
                                  action="relabel", intent_id=taxonomy["billing"].pk)
    assert refused.value.message == MESSAGE
    assert Question.objects.get(pk=question.pk).intent == taxonomy["refunds"]


def test_the_review_api_refuses_a_parent_intent(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    response = api(reviewer).post(reverse("api-question-review", args=[question.pk]),
                                  {"action": "relabel", "intent": taxonomy["billing"].pk, "version": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == MESSAGE


def test_a_topic_that_labels_with_any_intent_accepts_a_parent(reviewer, topic, taxonomy, make_question):
    topic.leaf_only = False
    topic.save()
    question = make_question(taxonomy["refunds"])
    question = question_review(question_id=question.pk, actor=reviewer, action="relabel",
                               intent_id=taxonomy["billing"].pk)
    assert (question.intent, question.status) == (taxonomy["billing"], "relabeled")
