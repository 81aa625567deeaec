"""Reasons on rejects and flags, the second opinion of topic leads on flagged questions, and the
server-side undo stack of each reviewer."""

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from datasets.models import Question, ReviewEvent
from labeling.selectors import QuestionFilter, questions_filtered, reasons_by_intent
from labeling.services import question_lease_next, question_review, questions_review_matching


def review(api, user, question, **body):
    question.refresh_from_db()
    return api(user).post(reverse("api-question-review", args=[question.pk]),
                          {"version": question.version, **body}, format="json")


# Reasons ----------------------------------------------------------------------------------------

def test_a_reject_and_a_flag_store_their_reason_on_the_event(api, reviewer, taxonomy, make_question):
    first = make_question(taxonomy["refunds"], "refund please")
    second = make_question(taxonomy["refunds"], "lol")
    assert review(api, reviewer, first, action="reject", reason="  Duplicate ").status_code == 200
    assert review(api, reviewer, second, action="flag", reason="Is this   even a question?").status_code == 200
    assert list(ReviewEvent.objects.order_by("id").values_list("question_id", "action", "reason")) == [
        (first.pk, "reject", "Duplicate"), (second.pk, "flag", "Is this even a question?")]


def test_a_reason_longer_than_500_characters_is_refused_and_nothing_is_written(api, reviewer, taxonomy,
                                                                              make_question):
    question = make_question(taxonomy["refunds"], "refund please")
    response = review(api, reviewer, question, action="reject", reason="x" * 501)
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["details"]
    assert not ReviewEvent.objects.exists()


def test_questions_filter_by_reason_and_reasons_are_counted_per_intent(reviewer, topic, taxonomy, make_question):
    refunds = [make_question(taxonomy["refunds"], f"refund {n}") for n in range(3)]
    invoice = make_question(taxonomy["invoices"], "invoice")
    for question, reason in zip([*refunds, invoice], ["Duplicate", "Duplicate", "Unnatural", "Duplicate"],
                                strict=True):
        question_review(question_id=question.pk, actor=reviewer, action="reject", reason=reason)
    found = questions_filtered(topic=topic, question_filter=QuestionFilter.from_params({"reason": "Duplicate"}))
    assert sorted(q.text for q in found) == ["invoice", "refund 0", "refund 1"]
    assert [(r["intent_name"], r["reason"], r["count"]) for r in reasons_by_intent(topic=topic)] == [
        ("1.1 Refunds", "Duplicate", 2), ("1.1 Refunds", "Unnatural", 1), ("1.2 Invoices", "Duplicate", 1)]


