"""Topics, the intent tree and questions through the API, persona by persona."""

import pytest

from datasets.models import Question
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def refunds(topic, make_intent):
    billing = make_intent(topic, "Billing")
    return make_intent(topic, "Refunds", parent=billing)


def test_every_endpoint_refuses_a_request_without_a_token(topic):
    for path in ["/api/v1/topics/", f"/api/v1/topics/{topic.pk}/intents/", "/api/v1/questions/", "/api/v1/exports/",
                 "/api/v1/labeling/export"]:
        response = api_as(None).get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"


def test_a_reviewer_sees_only_assigned_topics_and_an_admin_sees_all(reviewer, other_reviewer, dataset_admin, topic,
                                                                    make_topic):
    make_topic("Elsewhere")
    names = lambda user: [t["name"] for t in api_as(user).get("/api/v1/topics/").json()["results"]]  # noqa: E731
    assert names(reviewer) == ["Customer Support"]
    assert names(other_reviewer) == []
    assert names(dataset_admin) == ["Customer Support", "Elsewhere"]


def test_only_a_dataset_admin_creates_topics_and_intents(reviewer, dataset_admin, topic):
    assert api_as(reviewer).post("/api/v1/topics/", {"name": "Mine"}, format="json").status_code == 403
    created = api_as(dataset_admin).post("/api/v1/topics/", {"name": "Travel"}, format="json")
    assert created.status_code == 201 and created.json()["name"] == "Travel"
    path = f"/api/v1/topics/{topic.pk}/intents/"
    assert api_as(reviewer).post(path, {"name": "Billing"}, format="json").status_code == 403
    root = api_as(dataset_admin).post(path, {"name": "Billing"}, format="json").json()
    child = api_as(dataset_admin).post(path, {"name": "Refunds", "parent": root["id"]}, format="json").json()
    assert (root["number"], child["number"], child["intent_path"]) == ("1", "1.1", "Customer Support -> Billing -> Refunds")
    duplicate = api_as(dataset_admin).post(path, {"name": "billing"}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "duplicate"


def test_the_intent_tree_nests_children_with_their_counts(reviewer, topic, refunds, make_question):
    make_question(refunds, "Money back", status=Question.Status.APPROVED)
    tree = api_as(reviewer).get(f"/api/v1/topics/{topic.pk}/intents/").json()
    assert [(n["number"], n["name"], n["is_leaf"]) for n in tree] == [("1", "Billing", False)]
    assert tree[0]["children"][0] | {"id": 0} == {
        "id": 0, "number": "1.1", "name": "Refunds", "intent_full_name": "1.1 Refunds",
        "intent_path": "Customer Support -> Billing -> Refunds", "depth": 2, "is_leaf": True,
        "counts": {"approved": 1}, "children": []}


def test_a_reviewer_cannot_read_the_tree_of_a_topic_not_assigned(other_reviewer, topic, refunds):
    assert api_as(other_reviewer).get(f"/api/v1/topics/{topic.pk}/intents/").status_code == 404


def test_questions_filter_by_status_intent_subtree_and_search(dataset_admin, topic, refunds, make_intent,
                                                              make_question):
    other = make_intent(topic, "Account")
    make_question(refunds, "Money back please", status=Question.Status.APPROVED)
    make_question(refunds, "Refund my shoes")
    make_question(other, "Close my account", status=Question.Status.APPROVED)
    client = api_as(dataset_admin)

    def texts(query):
        return sorted(q["text"] for q in client.get(f"/api/v1/questions/?{query}").json()["results"])

    assert texts(f"topic={topic.pk}&status=approved") == ["Close my account", "Money back please"]
    assert texts(f"intent={refunds.parent_id}") == ["Money back please", "Refund my shoes"]
    assert texts("search=SHOES") == ["Refund my shoes"]
    assert texts("status=approved,pending&search=my") == ["Close my account", "Refund my shoes"]
    for query in ["status=maybe", "topic=abc", "topic=%C2%B2", "intent=99999999999999999999"]:
        bad = client.get(f"/api/v1/questions/?{query}")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter", query


def test_questions_are_paginated(dataset_admin, refunds, make_question):
    for number in range(55):
        make_question(refunds, f"Refund question {'abcdefghijklmnopqrstuvwxyz'[number % 26]} {number}")
    page = api_as(dataset_admin).get("/api/v1/questions/").json()
    assert page["count"] == 55 and len(page["results"]) == 50 and page["next"].endswith("page=2")


def test_a_reviewer_reads_only_questions_of_assigned_topics(reviewer, other_reviewer, refunds, make_question):
    question = make_question(refunds, "Money back")
    assert api_as(reviewer).get(f"/api/v1/questions/{question.pk}/").status_code == 200
    assert api_as(other_reviewer).get(f"/api/v1/questions/{question.pk}/").status_code == 404
    assert api_as(other_reviewer).get("/api/v1/questions/").json()["count"] == 0


def test_a_dataset_admin_creates_one_question_or_many(dataset_admin, reviewer, topic, refunds):
    client = api_as(dataset_admin)
    one = client.post("/api/v1/questions/", {"topic": topic.pk, "intent": refunds.pk, "text": "Refund me"},
                      format="json")
    assert one.status_code == 201 and one.json()["status"] == "pending" and one.json()["source"] == "manual"
    again = client.post("/api/v1/questions/", {"topic": topic.pk, "intent": refunds.pk, "text": "refund ME!"},
                        format="json")
    assert again.status_code == 409
    bulk = client.post("/api/v1/questions/bulk/", {"topic": topic.pk, "questions": [
        {"intent": refunds.pk, "text": "Give my money back", "status": "approved"},
        {"intent": refunds.pk, "text": "give my money back"},
        {"intent": refunds.pk, "text": "Refund me"},
    ]}, format="json")
    assert bulk.status_code == 201 and bulk.json() == {"created": 1, "duplicates": 2}
    assert api_as(reviewer).post("/api/v1/questions/bulk/", {"topic": topic.pk, "questions": []},
                                 format="json").status_code == 403


def test_bulk_create_refuses_an_intent_of_another_topic_and_writes_nothing(dataset_admin, topic, refunds,
                                                                           make_topic, make_intent):
    stranger = make_intent(make_topic("Other"), "Stranger")
    response = api_as(dataset_admin).post("/api/v1/questions/bulk/", {"topic": topic.pk, "questions": [
        {"intent": refunds.pk, "text": "fine"}, {"intent": stranger.pk, "text": "wrong topic"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"row": 1}
    assert not Question.objects.exists()
