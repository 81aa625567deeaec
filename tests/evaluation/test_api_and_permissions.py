"""Evaluations over the API, pages and CLI: who may do what (one line per persona), and exact answers.

One evaluation of the small topic is trained for the whole module (evaluated_small_topic); `topic`,
`small_topic` and the export folder are that module's, so every test reads the same finished evaluation.
"""

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evaluation.models import Evaluation
from tests.api.clients import api_as
from tests.evaluation.conftest import evaluated_small_topic


@pytest.fixture(scope="module")
def trained(django_db_setup, django_db_blocker, tmp_path_factory):
    """(topic, leaves, evaluation, export folder), made once for the module."""
    folder = tmp_path_factory.mktemp("exports")
    with evaluated_small_topic(django_db_blocker, folder) as made:
        yield (*made, folder)


@pytest.fixture
def topic(trained, db):
    return trained[0]


@pytest.fixture
def small_topic(trained):
    return trained[1]


@pytest.fixture(autouse=True)
def export_root(settings, trained):
    settings.EXPORT_ROOT = trained[3]
    return settings.EXPORT_ROOT


@pytest.fixture
def finished(trained):
    return Evaluation.objects.get(pk=trained[2].pk)


@pytest.fixture
def personas(reviewer, other_reviewer, dataset_admin):
    return {"anonymous": None, "other_reviewer": other_reviewer, "reviewer": reviewer, "dataset_admin": dataset_admin}


READ = [("anonymous", 401), ("other_reviewer", 404), ("reviewer", 200), ("dataset_admin", 200)]


@pytest.mark.parametrize("persona, expected", READ)
@pytest.mark.parametrize("route", ["detail", "label-issues", "files"])
def test_reading_an_evaluation(finished, personas, persona, expected, route):
    args = [finished.pk, "model.json"] if route == "files" else [finished.pk]
    response = api_as(personas[persona]).get(reverse(f"api-evaluation-{route}", args=args))
    assert response.status_code == expected


@pytest.mark.parametrize("persona, expected", READ)
def test_predicting(finished, personas, persona, expected):
    response = api_as(personas[persona]).post(reverse("api-evaluation-predict", args=[finished.pk]),
                                              {"texts": ["I forgot my password"]}, format="json")
    assert response.status_code == expected


@pytest.mark.parametrize("persona, expected, created", [
    ("anonymous", 401, 0), ("other_reviewer", 403, 0), ("reviewer", 403, 0), ("dataset_admin", 202, 1)])
def test_starting_an_evaluation(topic, finished, personas, persona, expected, created):
    response = api_as(personas[persona]).post(reverse("api-evaluation-list"), {"topic": topic.pk}, format="json")
    assert response.status_code == expected
    assert Evaluation.objects.exclude(pk=finished.pk).count() == created


@pytest.mark.parametrize("persona, expected", [("anonymous", "login"), ("other_reviewer", 404), ("reviewer", 200),
                                               ("dataset_admin", 200)])
@pytest.mark.parametrize("name", ["page", "list", "compare"])
def test_pages(finished, personas, persona, expected, name):
    client = Client()
    if personas[persona] is not None:
        client.force_login(personas[persona])
    url = {"page": reverse("evaluation:page", args=[finished.pk]),
           "list": reverse("evaluation:list", args=[finished.topic_id]),
           "compare": reverse("evaluation:compare") + f"?a={finished.pk}&b={finished.pk}"}[name]
    response = client.get(url)
    status = "login" if response.status_code == 302 and "/accounts/login/" in response["Location"] else response.status_code
    assert status == expected


def test_the_page_draws_the_figures(finished, reviewer):
    client = Client()
    client.force_login(reviewer)
    html = client.get(reverse("evaluation:page", args=[finished.pk])).content.decode()
    assert "Accuracy 1.0" in html and "F1 per intent, worst first (gate 0.85)" in html
    # Every F1 is 1.0, but on about 5 test questions each: an interval reaching below the gate (uncertain).
    assert html.count('class="f1-row uncertain"') == 5 and "<svg" in html


