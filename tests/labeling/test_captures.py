"""POST /api/v1/labeling/captures/: production queries the deployed model was unsure about."""

import pytest
from django.urls import reverse

from datasets.models import QUESTION_TEXT_MAX_CHARS, Question
from labeling.services import question_lease_next

URL = "/api/v1/labeling/captures/"


def capture(topic, text, confidence, intent="1.1", **extra):
    return {"topic": topic.pk, "text": text, "predicted_intent": intent, "confidence": confidence, **extra}


def test_the_url_is_the_documented_one():
    assert reverse("api-captures") == URL


def test_a_low_confidence_capture_enters_the_review_queue(token_client, capture_client, topic, taxonomy):
    response = token_client(capture_client).post(URL, capture(topic, "where is my refund", 0.31), format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["queued"], body["repeat"], body["counted"], body["known"]) == (1, 0, 0, 0)
    question = Question.objects.get(pk=body["results"][0]["question"])
    assert (question.source, question.status, question.confidence, question.occurrences) == (
        "captured", "pending", 0.31, 1)
    assert question.intent == question.predicted_intent == taxonomy["refunds"]


def test_a_confident_capture_is_counted_but_not_queued(token_client, capture_client, topic, taxonomy):
    response = token_client(capture_client).post(URL, capture(topic, "reset my password", 0.7, "2.1"), format="json")
    assert response.status_code == 201
    assert response.json()["results"] == [{"outcome": "counted", "question": None, "occurrences": None,
                                           "confidence": 0.7}]
    assert not Question.objects.exists()


def test_an_exact_repeat_increments_the_counter_and_keeps_the_lowest_confidence(
        token_client, capture_client, topic, taxonomy):
    client = token_client(capture_client)
    client.post(URL, capture(topic, "Where is my refund?", 0.4), format="json")
    response = client.post(URL, [capture(topic, "where is my REFUND", 0.2), capture(topic, "where is my refund!!", 0.5)],
                           format="json")
    assert [r["outcome"] for r in response.json()["results"]] == ["repeat", "repeat"]
    question = Question.objects.get()
    assert (question.occurrences, question.confidence, question.text) == (3, 0.2, "Where is my refund?")


def test_a_capture_of_a_question_the_topic_already_has_is_reported_as_known(
        token_client, capture_client, topic, taxonomy, make_question):
    existing = make_question(taxonomy["refunds"], "Where is my refund?", status="approved")
    response = token_client(capture_client).post(URL, capture(topic, "where is my refund", 0.1), format="json")
    assert response.json()["results"][0] == {"outcome": "known", "question": existing.pk, "occurrences": 1,
                                             "confidence": None}
    assert Question.objects.count() == 1


def test_captures_head_the_queue_lowest_confidence_first(
        token_client, capture_client, reviewer, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "generated before any capture")
    token_client(capture_client).post(URL, [capture(topic, "maybe refund", 0.55), capture(topic, "no idea", 0.05),
                                            capture(topic, "refund??", 0.3)], format="json")
    first = question_lease_next(topic=topic, actor=reviewer)
    assert (first.text, first.confidence) == ("no idea", 0.05)


def test_the_predicted_intent_may_be_given_by_id(token_client, capture_client, topic, taxonomy):
    response = token_client(capture_client).post(
        URL, capture(topic, "lost my password", 0.1, taxonomy["password"].pk), format="json")
    assert Question.objects.get(pk=response.json()["results"][0]["question"]).intent == taxonomy["password"]


def test_a_batch_with_one_bad_item_records_nothing_and_names_the_item(token_client, capture_client, topic, taxonomy):
    batch = [capture(topic, "fine one", 0.1), capture(topic, "bad confidence", 1.5), capture(topic, "bad intent", 0.1, "9.9")]
    response = token_client(capture_client).post(URL, batch, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]["items"]) == {"1", "2"}
    assert "confidence" in error["details"]["items"]["1"]
    assert "no intent '9.9'" in error["details"]["items"]["2"]["predicted_intent"][0]
    assert not Question.objects.exists()


