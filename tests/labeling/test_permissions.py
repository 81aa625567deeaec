"""Who may open every labeling page and call every labeling endpoint: one line per persona.

Personas (tests/conftest.py): anonymous, `otto` a reviewer of another topic, `rita` the topic's
reviewer, `dora` a dataset admin; plus `prod-bot`, a capture client.
"""

import pytest
from django.test import Client
from django.urls import reverse

from datasets.models import Question
from labeling.services import question_lease_next


@pytest.fixture
def world(topic, taxonomy, make_question, reviewer, other_reviewer, dataset_admin, capture_client):
    question = make_question(taxonomy["refunds"], "I want my money back")
    return {"question": question, "anonymous": None, "other_reviewer": other_reviewer, "reviewer": reviewer,
            "dataset_admin": dataset_admin, "capture_client": capture_client}


def page(client, user, url, method="get", data=None):
    if user is not None:
        client.force_login(user)
    response = getattr(client, method)(url, data or {})
    if response.status_code == 302:
        return "login" if "/accounts/login/" in response["Location"] else 302
    return response.status_code


def api_call(api, user, method, url, data=None):
    return getattr(api(user), method)(url, data, format="json").status_code


PAGES = ["dashboard", "review", "questions"]


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("persona, expected", [
    ("anonymous", "login"),
    ("other_reviewer", 404),
    ("reviewer", 200),
    ("dataset_admin", 200),
])
def test_topic_pages(client, world, topic, name, persona, expected):
    assert page(client, world[persona], reverse(f"labeling:{name}", args=[topic.pk])) == expected


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", "login"),
    ("other_reviewer", 404),
    ("reviewer", 200),
    ("dataset_admin", 200),
])
def test_possible_duplicates_pane(client, world, topic, persona, expected):
    url = reverse("labeling:similar", args=[topic.pk, world["question"].pk])
    assert page(client, world[persona], url) == expected


@pytest.mark.parametrize("persona, expected, lists_topic", [
    ("anonymous", "login", False),
    ("other_reviewer", 200, False),
    ("reviewer", 200, True),
    ("dataset_admin", 200, True),
])
def test_home_lists_only_the_topics_a_persona_reviews(client, world, topic, persona, expected, lists_topic):
    assert page(client, world[persona], reverse("labeling:home")) == expected
    if expected == 200:
        assert (topic.name in client.get(reverse("labeling:home")).content.decode()) is lists_topic


@pytest.mark.parametrize("persona, expected, status", [
    ("anonymous", "login", "pending"),
    ("other_reviewer", 404, "pending"),
    ("reviewer", 302, "approved"),
    ("dataset_admin", 302, "approved"),
])
def test_bulk_review_from_the_list(client, world, topic, persona, expected, status):
    url = reverse("labeling:questions", args=[topic.pk])
    data = {"action": "approve", "scope": "selected", "ids": [world["question"].pk]}
    assert page(client, world[persona], url, "post", data) == expected
    assert Question.objects.get(pk=world["question"].pk).status == status


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", 401),
    ("other_reviewer", 404),
    ("reviewer", 200),
    ("dataset_admin", 200),
    ("capture_client", 403),
])
def test_next_question_endpoint(api, world, topic, persona, expected):
    assert api_call(api, world[persona], "get", reverse("api-review-next") + f"?topic={topic.pk}") == expected


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", 401),
    ("other_reviewer", 404),
    ("reviewer", 200),
    ("dataset_admin", 200),
    ("capture_client", 403),
])
def test_review_endpoint(api, world, persona, expected):
    url = reverse("api-question-review", args=[world["question"].pk])
    assert api_call(api, world[persona], "post", url, {"action": "flag", "version": 1}) == expected


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", 401),
    ("other_reviewer", 404),
    ("reviewer", 200),
    ("dataset_admin", 409),  # may renew leases in every topic, but this one is rita's
    ("capture_client", 403),
])
def test_lease_renewal_endpoint(api, world, topic, persona, expected):
    question_lease_next(topic=topic, actor=world["reviewer"])
    assert api_call(api, world[persona], "post", reverse("api-review-lease", args=[world["question"].pk])) == expected


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", 401),
    ("other_reviewer", 403),
    ("reviewer", 403),
    ("dataset_admin", 201),
    ("capture_client", 201),
])
def test_captures_endpoint(api, world, topic, taxonomy, persona, expected):
    capture = {"topic": topic.pk, "text": "where is my refund??", "predicted_intent": "1.1", "confidence": 0.3}
    assert api_call(api, world[persona], "post", reverse("api-captures"), capture) == expected