def test_the_document_is_the_same_over_the_api_and_the_cli(finished, dataset_admin, capsys, topic):
    document = api_as(dataset_admin).get(reverse("api-evaluation-detail", args=[finished.pk])).json()
    assert document["metrics"] == finished.metrics and document["status"] == "succeeded"
    assert document["train_count"] + document["test_count"] == 120
    call_command("evaluate", "--topic", topic.name, "--json", "--no-learning-curve", "--no-label-issues")
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "succeeded" and printed["train_spec"] == "default"
    assert printed["metrics"]["accuracy"] == 1.0 and printed["id"] == Evaluation.objects.latest("id").pk


def test_predict_answers_the_top_three(finished, reviewer):
    response = api_as(reviewer).post(reverse("api-evaluation-predict", args=[finished.pk]),
                                     {"texts": ["I need a refund", "delete account"]}, format="json")
    predictions = response.json()["predictions"]
    assert [p["intents"][0]["name"] for p in predictions] == ["Refunds", "Delete Account"]
    assert all(len(p["intents"]) == 3 for p in predictions)


@pytest.mark.parametrize("texts, code, message", [
    (["x"] * 10000, "too_many_texts", "At most 1,000 texts per request; got 10,000."),
    (["fine", 3], "invalid_texts", "texts[1] is not a string."),
    ("one text", "invalid_texts", 'Send {"texts": ["...", ...]}: a non-empty list of strings.'),
    ([], "invalid_texts", 'Send {"texts": ["...", ...]}: a non-empty list of strings.'),
])
def test_predict_refuses_bad_input(finished, reviewer, texts, code, message):
    response = api_as(reviewer).post(reverse("api-evaluation-predict", args=[finished.pk]), {"texts": texts},
                                     format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"] == message


def test_a_bad_spec_over_the_api_is_a_400_in_the_error_shape(topic, finished, dataset_admin):
    response = api_as(dataset_admin).post(reverse("api-evaluation-list"),
                                          {"topic": topic.pk, "train": "split=dev", "test": "split=test"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_spec", "details": None, "message":
                                        "Unknown split 'dev' in the train SPEC: use train, validation, test, none."}
    assert Evaluation.objects.exclude(pk=finished.pk).count() == 0


def test_label_issues_are_listed_most_likely_first(finished, reviewer):
    body = api_as(reviewer).get(reverse("api-evaluation-label-issues", args=[finished.pk])).json()
    assert body["count"] == finished.label_issues.count()
    assert [row["rank"] for row in body["results"]] == list(range(1, body["count"] + 1))[:100]


def test_the_page_of_a_running_evaluation_follows_it_with_the_static_script(finished, topic, reviewer):
    from django.contrib.staticfiles import finders

    running = Evaluation.objects.create(topic=topic, status="running", stage="cross-validation: fold 2/5", percent=34)
    client = Client()
    client.force_login(reviewer)
    html = client.get(reverse("evaluation:page", args=[running.pk])).content.decode()
    api = reverse("api-evaluation-detail", args=[running.pk])
    assert f'<span id="evaluation-progress" data-url="{api}"><span data-stage>cross-validation: fold 2/5</span>' in html
    assert '<progress max="100" value="34"></progress> <span data-percent>34%</span>' in html
    assert '<script src="/static/evaluation/progress.js"></script>' in html and "<script>" not in html
    assert finders.find("evaluation/progress.js")
    done = client.get(reverse("evaluation:page", args=[finished.pk])).content.decode()
    assert "evaluation-progress" not in done and "progress.js" not in done


def test_the_list_names_the_default_plan_as_the_document_does(finished, reviewer, topic):
    # The list said "train_spec": "" for the evaluation whose document says "default".
    listed = api_as(reviewer).get(reverse("api-evaluation-list"), {"topic": topic.pk}).json()["results"]
    document = api_as(reviewer).get(reverse("api-evaluation-detail", args=[finished.pk])).json()
    row = next(r for r in listed if r["id"] == finished.pk)
    assert (row["train_spec"], row["test_spec"]) == (document["train_spec"], document["test_spec"])
    assert finished.train_spec == "" and row["train_spec"] == "default"
