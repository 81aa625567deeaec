"""Reviewing in the admin: the same services, the same audit, and only the reviewer's topics."""

import pytest
from django.urls import reverse

from datasets.models import ReviewEvent


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
