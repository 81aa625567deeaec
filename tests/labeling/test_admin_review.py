"""Reviewing in the admin: the same services, the same audit, only the reviewer's topics, and no
silent overwrite of someone else's review from a stale change form."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from datasets.models import ReviewEvent
from labeling.services import question_review
from tests.admin.forms import change_form_data


@pytest.fixture
def two_topics(topic, make_topic, make_intent, make_question):
    mine = make_question(make_intent(topic, "Billing"), "Refund my order")
    elsewhere = make_question(make_intent(make_topic("Elsewhere"), "Travel"), "Book me a flight")
    return mine, elsewhere


@pytest.mark.parametrize("persona, sees_mine, sees_elsewhere", [
    ("other_reviewer", False, False),
    ("reviewer", True, False),
    ("dataset_admin", True, True),
])
def test_the_question_changelist_shows_only_reviewed_topics(client, request, two_topics, persona, sees_mine,
                                                            sees_elsewhere):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(reverse("admin:datasets_question_changelist")).content.decode()
    assert ("Refund my order" in page, "Book me a flight" in page) == (sees_mine, sees_elsewhere)


def test_a_reviewer_cannot_open_a_question_of_another_topic_in_the_admin(client, reviewer, two_topics):
    client.force_login(reviewer)
    response = client.get(reverse("admin:datasets_question_change", args=[two_topics[1].pk]))
    assert response.status_code == 302  # the admin's "does not exist" redirect


def test_an_admin_approve_action_by_a_reviewer_writes_a_review_event(client, reviewer, two_topics):
    client.force_login(reviewer)
    client.post(reverse("admin:datasets_question_changelist"),
                {"action": "approve_selected", "_selected_action": [two_topics[0].pk]})
    event = ReviewEvent.objects.get(question=two_topics[0])
    assert (event.action, event.actor, event.via) == ("approve", reviewer, "admin")


def post_question_change(client, question, loaded_from=None, **changes):
    """Post the change form as it was loaded (now, or earlier: `loaded_from`) with `changes`."""
    url = reverse("admin:datasets_question_change", args=[question.pk])
    data = change_form_data(loaded_from or client.get(url))
    data.update(changes)
    return client.post(url, data)


def test_a_stale_change_form_is_refused_naming_who_changed_the_question(client, reviewer, dataset_admin,
                                                                        two_topics):
    question = two_topics[0]
    client.force_login(reviewer)
    loaded = client.get(reverse("admin:datasets_question_change", args=[question.pk]))
    assert loaded.context["adminform"].form["loaded_version"].value() == 1
    question_review(question_id=question.pk, actor=dataset_admin, action="reject", via="ui")
    response = post_question_change(client, question, loaded_from=loaded, text="Refund my order, please")
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "dora changed this question since you loaded it (version 1, now 2)."]
    question.refresh_from_db()
    assert (question.text, question.status, question.version) == ("Refund my order", "rejected", 2)
    assert list(ReviewEvent.objects.filter(question=question).values_list("actor__username", "action")) == [
        ("dora", "reject")]


def test_a_stale_form_does_not_undo_a_concurrent_relabel(client, reviewer, dataset_admin, two_topics, make_intent):
    question = two_topics[0]
    other = make_intent(question.topic, "Invoices")
    client.force_login(reviewer)
    loaded = client.get(reverse("admin:datasets_question_change", args=[question.pk]))
    question_review(question_id=question.pk, actor=dataset_admin, action="relabel", intent_id=other.pk)
    # The reviewer only edits the language, but the form still holds the intent it was loaded with.
    response = post_question_change(client, question, loaded_from=loaded, language="de")
    assert response.status_code == 302
    question.refresh_from_db()
    assert (question.intent, question.language, question.version) == (other, "en", 2)


def test_an_admin_edit_through_a_fresh_form_is_audited(client, reviewer, two_topics):
    question = two_topics[0]
    client.force_login(reviewer)
    response = post_question_change(client, question, text="Refund my order, please")
    assert response.status_code == 302
    question.refresh_from_db()
    assert (question.text, question.original_text, question.version) == (
        "Refund my order, please", "Refund my order", 2)
    event = ReviewEvent.objects.get(question=question)
    assert (event.action, event.actor, event.to_text, event.via) == ("edit", reviewer, "Refund my order, please",
                                                                     "admin")


def test_moving_a_question_to_another_topic_relabels_it_there(client, dataset_admin, two_topics, make_intent):
    question, elsewhere = two_topics
    target = make_intent(elsewhere.topic, "Hotels")
    old_intent = question.intent
    client.force_login(dataset_admin)
    response = post_question_change(client, question, topic=elsewhere.topic_id, intent=target.pk)
    assert response.status_code == 302
    question.refresh_from_db()
    assert (question.topic_id, question.intent, question.status, question.version) == (
        elsewhere.topic_id, target, "relabeled", 2)
    event = ReviewEvent.objects.get(question=question)
    assert (event.action, event.from_intent_id, event.to_intent) == ("relabel", old_intent.pk, target)


def test_moving_a_question_to_another_topic_with_an_intent_of_the_old_one_is_a_form_error(client, dataset_admin,
                                                                                          two_topics):
    question, elsewhere = two_topics
    client.force_login(dataset_admin)
    response = post_question_change(client, question, topic=elsewhere.topic_id)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"intent": ["The intent belongs to another topic."]}
    topic_before = question.topic_id
    question.refresh_from_db()
    assert (question.topic_id, question.version) == (topic_before, 1)
    assert not ReviewEvent.objects.filter(question=question).exists()
