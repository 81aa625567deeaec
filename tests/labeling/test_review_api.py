"""Reviewing through POST /api/v1/questions/{id}/review/: decisions, conflicts, audit, undo."""

from django.urls import reverse

from datasets.models import Question, ReviewEvent
from labeling.services import question_review


def review_url(question):
    return reverse("api-question-review", args=[question.pk])


def test_a_reviewer_approves_a_question(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "I want my money back")
    response = api(reviewer).post(review_url(question), {"action": "approve", "version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["question"]["status"] == "approved"
    question.refresh_from_db()
    assert (question.status, question.reviewed_by, question.version) == ("approved", reviewer, 2)


def test_a_stale_version_answers_409_naming_who_changed_it_and_overwrites_nothing(
        api, reviewer, dataset_admin, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "Refund my order")
    question_review(question_id=question.pk, actor=dataset_admin, action="flag", version=1)
    response = api(reviewer).post(review_url(question), {"action": "reject", "version": 1}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "dora changed this question" in error["message"]
    assert error["details"] == {"current_version": 2, "changed_by": "dora"}
    question.refresh_from_db()
    assert (question.status, question.reviewed_by, question.version) == ("flagged", dataset_admin, 2)
    assert list(question.events.values_list("action", flat=True)) == ["flag"]


def test_a_relabel_keeps_the_original_intent_and_leaves_an_audit_trail(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "Where is my invoice for March?")
    response = api(reviewer).post(review_url(question), {"action": "relabel", "intent": taxonomy["invoices"].pk,
                                                         "version": 1}, format="json")
    assert response.status_code == 200
    body = response.json()["question"]
    assert body["intent"]["full_name"] == "1.2 Invoices"
    assert body["original_intent"]["full_name"] == "1.1 Refunds"
    question.refresh_from_db()
    assert (question.status, question.intent, question.original_intent) == (
        "relabeled", taxonomy["invoices"], taxonomy["refunds"])
    event = ReviewEvent.objects.get(question=question)
    assert (event.action, event.actor, event.from_status, event.to_status, event.from_intent, event.to_intent,
            event.via) == ("relabel", reviewer, "pending", "relabeled", taxonomy["refunds"], taxonomy["invoices"], "ui")


def test_an_edit_keeps_the_original_text_and_the_question_stays_reserved_for_the_editor(
        api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "refund plz")
    response = api(reviewer).post(review_url(question), {"action": "edit", "text": "Please refund me.",
                                                         "version": 1}, format="json")
    assert response.status_code == 200
    question.refresh_from_db()
    assert (question.text, question.original_text, question.status) == ("Please refund me.", "refund plz", "pending")
    assert question.leased_by == reviewer
    event = question.events.get()
    assert (event.action, event.from_text, event.to_text) == ("edit", "refund plz", "Please refund me.")


def test_it_rejects_a_relabel_to_an_intent_of_another_topic(api, reviewer, taxonomy, make_question, make_topic,
                                                           make_intent):
    elsewhere = make_intent(make_topic(), "Elsewhere")
    question = make_question(taxonomy["refunds"])
    response = api(reviewer).post(review_url(question), {"action": "relabel", "intent": elsewhere.pk, "version": 1}, format="json")
    assert response.status_code == 400
    assert "not an intent of this topic" in response.json()["error"]["message"]
    question.refresh_from_db()
    assert question.intent == taxonomy["refunds"] and question.version == 1


def test_it_rejects_an_unknown_action(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    response = api(reviewer).post(review_url(question), {"action": "delete", "version": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_undo_restores_the_previous_state_with_an_undo_event(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "I need the invoice")
    client = api(reviewer)
    client.post(review_url(question), {"action": "relabel", "intent": taxonomy["invoices"].pk, "version": 1},
                format="json")
    response = client.post(review_url(question), {"action": "undo", "version": 2}, format="json")
    assert response.status_code == 200
    question.refresh_from_db()
    assert (question.status, question.intent, question.original_intent, question.reviewed_by, question.version) == (
        "pending", taxonomy["refunds"], None, None, 3)
    assert question.leased_by == reviewer  # back in the reviewer's hands to decide again
    undo = question.events.first()
    assert (undo.action, undo.from_status, undo.to_status, undo.from_intent, undo.to_intent) == (
        "undo", "relabeled", "pending", taxonomy["invoices"], taxonomy["refunds"])


def test_undo_twice_walks_back_two_decisions(reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "Money back please")
    question_review(question_id=question.pk, actor=reviewer, action="edit", text="Money back, please.")
    question_review(question_id=question.pk, actor=reviewer, action="approve")
    question_review(question_id=question.pk, actor=reviewer, action="undo")
    question.refresh_from_db()
    assert (question.status, question.text) == ("pending", "Money back, please.")
    question_review(question_id=question.pk, actor=reviewer, action="undo")
    question.refresh_from_db()
    assert (question.status, question.text, question.original_text) == ("pending", "Money back please", "")
    assert [e.action for e in question.events.order_by("id")] == ["edit", "approve", "undo", "undo"]


def test_a_reviewer_cannot_undo_someone_elses_decision(api, reviewer, dataset_admin, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    question_review(question_id=question.pk, actor=dataset_admin, action="approve")
    response = api(reviewer).post(review_url(question), {"action": "undo", "version": 2}, format="json")
    assert response.status_code == 403
    assert "dora" in response.json()["error"]["message"]
    question.refresh_from_db()
    assert question.status == "approved"


def test_there_is_nothing_to_undo_on_an_untouched_question(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    response = api(reviewer).post(review_url(question), {"action": "undo", "version": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_undo"


def test_a_decision_can_also_reserve_and_return_the_next_question(api, reviewer, taxonomy, make_question):
    first = make_question(taxonomy["refunds"], "one")
    second = make_question(taxonomy["refunds"], "two")
    response = api(reviewer).post(review_url(first), {"action": "approve", "version": 1, "next": True}, format="json")
    body = response.json()
    assert body["question"]["id"] == first.pk and body["next"]["id"] == second.pk
    assert body["remaining"] == 1  # the one just reserved
    second.refresh_from_db()
    assert second.leased_by == reviewer
    body = api(reviewer).post(review_url(second), {"action": "approve", "version": 1, "next": True},
                              format="json").json()
    assert body["next"] is None and body["remaining"] == 0


def test_a_review_without_the_version_answers_400_and_writes_nothing(api, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    for body in ({"action": "approve"}, {"action": "approve", "version": None}):
        response = api(reviewer).post(review_url(question), body, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["details"]["version"][0].startswith("Send the version of the question you loaded")
    question.refresh_from_db()
    assert (question.status, question.version) == ("pending", 1)
    assert not question.events.exists()


def test_a_bad_next_filter_answers_400_before_the_decision_is_written(
        api, reviewer, taxonomy, make_question, make_topic, make_intent):
    question = make_question(taxonomy["refunds"], "one")
    elsewhere = make_intent(make_topic(), "Elsewhere")
    for bad, message in (({"confidence_min": "high"}, "confidence_min must be a number, got 'high'."),
                         ({"intent": str(elsewhere.pk)}, f"Intent {elsewhere.pk} is not in topic Customer Support.")):
        response = api(reviewer).post(review_url(question), {"action": "approve", "version": 1, "next": True,
                                                             "filter": bad}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["message"] == message
    question.refresh_from_db()
    assert (question.status, question.version, question.reviewed_by) == ("pending", 1, None)
    assert not question.events.exists()


def test_review_via_token_is_recorded_as_api(token_client, reviewer, taxonomy, make_question):
    question = make_question(taxonomy["refunds"])
    assert token_client(reviewer).post(review_url(question), {"action": "flag", "version": 1},
                                     format="json").status_code == 200
    assert question.events.get().via == "api"


def test_the_openapi_schema_describes_the_review_endpoints(api, dataset_admin):
    response = api(dataset_admin).get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/review/next/", "/api/v1/questions/{id}/review/", "/api/v1/labeling/captures/",
            "/api/v1/review/{id}/lease/"} <= set(paths)
    schemas = response.json()["components"]["schemas"]
    assert set(schemas["NextQuestion"]["required"]) == {"question", "remaining"}
    assert "version" in schemas["ReviewRequest"]["required"]


def test_bulk_review_of_a_whole_filter_changes_every_match_and_audits_each(reviewer, taxonomy, make_question):
    from labeling.selectors import QuestionFilter, questions_filtered
    from labeling.services import questions_review_matching

    for n in range(5):
        make_question(taxonomy["refunds"], f"refund question {n}")
    make_question(taxonomy["password"], "reset my password")
    queryset = questions_filtered(topic=taxonomy["billing"].topic,
                                  question_filter=QuestionFilter.from_params({"intent": str(taxonomy["billing"].pk)}))
    result = questions_review_matching(queryset=queryset, actor=reviewer, action="relabel",
                                       intent_id=taxonomy["invoices"].pk)
    assert (result.changed, result.skipped) == (5, 0)
    moved = Question.objects.filter(intent=taxonomy["invoices"])
    assert moved.count() == 5
    assert set(moved.values_list("status", "original_intent", "version")) == {("relabeled", taxonomy["refunds"].pk, 2)}
    assert ReviewEvent.objects.filter(action="relabel", actor=reviewer).count() == 5
    assert Question.objects.get(text="reset my password").status == "pending"
