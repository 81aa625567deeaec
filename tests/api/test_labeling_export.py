"""The training guide's streaming endpoint: GET /api/v1/labeling/export with a Bearer token."""

import json

import pytest

from datasets.models import Question
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(topic, make_intent, make_question):
    refunds = make_intent(topic, "Refunds")
    make_question(refunds, "Money back", status=Question.Status.APPROVED)
    make_question(refunds, "Refund the shoes", status=Question.Status.RELABELED)
    make_question(refunds, "Still pending")
    return topic


def lines(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def test_a_dataset_admin_streams_approved_questions_as_jsonl_with_a_bearer_token(dataset_admin, approved):
    response = api_as(dataset_admin, keyword="Bearer").get("/api/v1/labeling/export?format=jsonl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    rows = lines(response)
    assert [(r["question"], r["intent_path"], r["status"]) for r in rows] == [
        ("Money back", "Customer Support -> Refunds", "approved"),
        ("Refund the shoes", "Customer Support -> Refunds", "relabeled"),
    ]


def test_a_reviewers_bearer_token_is_refused(reviewer, approved):
    response = api_as(reviewer, keyword="Bearer").get("/api/v1/labeling/export?format=jsonl")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_no_token_or_a_wrong_one_gets_401(approved):
    assert api_as(None).get("/api/v1/labeling/export?format=jsonl").status_code == 401
    client = api_as(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = client.get("/api/v1/labeling/export?format=jsonl")
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_other_formats_statuses_and_topics_can_be_chosen(dataset_admin, approved, make_topic, make_intent,
                                                         make_question):
    client = api_as(dataset_admin, keyword="Bearer")
    csv = client.get(f"/api/v1/labeling/export?format=csv&topic={approved.pk}&status=pending")
    assert b"".join(csv.streaming_content).decode().splitlines()[1].startswith("Still pending,0,1 Refunds")
    second = make_topic("Second")
    make_question(make_intent(second, "Greetings"), "Hello there", status=Question.Status.APPROVED)
    both = json.loads(b"".join(client.get("/api/v1/labeling/export?format=alpaca").streaming_content))
    assert [r["output"] for r in both] == ["1 Refunds", "1 Refunds", "1 Greetings"]
    unknown = client.get("/api/v1/labeling/export?format=huggingface")
    assert unknown.status_code == 400 and "use jsonl, json, csv" in unknown.json()["error"]["message"]
