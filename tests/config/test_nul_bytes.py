"""A NUL byte in a query string or a form field is a 400 everywhere, never a PostgreSQL error and a 500.

JSON bodies are checked by the API's serializers (tests/api/test_strict_input.py)."""

import pytest
from django.urls import reverse

from datasets.models import Question, Topic
from tests.api.clients import api_as


@pytest.mark.parametrize("url", ["/api/v1/runs/?status=ok%00", "/api/v1/questions/?search=a%00b",
                                 "/api/v1/runs/?x%00=1"])
def test_the_api_answers_400_in_its_error_shape(dataset_admin, url):
    response = api_as(dataset_admin).get(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("url", ["/admin/datasets/question/?q=a%00", "/admin/distiller/distillationrun/?q=%00"])
def test_the_admin_answers_400(client, superuser, url):
    client.force_login(superuser)
    response = client.get(url)
    assert response.status_code == 400
    assert b"NUL byte" in response.content


def test_an_unknown_run_status_or_topic_is_a_400_not_an_empty_list(dataset_admin):
    client = api_as(dataset_admin)
    assert client.get("/api/v1/runs/?status=finished").json()["error"]["message"].startswith("Unknown status")
    assert client.get("/api/v1/runs/?topic=abc").json()["error"]["code"] == "invalid_parameter"
    assert client.get("/api/v1/runs/?status=succeeded").status_code == 200


def test_a_nul_byte_in_the_list_views_bulk_search_field_is_a_400_and_changes_nothing(
        client, reviewer, topic, make_intent, make_question):
    question = make_question(make_intent(topic, "Refunds"), "refund me")
    client.force_login(reviewer)
    response = client.post(reverse("labeling:questions", args=[topic.pk]),
                           {"action": "approve", "scope": "all", "search": "refund\x00"})
    assert response.status_code == 400
    assert response.content == b"The form field 'search' contains a NUL byte."
    assert Question.objects.get(pk=question.pk).status == "pending"


@pytest.mark.parametrize("field", ["_selected_action", "action", "q"])
def test_a_nul_byte_in_an_admin_form_is_a_400(client, superuser, topic, field):
    client.force_login(superuser)
    data = {"action": "delete_selected", "_selected_action": [topic.pk], "q": "x"}
    data[field] = "\x00"
    response = client.post("/admin/datasets/topic/", data)
    assert response.status_code == 400
    assert response.content == f"The form field '{field}' contains a NUL byte.".encode()
    assert Topic.objects.filter(pk=topic.pk).exists()


def test_a_nul_byte_in_a_form_encoded_api_body_is_a_400_naming_the_field(dataset_admin):
    response = api_as(dataset_admin).post("/api/v1/topics/", {"name": "Tra\x00vel"})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "message": "The request is invalid; see details.",
                                        "details": {"name": ["Text cannot contain NUL bytes (\\x00): found one in name."]}}
    assert not Topic.objects.exists()


@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_a_nul_byte_in_the_token_is_a_400_not_a_500(db, keyword):
    client = api_as(None)
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} abc\x00def")
    response = client.get("/api/v1/topics/")
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_parameter", "details": None,
                                        "message": "The request's Authorization header contains a NUL byte."}


def test_a_nul_byte_in_the_session_cookie_is_a_400_not_a_500(client, db):
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    response = client.get("/")
    assert response.status_code == 400
    assert response.content == b"The request's Cookie header contains a NUL byte."
