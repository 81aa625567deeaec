"""The data lifecycle through the API, and who may use it: one line per persona."""

import pytest

from datasets.jobs import topic_delete_run
from datasets.models import DataDeletion, IntentNode, Question, ReviewEvent, Topic
from tests.api.clients import api_as


@pytest.fixture
def world(topic, make_intent, make_question, reviewer, other_reviewer, dataset_admin, superuser):
    refunds = make_intent(topic, "Refunds")
    payback = make_intent(topic, "Payback")
    questions = [make_question(refunds, f"Where is my refund {n}?") for n in range(3)]
    return {"topic": topic, "refunds": refunds, "payback": payback, "questions": questions,
            "anonymous": None, "other_reviewer": other_reviewer, "reviewer": reviewer,
            "dataset_admin": dataset_admin, "superuser": superuser}


def test_delete_answers_202_with_the_plan_and_the_job_deletes_the_topic(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_as(world["dataset_admin"]).delete(f"/api/v1/topics/{world['topic'].pk}/")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["topic_name"], body["planned"]["questions"], body["planned"]["intents"]) == (
        "queued", "Customer Support", 3, 2)
    assert body["url"] == f"/api/v1/deletions/{body['id']}/"
    # Hidden at once: neither listed nor readable.
    assert api_as(world["dataset_admin"]).get(f"/api/v1/topics/{world['topic'].pk}/").status_code == 404
    assert api_as(world["dataset_admin"]).delete(f"/api/v1/topics/{world['topic'].pk}/").status_code == 404
    topic_delete_run(body["id"])
    followed = api_as(world["dataset_admin"]).get(body["url"]).json()
    assert (followed["status"], followed["deleted"]["questions"], followed["deleted"]["topics"]) == ("succeeded", 3, 1)
    assert not Topic.objects.exists()


def test_archive_and_unarchive(world):
    admin, topic = api_as(world["dataset_admin"]), world["topic"]
    assert admin.post(f"/api/v1/topics/{topic.pk}/archive/").json()["archived_at"] is not None
    assert admin.get("/api/v1/topics/").json()["results"] == []
    assert [t["id"] for t in admin.get("/api/v1/topics/?archived=true").json()["results"]] == [topic.pk]
    assert admin.get(f"/api/v1/topics/{topic.pk}/").status_code == 200  # still readable
    refused = admin.post("/api/v1/questions/remove/", {"questions": [world["questions"][0].pk]}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "frozen"
    assert admin.post(f"/api/v1/topics/{topic.pk}/unarchive/").json()["archived_at"] is None
    assert [t["id"] for t in admin.get("/api/v1/topics/").json()["results"]] == [topic.pk]


def test_remove_and_restore_questions(world):
    admin, first = api_as(world["dataset_admin"]), world["questions"][0]
    assert admin.post("/api/v1/questions/remove/", {"questions": [first.pk]}, format="json").json() == {"changed": 1}
    listed = [q["id"] for q in admin.get(f"/api/v1/questions/?topic={world['topic'].pk}").json()["results"]]
    assert first.pk not in listed and len(listed) == 2
    removed = admin.get(f"/api/v1/questions/?topic={world['topic'].pk}&removed=true").json()["results"]
    assert [q["id"] for q in removed] == [first.pk]
    assert admin.post("/api/v1/questions/restore/", {"questions": [first.pk]}, format="json").json() == {"changed": 1}
    assert list(ReviewEvent.objects.filter(question=first).order_by("id").values_list("action", "via")) == [
        ("remove", "api"), ("restore", "api")]


def test_merge_and_delete_intents(world):
    admin, topic = api_as(world["dataset_admin"]), world["topic"]
    url = f"/api/v1/topics/{topic.pk}/intents/{world['refunds'].pk}/"
    refused = admin.post(url + "delete/", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == "1 Refunds has 3 questions (3 pending): move them to another " \
                                                 "intent first."
    merged = admin.post(url + "merge/", {"into": world["payback"].pk}, format="json")
    assert merged.json() == {"questions_moved": 3, "intents_moved": 0, "intents_merged": 1, "intents_deleted": 0,
                             "renumbered": 1}
    assert list(IntentNode.objects.filter(topic=topic).values_list("number", "name")) == [("1", "Payback")]
    assert Question.objects.filter(intent=world["payback"]).count() == 3
    unknown = admin.post(f"/api/v1/topics/{topic.pk}/intents/{world['payback'].pk}/merge/", {"into": 999999},
                         format="json")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid_intent"


def _calls(world):
    """Every lifecycle call, in an order in which each one can succeed after the ones before."""
    topic, refunds, payback = world["topic"], world["refunds"], world["payback"]
    first = world["questions"][0].pk
    return [
        ("remove", "post", "/api/v1/questions/remove/", {"questions": [first]}),
        ("restore", "post", "/api/v1/questions/restore/", {"questions": [first]}),
        ("merge", "post", f"/api/v1/topics/{topic.pk}/intents/{refunds.pk}/merge/", {"into": payback.pk}),
        ("delete intent", "post", f"/api/v1/topics/{topic.pk}/intents/{payback.pk}/delete/",
         {"move_questions_to": world["spare"].pk}),
        ("archive", "post", f"/api/v1/topics/{topic.pk}/archive/", None),
        ("unarchive", "post", f"/api/v1/topics/{topic.pk}/unarchive/", None),
        ("delete topic", "delete", f"/api/v1/topics/{topic.pk}/", None),
    ]


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", 401),
    ("other_reviewer", 403),
    ("reviewer", 403),
    ("dataset_admin", "allowed"),
    ("superuser", "allowed"),
])
def test_lifecycle_endpoints_permission_matrix(world, make_intent, persona, expected,
                                               django_capture_on_commit_callbacks):
    world["spare"] = make_intent(world["topic"], "Spare")
    statuses = {}
    with django_capture_on_commit_callbacks(execute=False):
        for name, method, url, body in _calls(world):
            statuses[name] = getattr(api_as(world[persona]), method)(url, body, format="json").status_code
    if expected == "allowed":
        assert statuses == {"remove": 200, "restore": 200, "merge": 200, "delete intent": 200, "archive": 200,
                            "unarchive": 200, "delete topic": 202}
        return
    assert statuses == dict.fromkeys(statuses, expected)
    assert Topic.objects.get().deletion_started_at is None and Topic.objects.get().archived_at is None
    assert IntentNode.objects.count() == 3 and not DataDeletion.objects.exists()
    assert not ReviewEvent.objects.exists()