def test_it_rejects_an_intent_of_another_topic(token_client, capture_client, topic, taxonomy, make_topic, make_intent):
    elsewhere = make_intent(make_topic(), "Elsewhere")
    response = token_client(capture_client).post(URL, capture(topic, "hello", 0.1, elsewhere.pk), format="json")
    assert response.status_code == 400
    assert "predicted_intent" in response.json()["error"]["details"]["items"]["0"]


def test_it_rejects_an_empty_batch(token_client, capture_client):
    response = token_client(capture_client).post(URL, [], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The batch is empty."


def test_a_capture_may_name_its_language_but_only_a_known_one(token_client, capture_client, topic, taxonomy):
    client = token_client(capture_client)
    response = client.post(URL, capture(topic, "wo ist meine Erstattung", 0.1, language="de"), format="json")
    assert Question.objects.get(pk=response.json()["results"][0]["question"]).language == "de"
    response = client.post(URL, capture(topic, "hello there", 0.1, language="klingon"), format="json")
    assert response.status_code == 400
    assert "language" in response.json()["error"]["details"]["items"]["0"]


@pytest.mark.parametrize("confidence", [True, False, "١", "nan"])
def test_a_confidence_that_is_not_a_number_is_refused(token_client, capture_client, topic, taxonomy, confidence):
    response = token_client(capture_client).post(URL, capture(topic, "where is my refund", confidence), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"items": {"0": {"confidence": ["A valid number is required."]}}}
    assert not Question.objects.exists()


@pytest.mark.parametrize("intent", ["1.1\x00", "\x00"])
def test_a_nul_byte_in_the_predicted_intent_is_a_400(token_client, capture_client, topic, taxonomy, intent):
    response = token_client(capture_client).post(URL, capture(topic, "where is my refund", 0.2, intent), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"items": {"0": {"predicted_intent": [
        "Text cannot contain NUL bytes (\\x00): found one in predicted_intent."]}}}
    assert not Question.objects.exists()


def test_the_topic_and_intent_ids_are_ascii_digits(token_client, capture_client, topic, taxonomy):
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    client = token_client(capture_client)
    body = {**capture(topic, "where is my refund", 0.2, taxonomy["refunds"].pk), "topic": str(topic.pk).translate(arabic)}
    response = client.post(URL, body, format="json")
    assert response.json()["error"]["details"] == {"items": {"0": {"topic": [
        "Incorrect type. Expected pk value, received str."]}}}
    response = client.post(URL, capture(topic, "where is my refund", 0.2, True), format="json")
    assert response.status_code == 400
    assert not Question.objects.exists()


def test_captured_text_has_the_same_limit_as_every_question(token_client, capture_client, topic, taxonomy):
    client = token_client(capture_client)
    longest = "refund " * (QUESTION_TEXT_MAX_CHARS // 7) + "x" * (QUESTION_TEXT_MAX_CHARS % 7)
    assert len(longest) == QUESTION_TEXT_MAX_CHARS
    assert client.post(URL, capture(topic, longest, 0.2), format="json").json()["queued"] == 1
    response = client.post(URL, capture(topic, longest + "y", 0.2), format="json")
    assert response.json()["error"]["details"] == {"items": {"0": {"text": [
        f"Ensure this field has no more than {QUESTION_TEXT_MAX_CHARS} characters."]}}}
    assert Question.objects.get().text == longest


def test_an_unknown_field_of_a_capture_is_named(token_client, capture_client, topic, taxonomy):
    response = token_client(capture_client).post(URL, capture(topic, "where is my refund", 0.2, score=0.2),
                                                 format="json")
    assert response.json()["error"]["details"] == {"items": {"0": {"score": [
        "Unknown field. Accepted fields: topic, text, predicted_intent, confidence, language."]}}}
    assert not Question.objects.exists()
