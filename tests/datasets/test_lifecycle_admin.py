"""The data lifecycle in the admin: the topic delete confirmation, archive actions, question
removal, the taxonomy tree's merge and delete pages; and who may use them, one line per persona."""

import pytest
from django.urls import reverse

from datasets.models import DataDeletion, IntentNode, Question, ReviewEvent, Topic


@pytest.fixture
def world(topic, make_intent, make_question, reviewer, other_reviewer, dataset_admin, superuser):
    refunds = make_intent(topic, "Refunds")
    payback = make_intent(topic, "Payback")
    questions = [make_question(refunds, f"Where is my refund {n}?") for n in range(3)]
    return {"topic": topic, "refunds": refunds, "payback": payback, "questions": questions, "anonymous": None,
            "other_reviewer": other_reviewer, "reviewer": reviewer, "dataset_admin": dataset_admin,
            "superuser": superuser}


def as_user(client, user):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client


def test_the_delete_page_states_what_goes_and_queues_the_deletion(client, world, django_capture_on_commit_callbacks):
    as_user(client, world["dataset_admin"])
    url = reverse("admin:datasets_topic_delete", args=[world["topic"].pk])
    page = client.get(url).content.decode()
    assert "<li>2 intents</li>" in page and "<li>3 questions</li>" in page
    assert "<li>0 review events (the audit trail of those questions)</li>" in page
    assert "<li>0 trained model files of those evaluations</li>" in page
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url)
    assert response.status_code == 302
    assert DataDeletion.objects.get().planned["questions"] == 3
    assert Topic.objects.get().is_deleting
    # Gone from the changelist at once.
    change_url = reverse("admin:datasets_topic_change", args=[world["topic"].pk])
    assert change_url not in client.get(reverse("admin:datasets_topic_changelist")).content.decode()


def test_archive_and_unarchive_actions(client, world):
    as_user(client, world["dataset_admin"])
    changelist = reverse("admin:datasets_topic_changelist")
    client.post(changelist, {"action": "archive_selected", "_selected_action": [world["topic"].pk]})
    assert Topic.objects.get().is_archived
    change_url = reverse("admin:datasets_topic_change", args=[world["topic"].pk])
    assert change_url not in client.get(changelist).content.decode()
    assert change_url in client.get(changelist + "?state=archived").content.decode()
    client.post(changelist + "?state=archived", {"action": "unarchive_selected",
                                                 "_selected_action": [world["topic"].pk]})
    assert not Topic.objects.get().is_archived


def test_remove_and_restore_actions_keep_the_history(client, world):
    as_user(client, world["dataset_admin"])
    changelist = reverse("admin:datasets_question_changelist")
    first = world["questions"][0]
    client.post(changelist, {"action": "remove_selected", "_selected_action": [first.pk]})
    assert Question.objects.get(pk=first.pk).removed_at is not None
    change_url = reverse("admin:datasets_question_change", args=[first.pk])
    assert change_url not in client.get(changelist).content.decode()
    assert change_url in client.get(changelist + "?removed=yes").content.decode()
    client.post(changelist + "?removed=yes", {"action": "restore_selected", "_selected_action": [first.pk]})
    assert Question.objects.get(pk=first.pk).removed_at is None
    assert list(ReviewEvent.objects.values_list("action", "via").order_by("id")) == [
        ("remove", "admin"), ("restore", "admin")]


def test_merge_from_the_taxonomy_tree(client, world):
    as_user(client, world["dataset_admin"])
    tree = client.get(reverse("admin:datasets_topic_taxonomy", args=[world["topic"].pk])).content.decode()
    url = reverse("admin:datasets_topic_intent_change", args=[world["topic"].pk, world["refunds"].pk, "merge"])
    assert url in tree
    assert "1 Refunds has 3 question(s); 3 pending." in " ".join(client.get(url).content.decode().split())
    client.post(url, {"target": world["payback"].pk})
    assert list(IntentNode.objects.values_list("number", "name")) == [("1", "Payback")]
    assert Question.objects.filter(intent=world["payback"]).count() == 3


def test_delete_from_the_taxonomy_tree_is_refused_with_counts_without_a_target(client, world):
    as_user(client, world["dataset_admin"])
    url = reverse("admin:datasets_topic_intent_change", args=[world["topic"].pk, world["refunds"].pk, "delete"])
    page = client.post(url, {"target": ""}, follow=True).content.decode()
    assert "1 Refunds has 3 questions (3 pending): move them to another intent first." in page
    assert IntentNode.objects.count() == 2
    client.post(url, {"target": world["payback"].pk})
    assert list(IntentNode.objects.values_list("name", flat=True)) == ["Payback"]


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", "login"),
    ("other_reviewer", 403),
    ("reviewer", 403),
    ("dataset_admin", "done"),
    ("superuser", "done"),
])
def test_lifecycle_admin_permission_matrix(client, world, persona, expected, django_capture_on_commit_callbacks):
    """Every lifecycle page and action of the admin, for each persona: reviewers can do none of it."""
    as_user(client, world[persona])
    topic, first = world["topic"], world["questions"][0]

    def status(response):
        if response.status_code == 302 and "/login/" in response["Location"]:
            return "login"
        return response.status_code

    tree_page = reverse("admin:datasets_topic_intent_change", args=[topic.pk, world["refunds"].pk, "merge"])
    outcomes = {
        "delete page": status(client.get(reverse("admin:datasets_topic_delete", args=[topic.pk]))),
        "merge page": status(client.get(tree_page)),
    }
    client.post(reverse("admin:datasets_question_changelist"),
                {"action": "remove_selected", "_selected_action": [first.pk]})
    outcomes["removed"] = Question.objects.get(pk=first.pk).removed_at is not None
    client.post(reverse("admin:datasets_topic_changelist"),
                {"action": "archive_selected", "_selected_action": [topic.pk]})
    outcomes["archived"] = Topic.objects.get().is_archived
    client.post(reverse("admin:datasets_topic_changelist") + "?state=archived",
                {"action": "unarchive_selected", "_selected_action": [topic.pk]})
    outcomes["merged"] = status(client.post(tree_page, {"target": world["payback"].pk}))
    with django_capture_on_commit_callbacks(execute=False):
        outcomes["delete topic"] = status(client.post(reverse("admin:datasets_topic_delete", args=[topic.pk])))
    if expected == "done":
        assert outcomes == {"delete page": 200, "merge page": 200, "removed": True, "archived": True, "merged": 302,
                            "delete topic": 302}
        assert Topic.objects.get().is_deleting and not Topic.objects.get().is_archived
        assert IntentNode.objects.count() == 1
    else:
        assert outcomes == {"delete page": expected, "merge page": expected, "removed": False, "archived": False,
                            "merged": expected, "delete topic": expected}
        assert not Topic.objects.get().is_deleting and IntentNode.objects.count() == 2
