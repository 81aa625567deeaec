import pytest
from django.db import IntegrityError, transaction

from datasets.models import Question
from datasets.normalize import normalize_text, text_hash
from datasets.services import question_bulk_create


def test_normalization_folds_case_whitespace_and_punctuation():
    assert normalize_text("  Reset   my PASSWORD!? ") == "reset my password"
    assert text_hash("Reset my password!") == text_hash("reset my  password")
    assert text_hash("reset my password") != text_hash("reset my passwords")


def test_it_rejects_a_duplicate_normalized_question_in_a_topic(topic, make_intent, make_question):
    intent = make_intent(topic, "Password Reset")
    make_question(intent, "How do I reset my password?")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_question(intent, "how do i reset my password")


def test_the_same_question_may_exist_in_two_topics(make_topic, make_intent, make_question):
    for topic in (make_topic(), make_topic()):
        make_question(make_intent(topic, "Reset"), "How do I reset my password?")
    assert Question.objects.count() == 2


def test_bulk_create_skips_duplicates_within_rows_and_against_the_topic(topic, make_intent, make_question):
    intent = make_intent(topic)
    make_question(intent, "Where is my order?")
    rows = [dict(text=t, intent=intent) for t in ["where is my order", "Cancel it", "cancel it!", "New one"]]
    result = question_bulk_create(topic=topic, rows=rows)
    assert (result.created, result.duplicates) == (2, 2)
    assert sorted(Question.objects.values_list("text", flat=True)) == ["Cancel it", "New one", "Where is my order?"]


def test_confidence_must_be_a_probability(topic, make_intent, make_question):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_question(make_intent(topic), confidence=1.5)