def test_a_bulk_form_without_its_csrf_token_is_refused(world, topic):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["reviewer"])
    response = client.post(reverse("labeling:questions", args=[topic.pk]),
                           {"action": "approve", "scope": "selected", "ids": [world["question"].pk]})
    assert response.status_code == 403
    assert Question.objects.get(pk=world["question"].pk).status == "pending"


def test_a_session_review_request_without_csrf_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["reviewer"])
    response = client.post(reverse("api-question-review", args=[world["question"].pk]),
                           {"action": "approve", "version": 1},
                           content_type="application/json")
    assert response.status_code == 403
    assert Question.objects.get(pk=world["question"].pk).status == "pending"


def labeling_endpoints(world, topic):
    """(url, method, kind) for every route of labeling.urls and labeling.api_urls, from the URLconf."""
    from django.urls import URLPattern
    from rest_framework.views import APIView

    from labeling import api_urls, urls

    ids = {"topic_id": topic.pk, "question_id": world["question"].pk, "pk": world["question"].pk}
    found = []
    for module, namespace in ((urls, "labeling:"), (api_urls, "")):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern), f"{pattern} includes more routes: list them here too"
            url = reverse(namespace + pattern.name, kwargs={k: ids[k] for k in pattern.pattern.converters})
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is not None and issubclass(view_class, APIView):
                found += [(url, method, "api") for method in ("get", "post", "put", "patch", "delete")
                          if hasattr(view_class, method)]
            else:
                found += [(url, method, "page") for method in ("get", "post")]
    return found


def test_every_labeling_page_and_endpoint_refuses_anonymous_users(client, api, world, topic):
    endpoints = labeling_endpoints(world, topic)
    assert {url for url, _, _ in endpoints} >= {
        "/", f"/topics/{topic.pk}/review/", "/api/v1/review/next/", f"/api/v1/review/{world['question'].pk}/lease/",
        "/api/v1/labeling/captures/"}
    outcomes = {}
    for url, method, kind in endpoints:
        outcomes[(url, method)] = page(client, None, url, method) if kind == "page" else api_call(
            api, None, method, url)
    expected = {(url, method): "login" if kind == "page" else 401 for url, method, kind in endpoints}
    assert outcomes == expected
    # The API schema and its docs page: drf-spectacular's views, refused to anonymous users too
    # (as a login redirect or a 401; either keeps the API's shape private).
    assert page(client, None, reverse("api-schema")) in ("login", 401)
    assert page(client, None, reverse("api-docs")) in ("login", 401)
    assert Question.objects.get(pk=world["question"].pk).status == "pending"


def test_the_login_page_is_the_only_page_for_anonymous_users(client):
    assert client.get(reverse("login")).status_code == 200
    assert 'name="csrfmiddlewaretoken"' in client.get(reverse("login")).content.decode()


@pytest.fixture
def no_role_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_user(username="nobody", password="pw-nobody")


@pytest.mark.parametrize("persona", ["no_role_user", "capture_client"])
def test_users_without_a_review_role_read_neither_the_ui_nor_the_api_schema(client, request, world, topic, persona):
    user = request.getfixturevalue(persona)
    assert page(client, user, reverse("labeling:home")) == 403
    assert page(client, user, reverse("labeling:dashboard", args=[topic.pk])) == 403
    assert page(client, user, reverse("api-schema")) == 403
    assert page(client, user, reverse("api-docs")) == 403


@pytest.mark.parametrize("persona", ["reviewer", "dataset_admin"])
def test_reviewers_and_dataset_admins_read_the_api_schema(client, world, persona):
    assert page(client, world[persona], reverse("api-schema")) == 200
    assert page(client, world[persona], reverse("api-docs")) == 200


def test_bulk_relabel_answers_the_same_for_another_topics_intent_and_a_missing_one(world, topic,
                                                                                 make_topic, make_intent):
    from django.contrib.messages import get_messages

    elsewhere = make_intent(make_topic("Travel"), "Book flight")
    url = reverse("labeling:questions", args=[topic.pk])
    said = {}
    for intent_id in (elsewhere.pk, elsewhere.pk + 1000):
        client = Client()
        client.force_login(world["reviewer"])
        response = client.post(url, {"action": "relabel", "scope": "selected", "ids": [world["question"].pk],
                                     "to_intent": intent_id})
        said[intent_id] = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == {elsewhere.pk: [f"Intent {elsewhere.pk} is not an intent of this topic."],
                    elsewhere.pk + 1000: [f"Intent {elsewhere.pk + 1000} is not an intent of this topic."]}
    assert Question.objects.get(pk=world["question"].pk).intent_id == world["question"].intent_id
