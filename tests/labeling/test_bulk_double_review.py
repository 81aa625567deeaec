"""A bulk decision (the list's bulk action, the admin's actions) leaves pending questions that are set
for double review to their k reviewers: deciding them in bulk would settle them without the
independent votes the topic asked for. Whoever asks, they are left alone and counted apart; a lead
adjudicates them once the reviewers disagree (they are then flagged, and a lead's bulk decision on
flagged questions is that adjudication)."""

import pytest
from django.urls import reverse

from datasets.models import Question, ReviewEvent, ReviewVote
from labeling.services import question_review, questions_review_matching

DOUBLE_REVIEW_NOTE = ("3 pending question(s) set for double review were left alone: several reviewers decide each "
                      "one independently in the review queue, and a topic lead adjudicates when they disagree.")
SECOND_OPINION_NOTE = ("1 flagged question(s) were left alone: they wait for a topic lead's or a dataset admin's "
                       "second opinion.")


@pytest.fixture
def double_reviewed(topic, taxonomy, make_question, reviewer):
    """Every question of `topic` goes to 2 reviewers: three pending (one with rita's vote already in),
    one flagged after the reviewers disagreed, one approved."""
    topic.overlap_share, topic.overlap_reviewers = 1.0, 2
    topic.save()
    pending = [make_question(taxonomy["refunds"], f"refund number {n}") for n in range(3)]
    question_review(question_id=pending[0].pk, actor=reviewer, action="approve")
    flagged = make_question(taxonomy["refunds"], "refund disputed", status="flagged")
    approved = make_question(taxonomy["refunds"], "refund settled", status="approved")
    return {"pending": pending, "flagged": flagged, "approved": approved}


@pytest.mark.parametrize("persona", ["dataset_admin", "lead"])
def test_a_leads_bulk_adjudicates_flagged_questions_and_leaves_pending_double_review_ones(
        request, topic, double_reviewed, persona):
    actor = request.getfixturevalue(persona)
    result = questions_review_matching(queryset=Question.objects.filter(topic=topic), actor=actor, action="reject")

    assert (result.changed, result.skipped, result.held_for_overlap, result.held_for_lead) == (2, 3, 3, 0)
    assert result.notes() == [DOUBLE_REVIEW_NOTE]
    pending = [q.pk for q in double_reviewed["pending"]]
    assert dict(Question.objects.values_list("pk", "status")) == {
        **{pk: "pending" for pk in pending}, double_reviewed["flagged"].pk: "rejected",
        double_reviewed["approved"].pk: "rejected"}
    assert not ReviewEvent.objects.filter(question_id__in=pending).exists()
    # rita's vote is still in, waiting for the second reviewer's.
    assert list(ReviewVote.objects.values_list("question_id", "action")) == [(pending[0], "approve")]
    assert list(ReviewEvent.objects.filter(question=double_reviewed["flagged"]).values_list(
        "actor__username", "action", "from_status", "to_status")) == [(actor.username, "reject", "flagged", "rejected")]


def test_a_reviewers_bulk_leaves_both_double_review_and_flagged_questions(topic, double_reviewed, other_reviewer):
    topic.reviewers.add(other_reviewer)
    result = questions_review_matching(queryset=Question.objects.filter(topic=topic), actor=other_reviewer,
                                       action="approve")
    assert (result.changed, result.skipped, result.held_for_overlap, result.held_for_lead) == (1, 4, 3, 1)
    assert result.notes() == [DOUBLE_REVIEW_NOTE, SECOND_OPINION_NOTE]
    assert Question.objects.filter(status="pending").count() == 3


def test_reset_is_no_decision_and_still_applies(topic, double_reviewed, dataset_admin):
    result = questions_review_matching(queryset=Question.objects.filter(pk=double_reviewed["approved"].pk),
                                       actor=dataset_admin, action="reset")
    assert (result.changed, result.skipped) == (1, 0)
    assert Question.objects.get(pk=double_reviewed["approved"].pk).status == "pending"


def test_the_list_and_the_admin_say_why_questions_were_left_alone(client, topic, double_reviewed, dataset_admin):
    client.force_login(dataset_admin)
    response = client.post(reverse("labeling:questions", args=[topic.pk]),
                           {"action": "approve", "scope": "all"}, follow=True)
    page = response.content.decode()
    assert "Approve: 2 question(s)." in page and DOUBLE_REVIEW_NOTE in page
    assert Question.objects.filter(status="pending").count() == 3

    Question.objects.filter(status="approved").update(status="flagged")
    response = client.post(reverse("admin:datasets_question_changelist"),
                           {"action": "reject_selected", "_selected_action": list(
                               Question.objects.values_list("pk", flat=True))}, follow=True)
    page = response.content.decode()
    assert "Reject: 2 question(s)." in page and DOUBLE_REVIEW_NOTE in page
    assert Question.objects.filter(status="pending").count() == 3