def test_the_admin_exports_the_review_history_with_reasons_as_csv(client, dataset_admin, reviewer, taxonomy,
                                                                   make_question):
    question = make_question(taxonomy["refunds"], "=HYPERLINK(evil)")
    question_review(question_id=question.pk, actor=reviewer, action="reject", reason="Offensive")
    client.force_login(dataset_admin)
    event = ReviewEvent.objects.get()
    response = client.post(reverse("admin:datasets_reviewevent_changelist"),
                           {"action": "export_history_csv", "_selected_action": [event.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["created_at", "question", "topic", "text", "actor", "action", "from_status", "to_status",
                       "from_intent", "to_intent", "reason", "via"]
    assert rows[1][1:] == [str(question.pk), "Customer Support", "'=HYPERLINK(evil)", "rita", "reject", "pending",
                           "rejected", "1.1", "1.1", "Offensive", "ui"]
    assert len(rows) == 2


# Second opinion ---------------------------------------------------------------------------------

def test_a_flag_goes_to_the_leads_second_opinion_queue_and_their_decision_closes_it(
        api, reviewer, lead, topic, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "Where is my invoice?")
    make_question(taxonomy["refunds"], "still pending")
    assert review(api, reviewer, question, action="flag", reason="Ambiguous").status_code == 200

    # Another reviewer's first look does not settle it; only a lead does.
    refused = review(api, reviewer, question, action="approve")
    assert refused.status_code == 403
    assert "waits for a second opinion" in refused.json()["error"]["message"]
    assert api(reviewer).get(reverse("api-review-next"), {"topic": topic.pk, "queue": "second_opinion"}
                             ).status_code == 403

    served = api(lead).get(reverse("api-review-next"), {"topic": topic.pk, "queue": "second_opinion"}).json()
    assert (served["question"]["id"], served["question"]["status"], served["remaining"]) == (
        question.pk, "flagged", 1)
    response = review(api, lead, question, action="relabel", intent=taxonomy["invoices"].pk,
                      reason="It asks for an invoice", next=True, queue="second_opinion")
    assert response.status_code == 200
    assert (response.json()["next"], response.json()["remaining"]) == (None, 0)
    question.refresh_from_db()
    assert (question.status, question.intent, question.reviewed_by, question.leased_by) == (
        "relabeled", taxonomy["invoices"], lead, None)
    assert list(question.events.order_by("id").values_list("actor__username", "action", "from_status",
                                                            "to_status", "reason")) == [
        ("rita", "flag", "pending", "flagged", "Ambiguous"),
        ("leo", "relabel", "flagged", "relabeled", "It asks for an invoice")]


def test_a_reviewers_bulk_action_leaves_flagged_questions_to_the_lead(reviewer, topic, taxonomy, make_question):
    flagged = make_question(taxonomy["refunds"], "flagged one", status="flagged")
    pending = make_question(taxonomy["refunds"], "pending one")
    result = questions_review_matching(queryset=Question.objects.filter(topic=topic), actor=reviewer,
                                       action="approve")
    assert (result.changed, result.skipped) == (1, 1)
    assert dict(Question.objects.values_list("pk", "status")) == {flagged.pk: "flagged", pending.pk: "approved"}


@pytest.mark.parametrize("persona, may", [("reviewer", False), ("lead", True), ("dataset_admin", True)])
def test_who_gives_second_opinions(request, topic, taxonomy, make_question, persona, may):
    make_question(taxonomy["refunds"], "flagged one", status="flagged")
    user = request.getfixturevalue(persona)
    if may:
        assert question_lease_next(topic=topic, actor=user, queue="second_opinion").text == "flagged one"
    else:
        with pytest.raises(Exception, match="leads and dataset admins"):
            question_lease_next(topic=topic, actor=user, queue="second_opinion")


def test_a_lead_sees_the_topic_they_lead_without_being_listed_as_its_reviewer(client, lead, topic, taxonomy):
    assert not topic.reviewers.filter(pk=lead.pk).exists()
    client.force_login(lead)
    assert client.get(reverse("labeling:review", args=[topic.pk]) + "?queue=second_opinion").status_code == 200
    dashboard = client.get(reverse("labeling:dashboard", args=[topic.pk])).content.decode()
    assert "?queue=second_opinion" in dashboard


def test_a_reviewer_cannot_open_the_second_opinion_screen(client, reviewer, topic, taxonomy):
    client.force_login(reviewer)
    assert client.get(reverse("labeling:review", args=[topic.pk]) + "?queue=second_opinion").status_code == 403


# Server-side undo -------------------------------------------------------------------------------

def test_undo_walks_back_the_reviewers_own_actions_after_a_reload_and_releases_the_question_on_screen(
        api, reviewer, topic, taxonomy, make_question):
    first, second, third = (make_question(taxonomy["refunds"], f"question {n}") for n in range(3))
    other = User.objects.create_user(username="olga")
    other.groups.add(Group.objects.get(name="reviewer"))
    topic.reviewers.add(other)
    question_review(question_id=first.pk, actor=reviewer, action="approve")
    question_review(question_id=second.pk, actor=reviewer, action="reject", reason="Duplicate")
    question_lease_next(topic=topic, actor=reviewer)  # the third is on screen, reserved
    fourth = make_question(taxonomy["refunds"], "question 4")
    question_review(question_id=fourth.pk, actor=other, action="approve")  # someone else's: never undone by rita

    # A new page (nothing in the browser's memory): the server knows what to undo.
    undo = api(reviewer).post(reverse("api-review-undo"), {"topic": topic.pk, "release": third.pk}, format="json")
    assert undo.status_code == 200
    assert (undo.json()["id"], undo.json()["status"], undo.json()["leased_by"]) == (second.pk, "pending", "rita")
    third.refresh_from_db()
    assert third.leased_by is None  # released at once, not left to lapse

    assert api(reviewer).post(reverse("api-review-undo"), {"topic": topic.pk}, format="json").json()["id"] == first.pk
    nothing = api(reviewer).post(reverse("api-review-undo"), {"topic": topic.pk}, format="json")
    assert nothing.status_code == 400 and nothing.json()["error"]["code"] == "nothing_to_undo"
    assert dict(Question.objects.values_list("pk", "status")) == {
        first.pk: "pending", second.pk: "pending", third.pk: "pending", fourth.pk: "approved"}


def test_undo_skips_an_action_someone_else_has_overridden(api, reviewer, dataset_admin, topic, taxonomy,
                                                          make_question):
    mine, overridden = make_question(taxonomy["refunds"], "mine"), make_question(taxonomy["refunds"], "overridden")
    question_review(question_id=mine.pk, actor=reviewer, action="approve")
    question_review(question_id=overridden.pk, actor=reviewer, action="flag")
    question_review(question_id=overridden.pk, actor=dataset_admin, action="reject")
    assert api(reviewer).post(reverse("api-review-undo"), {"topic": topic.pk}, format="json").json()["id"] == mine.pk
